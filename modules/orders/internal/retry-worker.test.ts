import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import type { Database } from "../../../platform/db.ts";
import { createMemoryStore } from "../../../platform/kv/index.ts";
import { createPostgresQueue, type Delivery, type RetryQueue } from "../../../platform/queue/index.ts";
import { ManualClock } from "../../../tests/support/manual-clock.ts";
import { BACKENDS, openTestDatabase } from "../../../tests/support/system.ts";
import { createInventoryModule } from "../../inventory/index.ts";
import { FaultyInventory, SwitchPolicy } from "../../../tests/support/faulty-inventory.ts";
import { OrderService, type CallPolicy } from "./order.service.ts";
import * as repo from "./order.repository.ts";
import { RetryWorker } from "./retry-worker.ts";

/**
 * The retry worker against the real modules: inventory's in-process port on the same database,
 * the PostgreSQL retry queue, and a manual clock, so backoff, leases and the sweeper run without
 * real sleeps. Faults are injected at the inventory port's edge, where the chaos injector puts
 * them too: the call never arrives, or it commits and its answer is lost, or it waits at a gate
 * the test opens.
 */
const STRANDED_MS = 5_000;
const LEASE_MS = 10_000;
const MAX_DELAY_MS = 1_000;

for (const backend of BACKENDS) {
  describe(`RetryWorker on ${backend}`, () => {
    let database: Database;
    let close: () => Promise<void>;
    let clock: ManualClock;
    let queue: RetryQueue;
    let inventory: FaultyInventory;
    let stockOf: (itemId: string) => Promise<number>;
    let createItem: (quantity: number) => Promise<string>;
    let policy: SwitchPolicy;
    let service: OrderService;
    let errors: Array<{ context: string; message: string }>;
    /** Which statement names fail once, to stand for a database error at that step. */
    let failOnce: Set<string>;

    const worker = (maxAttempts: number) =>
      new RetryWorker({
        database,
        inventory,
        policy,
        queue,
        clock,
        random: () => 0.5,
        maxAttempts,
        baseDelayMs: 100,
        maxDelayMs: MAX_DELAY_MS,
        strandedAfterMs: STRANDED_MS,
        leaseMs: LEASE_MS,
        onError: (err, context) => errors.push({ context, message: (err as Error).message }),
      });

    /** Moves time past any backoff and takes the next due delivery, if any. */
    const next = async (advanceMs = MAX_DELAY_MS): Promise<Delivery | undefined> => {
      await clock.advance(advanceMs);
      return (await queue.receive(1, 0))[0];
    };

    const order = (orderId: string) => repo.findOrder(database, orderId);

    const place = async (itemId: string, quantity = 1) => {
      const res = await service.create(randomUUID(), { item_id: itemId, quantity }, null);
      return { ...res, body: JSON.parse(res.body) as { order_id: string; status: string } };
    };

    /** Applied deductions still standing for an order: a deduct row applied and no release that restored it. */
    const standing = async (orderId: string) => {
      const rows = await database.query<{ n: number }>(
        "t_standing",
        `select (count(*) filter (where type = 'deduct') - count(*) filter (where type = 'release'))::int as n
         from inventory.movements where order_id = $1::uuid`,
        [orderId],
      );
      return rows[0]!.n;
    };

    let real: Database;
    beforeAll(async () => {
      const opened = await openTestDatabase(backend, ["inventory", "orders"]);
      real = opened.database;
      close = opened.close;
    });
    afterAll(async () => {
      await close();
    });

    beforeEach(async () => {
      // Each test starts from empty tables: the sweeper's counts are about this test's orders alone.
      await real.query(
        "t_truncate",
        `truncate orders.orders, orders.order_history, orders.idempotency_keys, orders.retry_queue, orders.retry_dead_letters,
           inventory.movements, inventory.order_accounts, inventory.request_keys, inventory.inventory`,
        [],
      );
      failOnce = new Set();
      // A database error at a chosen step: that named statement fails once, as a dropped connection would.
      database = {
        kind: real.kind,
        db: real.db,
        ping: () => real.ping(),
        close: () => real.close(),
        query: (name, text, params) => (failOnce.delete(name) ? Promise.reject(new Error(`injected: ${name} failed`)) : real.query(name, text, params)),
      };
      clock = new ManualClock(Date.now());
      queue = createPostgresQueue(database, { clock, visibilityTimeoutMs: 30_000, pollMs: 1 });
      const mod = createInventoryModule({ database: real, adminGuard: () => undefined });
      inventory = new FaultyInventory(mod.port);
      stockOf = async (itemId) => (await mod.port.get(itemId))!.quantity;
      createItem = async (quantity) => {
        const itemId = `rw-${randomUUID().slice(0, 8)}`;
        await real.db.insertInto("inventory.inventory" as never).values({ item_id: itemId, item_name: itemId, quantity } as never).execute();
        return itemId;
      };
      policy = new SwitchPolicy();
      errors = [];
      service = new OrderService({
        database,
        inventory,
        kv: createMemoryStore({ clock }),
        policy,
        clock,
        idempotencyTtlS: 3_600,
        enqueue: (orderId, requestId) => queue.enqueue({ orderId, attempt: 0, requestId: requestId ?? undefined }),
      });
    });

    afterEach(async () => {
      await queue.close();
    });

    test("a queued order is confirmed by the next delivery once inventory answers", async () => {
      const itemId = await createItem(10);
      inventory.faults.push("unavailable");
      const placed = await place(itemId);
      expect(placed.status).toBe(202);
      const w = worker(5);
      expect(await w.handle((await next())!)).toBe("confirmed");
      expect((await order(placed.body.order_id))!.status).toBe("confirmed");
      expect(await stockOf(itemId)).toBe(9);
      expect(await next()).toBeUndefined();
    });

    test("backoff grows with the attempts; after the last one the order is released, then failed", async () => {
      const itemId = await createItem(10);
      inventory.faults.push("lost_response", "unavailable", "unavailable");
      const placed = await place(itemId);
      expect(placed.status).toBe(202);
      expect(await stockOf(itemId)).toBe(9); // the lost answer's deduction stands
      const w = worker(3);
      expect(await w.handle((await next())!)).toBe("retry");
      expect(await w.handle((await next())!)).toBe("retry");
      expect((await order(placed.body.order_id))!.attempts).toBe(2);
      // Equal jitter at 0.5: three quarters of the cap, the cap doubling from the base.
      expect([w.backoffMs(0), w.backoffMs(1), w.backoffMs(5)]).toEqual([75, 150, 750]);
      expect(await w.handle((await next())!)).toBe("failed");
      const final = (await order(placed.body.order_id))!;
      expect(final).toMatchObject({ status: "failed", reason: "retries_exhausted" });
      expect(await stockOf(itemId)).toBe(10);
      expect(await standing(placed.body.order_id)).toBe(0);
      // Closed for good: a deduct arriving now is refused.
      expect(await inventory.deduct({ order_id: placed.body.order_id, lines: [{ item_id: itemId, quantity: 1 }] })).toMatchObject({ outcome: "rejected", reason: "released" });
    });

    test("defect: a release that restored stock, then a later delivery, never ends confirmed", async () => {
      const itemId = await createItem(10);
      inventory.faults.push("lost_response");
      const placed = await place(itemId);
      expect(placed.status).toBe(202);
      expect(await stockOf(itemId)).toBe(9);
      // What an exhausted worker elsewhere (or an operator) does: close the order's account.
      expect(await inventory.release(placed.body.order_id)).toMatchObject({ restored: true, quantity: 1 });
      expect(await stockOf(itemId)).toBe(10);
      const w = worker(5);
      expect(await w.handle((await next())!)).toBe("failed");
      expect((await order(placed.body.order_id))!).toMatchObject({ status: "failed", reason: "order_released" });
      expect(await stockOf(itemId)).toBe(10);
      expect(await standing(placed.body.order_id)).toBe(0);
    });

    test("defect: uncounted bounces, a failed finish and a sweep do not grant a released order a new life", async () => {
      const itemId = await createItem(10);
      inventory.faults.push("lost_response", "unavailable", "unavailable");
      const placed = await place(itemId);
      const id = placed.body.order_id;
      const w = worker(3);
      // The breaker opens between receive and the worker's check, twice: no inventory call, no attempt.
      policy.open = true;
      expect(await w.handle((await next())!)).toBe("breaker_open");
      expect(await w.handle((await next())!)).toBe("breaker_open");
      policy.open = false;
      expect((await order(id))!.attempts).toBe(0);
      expect(await w.handle((await next())!)).toBe("retry"); // attempt 1: no answer
      expect(await w.handle((await next())!)).toBe("retry"); // attempt 2: no answer
      // The last attempt releases; recording `failed` then hits a database error, and the
      // message has been bounced often enough to go to the dead letters.
      failOnce.add("ord_leased_transition");
      expect(await w.handle((await next())!)).toBe("dead_letter");
      expect(await stockOf(itemId)).toBe(10);
      expect((await order(id))!).toMatchObject({ status: "queued", attempts: 2 });
      expect(await next()).toBeUndefined();
      // The dead delivery's lease keeps the sweeper away until it runs out.
      await clock.advance(STRANDED_MS);
      expect(await w.sweep()).toBe(0);
      await clock.advance(LEASE_MS);
      expect(await w.sweep()).toBe(1);
      // Re-enqueued with the order's own count: the next delivery is the last one again.
      const swept = (await next(0))!;
      expect(swept.attempt).toBe(2);
      expect(await w.handle(swept)).toBe("failed");
      expect((await order(id))!).toMatchObject({ status: "failed", reason: "retries_exhausted" });
      expect(await stockOf(itemId)).toBe(10);
      expect(await standing(id)).toBe(0);
    });

    test("an unexpected error goes to the dead letters on the last attempt, and the sweeper brings the order back", async () => {
      const itemId = await createItem(10);
      inventory.faults.push("unavailable");
      const placed = await place(itemId);
      const w = worker(1);
      failOnce.add("ord_claim_work");
      expect(await w.handle((await next())!)).toBe("dead_letter");
      expect((await queue.depth()).deadLetters).toBe(1);
      expect((await queue.deadLetters(5))[0]).toMatchObject({ orderId: placed.body.order_id, reason: expect.stringContaining("injected") });
      expect(await next()).toBeUndefined();
      await clock.advance(STRANDED_MS);
      expect(await w.sweep()).toBe(1);
      // One allowed attempt, never made: giving up still means releasing first.
      expect(await w.handle((await next(0))!)).toBe("failed");
      expect(await stockOf(itemId)).toBe(10);
    });

    test("the sweeper re-enqueues only orders untouched for its interval and held by no live lease", async () => {
      const itemId = await createItem(10);
      inventory.faults.push("unavailable");
      const placed = await place(itemId);
      const w = worker(5);
      await queue.receive(10, 0).then((ds) => Promise.all(ds.map((d) => d.ack()))); // the message is lost
      expect(await w.sweep()).toBe(0);
      await clock.advance(STRANDED_MS + 1);
      expect(await w.sweep()).toBe(1);
      expect(await w.sweep()).toBe(0); // touched by the sweep
      const d = (await next(0))!;
      expect(d.orderId).toBe(placed.body.order_id);
      // A delivery holding its lease keeps the sweeper away however long it works.
      const gate = inventory.hold("before");
      const working = w.handle(d);
      await gate.reached;
      await clock.advance(STRANDED_MS + 1);
      expect(await w.sweep()).toBe(0);
      gate.open();
      expect(await working).toBe("confirmed");
    });

    test("two deliveries of one order: one works it, the other waits and then finds it final", async () => {
      const itemId = await createItem(10);
      inventory.faults.push("unavailable");
      const placed = await place(itemId);
      const w = worker(5);
      const first = (await next())!;
      const gate = inventory.hold("after");
      const working = w.handle(first);
      await gate.reached;
      // A duplicate message (a sweep, a redelivery) arrives while the first holds the order.
      const dup: Delivery = { ...first, id: "dup", ack: async () => {}, retryLater: async () => {}, deadLetter: async () => {} };
      expect(await w.handle(dup)).toBe("busy");
      gate.open();
      expect(await working).toBe("confirmed");
      expect(await w.handle(dup)).toBe("already_final");
      expect(await stockOf(itemId)).toBe(9);
    });

    test("a delivery whose lease was taken over moves nothing: no order is both confirmed and released", async () => {
      const itemId = await createItem(10);
      inventory.faults.push("unavailable");
      const placed = await place(itemId);
      const id = placed.body.order_id;
      const w = worker(5);
      const mine = (await next())!;
      const gate = inventory.hold("after");
      const working = w.handle(mine); // deducts, then its answer is held past its lease
      await gate.reached;
      await clock.advance(LEASE_MS + 1);
      // Another delivery takes the order over and, on its last allowed attempt, sets out to release it.
      const takeover = worker(1);
      const dup: Delivery = { ...mine, id: "takeover", ack: async () => {}, retryLater: async () => {}, deadLetter: async () => {} };
      const releasing = inventory.hold("release");
      const takingOver = takeover.handle(dup);
      await releasing.reached;
      // The first delivery's "applied" arrives now: stale, it may not confirm the order it no longer holds.
      gate.open();
      expect(await working).toBe("busy");
      expect((await order(id))!.status).toBe("queued");
      releasing.open();
      expect(await takingOver).toBe("failed");
      expect((await order(id))!.status).toBe("failed");
      expect(await stockOf(itemId)).toBe(10);
      expect(await standing(id)).toBe(0);
      expect(errors.some((e) => e.context === "retry finish")).toBe(true);
    });

    test("defect: a pending order recovered by the worker is never released after its request confirmed it", async () => {
      const itemId = await createItem(10);
      const w = worker(1);
      // The request reaches inventory and waits there before its answer comes back.
      const gate = inventory.hold("after");
      const request = place(itemId);
      await gate.reached;
      const pending = (await repo.listOrders(database, { status: "pending", limit: 10 }))[0]!;
      await clock.advance(STRANDED_MS + 1);
      expect(await w.sweep()).toBe(1);
      // The worker takes the pending order over first: pending → queued, then (one attempt allowed) released.
      expect(await w.handle((await next(0))!)).toBe("failed");
      gate.open();
      const answered = await request;
      // The request's own transition from pending fails: it answers what stands, never 201.
      expect(answered.status).toBe(422);
      expect(answered.body).toMatchObject({ order_id: pending.order_id, order_status: "failed" });
      expect(await stockOf(itemId)).toBe(10);
      expect(await standing(pending.order_id)).toBe(0);
      const history = (await repo.orderHistory(database, pending.order_id)).map((h) => h.status);
      expect(history).toEqual(["pending", "queued", "failed"]);
    });

    test("defect: when the request confirms first, the worker's delivery leaves the order alone", async () => {
      const itemId = await createItem(10);
      const w = worker(1);
      const gate = inventory.hold("after");
      const request = place(itemId);
      await gate.reached;
      await clock.advance(STRANDED_MS + 1);
      expect(await w.sweep()).toBe(1);
      const d = (await next(0))!;
      gate.open();
      expect((await request).status).toBe(201);
      expect(await w.handle(d)).toBe("already_final");
      expect((await order(d.orderId))!.status).toBe("confirmed");
      expect(await stockOf(itemId)).toBe(9);
      expect(await standing(d.orderId)).toBe(1);
    });

    test("a configuration fault does not use up attempts: the order waits, queued, and is confirmed after the fix", async () => {
      const itemId = await createItem(10);
      inventory.faults.push("misconfigured");
      const placed = await place(itemId);
      expect(placed.status).toBe(202);
      const w = worker(2);
      for (let i = 0; i < 5; i++) {
        inventory.faults.push("misconfigured");
        expect(await w.handle((await next())!)).toBe("misconfigured");
      }
      expect((await order(placed.body.order_id))!).toMatchObject({ status: "queued", attempts: 0, reason: "inventory_unavailable:misconfigured" });
      // Fixed: the next delivery (after the longest backoff) confirms it.
      expect(await next(MAX_DELAY_MS / 2)).toBeUndefined();
      expect(await w.handle((await next())!)).toBe("confirmed");
      expect(await stockOf(itemId)).toBe(9);
    });
  });
}
