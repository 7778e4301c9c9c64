import { afterAll, describe, expect, test } from "bun:test";
import { newKey, startSystem, type TestSystem } from "./support/system.ts";

describe("embedded database", () => {
  let sys: TestSystem | undefined;
  afterAll(async () => {
    await sys?.stop();
  });

  test("orders, stock and idempotency keys survive a restart; the catalog is not seeded twice", async () => {
    sys = await startSystem("pglite");
    const key = newKey();
    const res = await sys.post("/api/orders", { item_id: "ps5", quantity: 5 }, { "Idempotency-Key": key });
    expect(res.status).toBe(201);
    const body = await res.text();
    const { order_id } = JSON.parse(body) as { order_id: string };
    const stock = ((await (await sys.get("/api/inventory/ps5")).json()) as { quantity: number }).quantity;
    const items = ((await (await sys.get("/api/inventory")).json()) as unknown[]).length;

    await sys.restart();

    expect(((await (await sys.get(`/api/orders/${order_id}`)).json()) as { status: string }).status).toBe("confirmed");
    expect(((await (await sys.get("/api/inventory/ps5")).json()) as { quantity: number }).quantity).toBe(stock);
    expect(((await (await sys.get("/api/inventory")).json()) as unknown[]).length).toBe(items);
    const replay = await sys.post("/api/orders", { item_id: "ps5", quantity: 5 }, { "Idempotency-Key": key });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(await replay.text()).toBe(body);
  });
});
