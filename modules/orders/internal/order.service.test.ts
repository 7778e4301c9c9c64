import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Database } from "../../../platform/db.ts";
import { createMemoryStore } from "../../../platform/kv/memory.ts";
import { createInventoryModule, type InventoryPort } from "../../inventory/index.ts";
import { InventoryUnavailableError } from "../../inventory/index.ts";
import { createOrdersModule } from "../index.ts";
import { createAdminGuard } from "../../../src/http/guards.ts";
import { ManualClock } from "../../../tests/support/manual-clock.ts";
import { BACKENDS, openTestDatabase, type Backend } from "../../../tests/support/system.ts";
import { OrderService, type CallPolicy, type OrderOutcomeEvent } from "./order.service.ts";

/**
 * The in-flight cases need a request held mid-way. The real in-process inventory adapter is
 * wrapped so a test can hold its deduct call open (a gate, not a fake: the deduction still runs).
 */
function gated(port: InventoryPort) {
  let release!: () => void;
  let entered!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const inside = new Promise<void>((r) => (entered = r));
  const wrapped: InventoryPort = {
    ...port,
    async deduct(req, ctx) {
      entered();
      await gate;
      return port.deduct(req, ctx);
    },
  };
  return { wrapped, release: () => release(), inside };
}

for (const backend of BACKENDS) {
  describe(`idempotency keys in flight (${backend})`, () => {
    let database: Database;
    let close: () => Promise<void>;
    beforeAll(async () => {
      ({ database, close } = await openTestDatabase(backend, []));
      const inv = createInventoryModule({ database, adminGuard: createAdminGuard({ adminToken: undefined, nodeEnv: "test" }) });
      await inv.migrate();
      await inv.seedDemoCatalog();
    });
    afterAll(() => close());

    function ordersWith(port: InventoryPort, clock = new ManualClock(Date.now())) {
      const mod = createOrdersModule({ database, inventory: port, kv: createMemoryStore({ clock }), idempotencyTtlS: 86_400, clock });
      return { mod, clock };
    }

    test("a second request with the key while the first is in flight gets 409; after it finishes, the replay", async () => {
      const inv = createInventoryModule({ database, adminGuard: () => undefined });
      const g = gated(inv.port);
      const { mod } = ordersWith(g.wrapped);
      await mod.migrate();
      const first = mod.service.create("inflight-1", { item_id: "ps5", quantity: 1 }, null);
      await g.inside;
      await expect(mod.service.create("inflight-1", { item_id: "ps5", quantity: 1 }, null)).rejects.toMatchObject({ code: "idempotency_key_in_use" });
      // A different body under the same key is refused as reuse, even in flight.
      await expect(mod.service.create("inflight-1", { item_id: "ps5", quantity: 2 }, null)).rejects.toMatchObject({ code: "idempotency_key_reused" });
      g.release();
      const done = await first;
      expect(done.status).toBe(201);
      const replay = await mod.service.create("inflight-1", { item_id: "ps5", quantity: 1 }, null);
      expect(replay).toMatchObject({ status: 201, replayed: true, body: done.body });
    });

    test("a key left in flight by a request that died is answered from the order after the lease", async () => {
      const inv = createInventoryModule({ database, adminGuard: () => undefined });
      const g = gated(inv.port);
      const { mod, clock } = ordersWith(g.wrapped);
      void mod.service.create("died-1", { item_id: "ps5", quantity: 1 }, null).catch(() => {});
      await g.inside;
      // The holder never comes back (as if the process died). Past the 30 s lease the order speaks.
      await clock.advance(31_000);
      const res = await mod.service.create("died-1", { item_id: "ps5", quantity: 1 }, null);
      expect(res.status).toBe(202);
      expect(JSON.parse(res.body)).toMatchObject({ status: "pending", item_id: "ps5" });
    });

    test("an expired key can be used for a new order", async () => {
      const inv = createInventoryModule({ database, adminGuard: () => undefined });
      const clock = new ManualClock(Date.now());
      const mod = createOrdersModule({ database, inventory: inv.port, kv: createMemoryStore({ clock }), idempotencyTtlS: 60, clock });
      const a = await mod.service.create("expiring-1", { item_id: "ps5", quantity: 1 }, null);
      await clock.advance(61_000);
      const b = await mod.service.create("expiring-1", { item_id: "ps5", quantity: 1 }, null);
      expect(a.status).toBe(201);
      expect(b.status).toBe(201);
      expect(b.replayed).toBe(false);
      expect(b.orderId).not.toBe(a.orderId);
    });
  });
  orderServiceSuite(backend);
}

