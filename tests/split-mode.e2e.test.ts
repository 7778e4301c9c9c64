import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import pg from "pg";
import { createTestDatabase, hasPostgres, hasRedis, REDIS_BASE_URL } from "./support/services.ts";
import { freePort, RoleProcess, waitFor } from "./support/processes.ts";

/**
 * Both roles as real processes over HTTP, on the real PostgreSQL and Redis, with faults injected
 * at inventory's inbound edge through the admin API. Each test checks the invariant on the data,
 * not on status codes: every accepted order ends final, and stock moved once per confirmed order.
 */
const ADMIN = "e2e-admin-token";
const auth = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };

describe.skipIf(!hasPostgres || !hasRedis)("split mode over HTTP", () => {
  let inventory: RoleProcess;
  let orders: RoleProcess;
  const drops: Array<() => Promise<void>> = [];
  let ordersDbUrl = "";
  let inventoryDbUrl = "";
  const redisUrl = `${REDIS_BASE_URL}/${9 + (process.pid % 5)}`;

  beforeAll(async () => {
    const invDb = await createTestDatabase("valerix_inv");
    const ordDb = await createTestDatabase("valerix_ord");
    drops.push(invDb.drop, ordDb.drop);
    inventoryDbUrl = invDb.url;
    ordersDbUrl = ordDb.url;
    const { RedisClient } = await import("bun");
    const r = new RedisClient(redisUrl);
    await r.send("FLUSHDB", []);
    r.close();
    const inventoryPort = await freePort();
    const common = { ADMIN_TOKEN: ADMIN, REDIS_URL: redisUrl };
    inventory = new RoleProcess("inventory", inventoryPort, { ...common, VALERIX_ROLE: "inventory", DATABASE_URL: invDb.url });
    orders = new RoleProcess("orders", await freePort(), {
      ...common,
      VALERIX_ROLE: "orders",
      DATABASE_URL: ordDb.url,
      INVENTORY_URL: inventory.url,
      BREAKER_HALF_OPEN_MS: "1500",
      RETRY_BASE_DELAY_MS: "100",
      RETRY_MAX_DELAY_MS: "1000",
      SWEEP_STRANDED_AFTER_MS: "4000",
      // Messages the killed process held come back after this long: the lowest the default
      // INVENTORY_TIMEOUT_MS allows, instead of 30 s.
      RETRY_VISIBILITY_TIMEOUT_MS: "8000",
    });
    await inventory.start();
    await orders.start();
  });

  afterEach(async () => {
    await fetch(`${inventory.url}/api/admin/chaos`, { method: "DELETE", headers: auth }).catch(() => {});
  });

  afterAll(async () => {
    await orders?.kill("SIGTERM");
    await inventory?.kill("SIGTERM");
    for (const d of drops) await d().catch(() => {});
  });

  const chaos = (body: unknown) =>
    fetch(`${inventory.url}/api/admin/chaos`, { method: "POST", headers: auth, body: JSON.stringify(body) }).then((r) => {
      expect(r.status).toBe(200);
    });

  const order = (itemId: string, quantity = 1, key = randomUUID()) =>
    fetch(`${orders.url}/api/orders`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": key },
      body: JSON.stringify({ item_id: itemId, quantity }),
    });

  async function newItem(quantity: number): Promise<string> {
    const itemId = `e2e-${randomUUID().slice(0, 8)}`;
    const r = await fetch(`${inventory.url}/api/admin/inventory`, { method: "POST", headers: auth, body: JSON.stringify({ item_id: itemId, item_name: itemId, quantity }) });
    expect(r.status).toBe(201);
    return itemId;
  }

  const stock = async (itemId: string) => ((await (await fetch(`${inventory.url}/api/inventory/${itemId}`)).json()) as { quantity: number }).quantity;

  async function statuses(ids: string[]): Promise<string[]> {
    return Promise.all(ids.map(async (id) => ((await (await fetch(`${orders.url}/api/orders/${id}`)).json()) as { status: string }).status));
  }

  async function allFinal(ids: string[], timeoutMs: number) {
    const final = ["confirmed", "rejected", "failed", "cancelled"];
    await waitFor(async () => (await statuses(ids)).every((s) => final.includes(s)), timeoutMs, "orders to be final");
  }

  async function deductionsPerOrder(ids: string[]): Promise<number[]> {
    const c = new pg.Client({ connectionString: inventoryDbUrl });
    await c.connect();
    try {
      const rows = await c.query(
        "select order_id::text, count(*)::int as n from inventory.movements where type = 'deduct' and order_id = any($1::uuid[]) group by order_id",
        [ids],
      );
      const m = new Map(rows.rows.map((r) => [r.order_id, r.n]));
      return ids.map((id) => m.get(id) ?? 0);
    } finally {
      await c.end();
    }
  }

  async function accepted(responses: Response[]): Promise<string[]> {
    const ids: string[] = [];
    for (const r of responses) {
      expect([201, 202]).toContain(r.status);
      ids.push(((await r.json()) as { order_id: string }).order_id);
    }
    return ids;
  }

  test("inventory crashing on every call: 202s, the breaker opens, later answers come back fast, all confirm after healing", async () => {
    const itemId = await newItem(100);
    await chaos({ crash_rate: 1, crash_mode: "mix", latency: false });
    const responses: Response[] = [];
    for (let i = 0; i < 14; i++) responses.push(await order(itemId));
    const ids = await accepted(responses);
    expect(responses.every((r) => r.status === 202)).toBe(true);
    const deep = (await (await fetch(`${orders.url}/health/deep`)).json()) as { checks: Record<string, { state?: string }> };
    expect(["open", "half-open"]).toContain(deep.checks.circuit_breaker!.state!);
    const t0 = performance.now();
    const fast = await order(itemId);
    expect(fast.status).toBe(202);
    expect(performance.now() - t0).toBeLessThan(1000); // breaker open: no call made
    ids.push(((await fast.json()) as { order_id: string }).order_id);
    const metrics = await (await fetch(`${orders.url}/metrics`)).text();
    expect(metrics).toMatch(/circuit_breaker_transitions_total\{from="closed",to="open"\} [1-9]/);

    await fetch(`${inventory.url}/api/admin/chaos`, { method: "DELETE", headers: auth });
    await allFinal(ids, 30_000);
    expect(new Set(await statuses(ids))).toEqual(new Set(["confirmed"]));
    expect(await deductionsPerOrder(ids)).toEqual(ids.map(() => 1));
    expect(await stock(itemId)).toBe(100 - ids.length);
  });

  test("inventory sleeping 8 s: the order answers 202 within about 3 s and is confirmed once", async () => {
    const itemId = await newItem(10);
    await chaos({ latency: true, latency_ms: 8000, crash_rate: 0, partial_failure_rate: 0 });
    const t0 = performance.now();
    const res = await order(itemId);
    const elapsed = performance.now() - t0;
    expect(res.status).toBe(202);
    expect(res.headers.get("location")).toStartWith("/api/orders/");
    expect(elapsed).toBeGreaterThan(2_500);
    expect(elapsed).toBeLessThan(6_000);
    const ids = await accepted([res]);
    await fetch(`${inventory.url}/api/admin/chaos`, { method: "DELETE", headers: auth });
    await allFinal(ids, 30_000);
    expect(await statuses(ids)).toEqual(["confirmed"]);
    // The slow call may have committed after the caller gave up: still one deduction.
    expect(await deductionsPerOrder(ids)).toEqual([1]);
    expect(await stock(itemId)).toBe(9);
  });

  test("commit-then-lose-the-response on every call: after healing, each order confirmed with exactly one deduction", async () => {
    const itemId = await newItem(50);
    await chaos({ partial_failure_rate: 1, crash_rate: 0, latency: false });
    const responses = await Promise.all(Array.from({ length: 8 }, () => order(itemId)));
    const ids = await accepted(responses);
    expect(responses.every((r) => r.status === 202)).toBe(true);
    // The deductions already happened, though no caller heard of them.
    expect(await stock(itemId)).toBe(42);
    await fetch(`${inventory.url}/api/admin/chaos`, { method: "DELETE", headers: auth });
    await allFinal(ids, 30_000);
    expect(new Set(await statuses(ids))).toEqual(new Set(["confirmed"]));
    expect(await deductionsPerOrder(ids)).toEqual(ids.map(() => 1));
    expect(await stock(itemId)).toBe(42);
  });

  test("3-line orders queued by a crashing inventory, half cancelled while it still crashes: after healing, cancelled ones hold no stock", async () => {
    const items = [await newItem(100), await newItem(100), await newItem(100)];
    // Every other call commits and loses its answer, the rest crash: some deductions land unheard.
    await chaos({ crash_rate: 0.5, partial_failure_rate: 1, crash_mode: "mix", latency: false, routes: "all" });
    const responses: Response[] = [];
    for (let i = 0; i < 8; i++) {
      const lines = items.map((item_id, n) => ({ item_id, quantity: 1 + ((i + n) % 3) }));
      responses.push(
        await fetch(`${orders.url}/api/orders`, {
          method: "POST",
          headers: { "content-type": "application/json", "idempotency-key": randomUUID() },
          body: JSON.stringify({ lines }),
        }),
      );
    }
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as Array<{ order_id: string; lines: Array<{ item_id: string; quantity: number }> }>;
    expect(responses.every((r) => r.status === 202)).toBe(true);
    const ids = bodies.map((b) => b.order_id);
    const toCancel = ids.filter((_, i) => i % 2 === 0);
    for (const id of toCancel) {
      const c = await fetch(`${orders.url}/api/orders/${id}/cancel`, { method: "POST", headers: { "content-type": "application/json", "idempotency-key": randomUUID() }, body: "{}" });
      expect([200, 202]).toContain(c.status);
    }
    await fetch(`${inventory.url}/api/admin/chaos`, { method: "DELETE", headers: auth });
    await allFinal(ids, 45_000);
    const final = await statuses(ids);
    expect(final.filter((_, i) => i % 2 === 0)).toEqual(toCancel.map(() => "cancelled"));
    expect(final.filter((_, i) => i % 2 === 1)).toEqual(toCancel.map(() => "confirmed"));
    // From the ledger: each confirmed order has its three lines deducted once; each cancelled one nets to zero.
    const c = new pg.Client({ connectionString: inventoryDbUrl });
    await c.connect();
    try {
      const rows = await c.query(
        "select order_id::text, count(*) filter (where type = 'deduct')::int as deducted, coalesce(sum(quantity_change), 0)::int as net from inventory.movements where order_id = any($1::uuid[]) group by order_id",
        [ids],
      );
      const byId = new Map(rows.rows.map((r) => [r.order_id, r]));
      for (const [i, id] of ids.entries()) {
        if (i % 2 === 1) expect(byId.get(id)).toMatchObject({ deducted: 3, net: -bodies[i]!.lines.reduce((n, l) => n + l.quantity, 0) });
        else expect(byId.get(id)?.net ?? 0).toBe(0);
      }
    } finally {
      await c.end();
    }
    for (const item of items) {
      const taken = bodies.filter((_, i) => i % 2 === 1).flatMap((b) => b.lines).filter((l) => l.item_id === item).reduce((n, l) => n + l.quantity, 0);
      expect(await stock(item)).toBe(100 - taken);
    }
  });

  test("the orders process killed with SIGKILL while orders are queued: after restart all confirmed", async () => {
    const itemId = await newItem(30);
    await chaos({ crash_rate: 1, crash_mode: 503, latency: false });
    const ids = await accepted(await Promise.all(Array.from({ length: 6 }, () => order(itemId))));
    await orders.kill("SIGKILL");
    await fetch(`${inventory.url}/api/admin/chaos`, { method: "DELETE", headers: auth });
    await orders.start();
    await allFinal(ids, 40_000);
    expect(new Set(await statuses(ids))).toEqual(new Set(["confirmed"]));
    expect(await deductionsPerOrder(ids)).toEqual(ids.map(() => 1));
    expect(await stock(itemId)).toBe(24);
  });

  test("holds with two orders replicas: a payment made while inventory crashes is confirmed after healing; unpaid holds expire, each released once", async () => {
    // A second orders replica on the same database and queue: both sweep for expired holds.
    const second = new RoleProcess("orders-2", await freePort(), { ...orders.env });
    await second.start();
    try {
      const itemId = await newItem(100);
      const reserve = (base: string, quantity: number) =>
        fetch(`${base}/api/orders`, {
          method: "POST",
          headers: { "content-type": "application/json", "idempotency-key": randomUUID() },
          body: JSON.stringify({ lines: [{ item_id: itemId, quantity }], hold_s: 60 }),
        }).then(async (r) => {
          expect(r.status).toBe(201);
          return (await r.json()) as { order_id: string; status: string; hold_expires_at: string };
        });
      const unpaid = await Promise.all(Array.from({ length: 6 }, (_, i) => reserve(i % 2 ? second.url : orders.url, 2)));
      const paid = await reserve(orders.url, 5);
      expect(paid.status).toBe("reserved");
      const item = async () => (await (await fetch(`${inventory.url}/api/inventory/${itemId}`)).json()) as { quantity: number; reserved_quantity: number };
      expect(await item()).toMatchObject({ quantity: 83, reserved_quantity: 17 });

      // Inventory crashes on every call, pay included: the payment is recorded and answered 202.
      await chaos({ crash_rate: 1, crash_mode: 503, latency: false, routes: "all" });
      const payRes = await fetch(`${orders.url}/api/orders/${paid.order_id}/pay`, { method: "POST", headers: { "idempotency-key": randomUUID() } });
      expect(payRes.status).toBe(202);
      expect(await payRes.json()).toMatchObject({ status: "reserved", paid_at: expect.any(String) });
      await fetch(`${inventory.url}/api/admin/chaos`, { method: "DELETE", headers: auth });

      // The paid hold is sold (it was paid in time); the others expire once their deadline passes.
      const ids = [paid.order_id, ...unpaid.map((o) => o.order_id)];
      const final = ["confirmed", "expired"];
      await waitFor(async () => (await statuses(ids)).every((s) => final.includes(s)), 90_000, "holds to settle");
      expect(await statuses(ids)).toEqual(["confirmed", ...unpaid.map(() => "expired")]);
      expect(await item()).toMatchObject({ quantity: 95, reserved_quantity: 0 });
      const c = new pg.Client({ connectionString: inventoryDbUrl });
      await c.connect();
      try {
        const rows = await c.query(
          "select order_id::text, count(*) filter (where type = 'hold_release')::int as released, count(*) filter (where type = 'sale')::int as sold from inventory.movements where order_id = any($1::uuid[]) group by order_id",
          [ids],
        );
        const byId = new Map(rows.rows.map((r) => [r.order_id, r]));
        expect(byId.get(paid.order_id)).toMatchObject({ released: 0, sold: 1 });
        for (const o of unpaid) expect(byId.get(o.order_id)).toMatchObject({ released: 1, sold: 0 });
      } finally {
        await c.end();
      }
    } finally {
      await second.kill("SIGTERM");
    }
  }, 120_000);

  test("stock.low crosses the process boundary: inventory writes it in its database, the orders role imports and sends it once", async () => {
    const got: Array<{ id: string; body: string }> = [];
    const rx = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async (req) => {
        got.push({ id: req.headers.get("webhook-id") ?? "", body: await req.text() });
        return new Response(null, { status: 204 });
      },
    });
    try {
      const sub = await fetch(`${orders.url}/api/admin/webhooks`, {
        method: "POST",
        headers: { ...auth, "idempotency-key": randomUUID() },
        body: JSON.stringify({ url: `http://127.0.0.1:${rx.port}/hooks`, events: ["stock.low"] }),
      });
      expect(sub.status).toBe(201);
      const itemId = await newItem(6);
      const set = await fetch(`${inventory.url}/api/admin/inventory/${itemId}`, { method: "PATCH", headers: auth, body: JSON.stringify({ low_stock_threshold: 3 }) });
      expect(set.status).toBe(200);
      for (let i = 0; i < 4; i++) expect((await order(itemId)).status).toBe(201);
      const mine = () => got.filter((g) => (JSON.parse(g.body) as { data: { item_id: string } }).data.item_id === itemId);
      await waitFor(async () => mine().length > 0, 20_000, "the stock.low webhook");
      await Bun.sleep(1_500);
      expect(mine()).toHaveLength(1);
      expect(JSON.parse(mine()[0]!.body)).toMatchObject({ type: "stock.low", data: { item_id: itemId, available: 3, low_stock_threshold: 3 } });
      const listed = (await (await fetch(`${orders.url}/api/events?types=stock.low&limit=500`)).json()) as { events: Array<{ id: string }> };
      expect(listed.events.map((e) => e.id)).toContain(mine()[0]!.id);
      // Written in inventory's database, listed from the orders role's: the same id.
      const db = new pg.Client({ connectionString: inventoryDbUrl });
      await db.connect();
      try {
        const r = await db.query("select event_id from inventory.outbox_events where item_id = $1", [itemId]);
        expect(r.rows.map((x) => x.event_id)).toEqual([mine()[0]!.id]);
      } finally {
        await db.end();
      }
    } finally {
      rx.stop(true);
    }
  }, 60_000);

  test("the request id travels from the order request into the inventory call", async () => {
    const itemId = await newItem(5);
    await chaos({ crash_rate: 1, crash_mode: 500, latency: false });
    const requestId = `trace-${randomUUID()}`;
    await fetch(`${orders.url}/api/orders`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": randomUUID(), "x-request-id": requestId },
      body: JSON.stringify({ item_id: itemId, quantity: 1 }),
    });
    const events = (await (await fetch(`${inventory.url}/api/admin/chaos/events`, { headers: auth })).json()) as { events: Array<{ request_id: string | null }> };
    expect(events.events.map((e) => e.request_id)).toContain(requestId);
  });
});
