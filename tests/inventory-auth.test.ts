import { afterEach, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { createLogger } from "../platform/logging.ts";
import { waitFor } from "./support/processes.ts";
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
    // Inventory's own events are read by the orders role only, with the same token.
    expect((await sys.get("/api/inventory/service/stock-events")).status).toBe(401);
    expect((await sys.get("/api/inventory/service/stock-events", { authorization: "Bearer adm-token" })).status).toBe(401);
    expect((await sys.get("/api/inventory/service/stock-events?limit=5", { authorization: "Bearer svc-token" })).status).toBe(200);
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

/**
 * Split mode with a token or URL that inventory refuses: a configuration fault, not an outage.
 * Orders stay safely queued without using up their attempts, the operator is told what to fix
 * (error log, metric, readiness and deep health red), and everything finishes once it is fixed.
 */
describe("a refused service token or a wrong INVENTORY_URL on the orders role", () => {
  let inventoryRole: TestSystem | undefined;
  let ordersRole: TestSystem | undefined;
  afterEach(async () => {
    await ordersRole?.stop();
    await inventoryRole?.stop();
    ordersRole = inventoryRole = undefined;
  });

  const health = async (s: TestSystem, which: "ready" | "deep") => {
    const res = await s.get(`/health/${which}`);
    return { status: res.status, body: (await res.json()) as { checks: Record<string, { ok: boolean; detail?: string }> } };
  };

  test("wrong token: orders wait queued, the fault is logged, counted and red on health; fixed, they are confirmed", async () => {
    inventoryRole = await startSystem("pglite", { VALERIX_ROLE: "inventory", INVENTORY_TOKEN: "svc-token" });
    const lines: Array<{ level: string; msg: string; status?: number }> = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    });
    ordersRole = await startSystem(
      "pglite",
      { VALERIX_ROLE: "orders", INVENTORY_URL: inventoryRole.url, INVENTORY_TOKEN: "wrong-token", RETRY_BASE_DELAY_MS: "20", RETRY_MAX_DELAY_MS: "100", RETRY_MAX_ATTEMPTS: "2" },
      { logger: createLogger("info", { role: "orders" }, sink) },
    );
    const ready = await health(ordersRole, "ready");
    expect(ready.status).toBe(503);
    expect(ready.body.checks.inventory_config).toMatchObject({ ok: false, detail: expect.stringContaining("INVENTORY_TOKEN") });
    const stockBefore = ((await (await inventoryRole.get("/api/inventory/ps5")).json()) as { quantity: number }).quantity;

    const placed = await ordersRole.post("/api/orders", { item_id: "ps5", quantity: 1 }, { "Idempotency-Key": randomUUID() });
    expect(placed.status).toBe(202);
    const order = (await placed.json()) as { order_id: string; reason: string };
    expect(order.reason).toBe("inventory_unavailable:misconfigured");
    // Many deliveries at the longest backoff, more than the two attempts allowed: none is counted.
    await waitFor(async () => (await ordersRole!.server.metrics.registry.getSingleMetricAsString("order_retries_total")).includes('result="misconfigured"} 3'), 10_000, "three misconfigured deliveries");
    const waiting = (await (await ordersRole.get(`/api/orders/${order.order_id}`)).json()) as { status: string; attempts: number };
    expect(waiting).toMatchObject({ status: "queued", attempts: 0 });
    const metrics = await (await ordersRole.get("/metrics")).text();
    expect(metrics).toMatch(/inventory_misconfigured_calls_total\{status="401"[^}]*\} [1-9]/);
    const errors = lines.filter((l) => l.level === "error" && l.status === 401);
    expect(errors.length).toBe(1); // at most once a minute, however many calls fail
    expect(errors[0]!.msg).toContain("set INVENTORY_TOKEN on the orders role");
    expect((await health(ordersRole, "deep")).status).toBe(503);

    // The operator fixes the token and restarts the role: the queued order is finished.
    await ordersRole.restart({ INVENTORY_TOKEN: "svc-token" });
    await waitFor(
      async () => ((await (await ordersRole!.get(`/api/orders/${order.order_id}`)).json()) as { status: string }).status === "confirmed",
      60_000,
      "the queued order confirmed after the fix",
    );
    expect((await health(ordersRole, "ready")).status).toBe(200);
    const stockAfter = ((await (await inventoryRole.get("/api/inventory/ps5")).json()) as { quantity: number }).quantity;
    expect(stockAfter).toBe(stockBefore - 1);
  });

  test("an INVENTORY_URL with no inventory routes behind it turns readiness red, naming INVENTORY_URL; an outage does not", async () => {
    inventoryRole = await startSystem("pglite", { VALERIX_ROLE: "inventory", INVENTORY_TOKEN: "svc-token" });
    ordersRole = await startSystem("pglite", { VALERIX_ROLE: "orders", INVENTORY_URL: `${inventoryRole.url}/v2`, INVENTORY_TOKEN: "svc-token" });
    const wrongPath = await health(ordersRole, "ready");
    expect(wrongPath.status).toBe(503);
    expect(wrongPath.body.checks.inventory_config).toMatchObject({ ok: false, detail: expect.stringContaining("INVENTORY_URL") });
    await ordersRole.restart({ INVENTORY_URL: inventoryRole.url });
    expect((await health(ordersRole, "ready")).status).toBe(200);
    // Inventory down is no fault of this replica's: it stays ready, and deep health tells.
    await inventoryRole.stop();
    inventoryRole = undefined;
    const down = await health(ordersRole, "ready");
    expect(down.status).toBe(200);
    expect(down.body.checks.inventory_config).toMatchObject({ ok: true, detail: expect.stringContaining("not a configuration fault") });
    expect((await health(ordersRole, "deep")).status).toBe(503);
  });
});