/**
 * The order flow itself, fast: one service on a real database (PGlite, and PostgreSQL where it
 * answers) with the real in-process inventory, or a port that fails the way a network does.
 */
function orderServiceSuite(backend: Backend) {
  describe(`OrderService (${backend})`, () => {
    let database: Database;
    let close: () => Promise<void>;
    let port: InventoryPort;
    beforeAll(async () => {
      ({ database, close } = await openTestDatabase(backend, ["inventory", "orders"]));
      const inv = createInventoryModule({ database, adminGuard: () => undefined });
      await inv.seedDemoCatalog();
      port = inv.port;
    });
    afterAll(() => close());

    let n = 0;
    const key = (name: string) => `${name}-${process.pid}-${n++}`;
    function service(over: { inventory?: InventoryPort; policy?: CallPolicy; enqueue?: (id: string, rid: string | null) => Promise<void> } = {}) {
      const clock = new ManualClock(Date.now());
      const events: OrderOutcomeEvent[] = [];
      const errors: string[] = [];
      const enqueued: string[] = [];
      const svc = new OrderService({
        database,
        inventory: over.inventory ?? port,
        kv: createMemoryStore({ clock }),
        idempotencyTtlS: 86_400,
        clock,
        policy: over.policy,
        enqueue: over.enqueue ?? (async (id) => void enqueued.push(id)),
        onError: (_err, context) => void errors.push(context),
      });
      svc.onOutcome((e) => events.push(e));
      return { svc, events, errors, enqueued };
    }
    const failing = (make: () => Error): InventoryPort => ({ ...port, deduct: async () => Promise.reject(make()) });

    test("applied: 201 with the confirmed order; the same key and body replays it byte for byte", async () => {
      const { svc, events } = service();
      const k = key("ok");
      const first = await svc.create(k, { item_id: "ps5", quantity: 1 }, "req-1");
      expect(first).toMatchObject({ status: 201, replayed: false });
      expect(JSON.parse(first.body)).toMatchObject({ order_id: first.orderId, item_id: "ps5", quantity: 1, status: "confirmed", reason: null });
      const again = await svc.create(k, { item_id: "ps5", quantity: 1 }, "req-2");
      expect(again).toEqual({ status: 201, body: first.body, replayed: true, orderId: first.orderId });
      expect(events.map((e) => e.outcome)).toEqual(["confirmed", "replayed"]);
      expect(await svc.get(first.orderId!)).toMatchObject({ status: "confirmed", history: [{ status: "pending" }, { status: "confirmed" }] });
    });

    test("the same key with another body is refused as reused, after the first finished", async () => {
      const { svc } = service();
      const k = key("reuse");
      await svc.create(k, { item_id: "ps5", quantity: 1 }, null);
      await expect(svc.create(k, { item_id: "ps5", quantity: 3 }, null)).rejects.toMatchObject({ code: "idempotency_key_reused" });
      await expect(svc.create(k, { item_id: "xbox-series-x", quantity: 1 }, null)).rejects.toMatchObject({ code: "idempotency_key_reused" });
    });

    test("a refusal is an answer: 422 problem carrying the order, never queued", async () => {
      const { svc, enqueued } = service();
      const short = await svc.create(key("short"), { item_id: "ps5", quantity: 10_000 }, null);
      expect(short.status).toBe(422);
      expect(JSON.parse(short.body)).toMatchObject({ type: "https://valerix.dev/problems/insufficient-stock", status: 422, order_status: "rejected", reason: "insufficient_stock" });
      const unknown = await svc.create(key("unknown"), { item_id: "no-such-item", quantity: 1 }, null);
      expect(unknown.status).toBe(422);
      expect(JSON.parse(unknown.body)).toMatchObject({ type: "https://valerix.dev/problems/unknown-item", order_status: "rejected", reason: "unknown_item" });
      expect(enqueued).toEqual([]);
    });

    test("inventory unreachable: 202 queued with the reason, and enqueued for the worker", async () => {
      const { svc, enqueued, errors } = service({ inventory: failing(() => new InventoryUnavailableError("reset", undefined, "transport")) });
      const res = await svc.create(key("down"), { item_id: "ps5", quantity: 1 }, null);
      expect(res.status).toBe(202);
      expect(JSON.parse(res.body)).toMatchObject({ status: "queued", reason: "inventory_unavailable:transport" });
      expect(enqueued).toEqual([res.orderId!]);
      // An expected failure is not logged as an error.
      expect(errors).toEqual([]);
    });

    test("an unexpected error from the call is queued too, and reported", async () => {
      const { svc, enqueued, errors } = service({ inventory: failing(() => new TypeError("bug")) });
      const res = await svc.create(key("bug"), { item_id: "ps5", quantity: 1 }, null);
      expect(res.status).toBe(202);
      expect(JSON.parse(res.body)).toMatchObject({ status: "queued", reason: "inventory_unavailable:unexpected_error" });
      expect(enqueued).toEqual([res.orderId!]);
      expect(errors).toEqual(["inventory deduct"]);
    });

    test("breaker open: queued at once without calling inventory", async () => {
      let calls = 0;
      const counting: InventoryPort = { ...port, deduct: async (req, ctx) => (calls++, port.deduct(req, ctx)) };
      const open: CallPolicy = { execute: () => Promise.reject(new Error("must not be called")), isOpen: () => true };
      const { svc, enqueued, events } = service({ inventory: counting, policy: open });
      const k = key("open");
      const res = await svc.create(k, { item_id: "ps5", quantity: 1 }, null);
      expect(res.status).toBe(202);
      expect(JSON.parse(res.body)).toMatchObject({ status: "queued", reason: "inventory_unavailable" });
      expect(calls).toBe(0);
      await Promise.resolve();
      expect(enqueued).toEqual([res.orderId!]);
      // The 202 was stored with the claim: a retry replays it.
      expect(await svc.create(k, { item_id: "ps5", quantity: 1 }, null)).toMatchObject({ status: 202, body: res.body, replayed: true });
      expect(events.map((e) => e.outcome)).toEqual(["queued", "replayed"]);
    });

    test("a failed enqueue still answers 202: the order is durably queued, the sweeper finds it", async () => {
      const { svc, errors } = service({
        inventory: failing(() => new InventoryUnavailableError("slow", undefined, "timeout")),
        enqueue: () => Promise.reject(new Error("redis away")),
      });
      const res = await svc.create(key("noq"), { item_id: "ps5", quantity: 1 }, null);
      expect(res.status).toBe(202);
      expect(errors).toEqual(["retry enqueue"]);
      expect((await svc.get(res.orderId!)).status).toBe("queued");
    });

    test("list and count read what was written", async () => {
      const { svc } = service();
      const res = await svc.create(key("list"), { item_id: "ps5", quantity: 1 }, null);
      const confirmed = await svc.list({ status: "confirmed", limit: 100 });
      expect(confirmed.some((o) => o.order_id === res.orderId)).toBe(true);
      expect(confirmed.every((o) => o.status === "confirmed")).toBe(true);
      const counts = await svc.countByStatus();
      expect(counts.confirmed).toBeGreaterThanOrEqual(1);
      await expect(svc.get(crypto.randomUUID())).rejects.toMatchObject({ code: "not_found" });
    });
  });
}
