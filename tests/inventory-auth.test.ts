import { afterEach, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { startSystem, type TestSystem } from "./support/system.ts";

/** Inventory's write routes move stock: only the orders role (holding the service token) may call them. */
describe("inventory write routes need the service token", () => {
  let sys: TestSystem | undefined;
  afterEach(async () => {
    await sys?.stop();
    sys = undefined;
  });

  const deduct = (s: TestSystem, headers: Record<string, string> = {}) =>
    s.post("/api/inventory/deduct", { order_id: randomUUID(), item_id: "ps5", quantity: 1 }, headers);
  const stock = async (s: TestSystem) => ((await (await s.get("/api/inventory/ps5")).json()) as { quantity: number }).quantity;

  test("with INVENTORY_TOKEN set: no token or the wrong one is 401 and moves nothing; the token deducts", async () => {
    sys = await startSystem("pglite", { INVENTORY_TOKEN: "svc-token", ADMIN_TOKEN: "adm-token" });
    const before = await stock(sys);
    for (const headers of [{}, { authorization: "Bearer nope" }, { authorization: "Bearer adm-token" }] as Record<string, string>[]) {
      const res = await deduct(sys, headers);
      expect(res.status).toBe(401);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
    }
    expect((await sys.post("/api/inventory/release", { order_id: randomUUID() })).status).toBe(401);
    expect(await stock(sys)).toBe(before);
    expect((await deduct(sys, { authorization: "Bearer svc-token" })).status).toBe(200);
    expect(await stock(sys)).toBe(before - 1);
    // Orders in the same process use the in-process port, untouched by the guard.
    const order = await sys.post("/api/orders", { item_id: "ps5", quantity: 1 }, { "Idempotency-Key": randomUUID() });
    expect(order.status).toBe(201);
  });

  test("without INVENTORY_TOKEN the admin token serves; in production with neither, the routes are closed", async () => {
    sys = await startSystem("pglite", { ADMIN_TOKEN: "adm-token" });
    expect((await deduct(sys)).status).toBe(401);
    expect((await deduct(sys, { authorization: "Bearer adm-token" })).status).toBe(200);
    await sys.stop();
    sys = await startSystem("pglite", { NODE_ENV: "production" });
    const closed = await deduct(sys);
    expect(closed.status).toBe(403);
    expect(((await closed.json()) as { type: string }).type).toEndWith("/inventory-writes-closed");
    expect((await sys.post("/api/orders", { item_id: "ps5", quantity: 1 }, { "Idempotency-Key": randomUUID() })).status).toBe(201);
  });
});
