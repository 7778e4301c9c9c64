import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { Database } from "../../../platform/db.ts";
import type { RetryQueue } from "../../../platform/queue/index.ts";
import { ManualClock } from "../../../tests/support/manual-clock.ts";
import { BACKENDS, openTestDatabase } from "../../../tests/support/system.ts";
import type { FaultyInventory, SwitchPolicy } from "../../../tests/support/faulty-inventory.ts";
import { orderHarness, type OrderHarness } from "../../../tests/support/order-harness.ts";
import type { Orders, RetryWorker } from "../index.ts";

/**
 * Orders that hold stock while the customer pays, against the real modules on both databases
 * with one manual clock for both: reserve, pay a tick either side of the deadline, expire by the
 * sweep (two workers at once), pay while inventory is away, cancel a hold. Every test checks the
 * ledger: available = Σ quantity_change and reserved = Σ reserved_change, per item.
 */
for (const backend of BACKENDS) {
  describe(`holds on orders, on ${backend}`, () => {
    let database: Database;
    let close: () => Promise<void>;
    let clock: ManualClock;
    let queue: RetryQueue;
    let inventory: FaultyInventory;
    let policy: SwitchPolicy;
    let service: Orders;

    beforeAll(async () => {
      ({ database, close } = await openTestDatabase(backend, ["inventory", "orders"]));
    });
    afterAll(() => close());
    let h: OrderHarness;
    beforeEach(() => {
      h = orderHarness(database);
      ({ clock, queue, inventory, policy, service } = h);
    });
    afterEach(() => queue.close());
    const worker = () => h.worker();
    const drain = (w: RetryWorker) => h.drain(w);
    const item = async (quantity: number) => (await h.items(quantity))[0]!;
    /** [available, reserved], checked against the ledger. */
    const stock = (id: string) => h.holdings(id);
    const reserve = async (itemId: string, quantity = 1, holdS = 60) => {
      const res = await service.create(randomUUID(), { lines: [{ item_id: itemId, quantity }], hold_s: holdS }, null);
      return { ...res, body: JSON.parse(res.body) };
    };
    const pay = async (orderId: string, key = randomUUID()) => {
      const res = await service.pay(orderId, key, null);
      return { ...res, body: JSON.parse(res.body) };
    };

    test("hold_s reserves: 201 reserved with its deadline; paid a tick before it, confirmed; the key replays", async () => {
      const a = await item(10);
      const r = await reserve(a, 3);
      expect(r.status).toBe(201);
      expect(r.body).toMatchObject({ status: "reserved", hold_expires_at: new Date(clock.now() + 60_000).toISOString() });
      expect(await stock(a)).toEqual([7, 3]);
      await clock.advance(59_999);
      const key = randomUUID();
      const paid = await pay(r.body.order_id, key);
      expect(paid.status).toBe(200);
      expect(paid.body).toMatchObject({ status: "confirmed", reason: "paid", paid_at: new Date(clock.now()).toISOString() });
      expect(await stock(a)).toEqual([7, 0]);
      expect(await pay(r.body.order_id, key)).toMatchObject({ status: 200, replayed: true });
      expect(await pay(r.body.order_id)).toMatchObject({ status: 200, body: { status: "confirmed" } });
      // Paid, the sweep leaves it alone.
      await clock.advance(10_000);
      expect(await worker().sweepHolds()).toBe(0);
      expect(await stock(a)).toEqual([7, 0]);
    });

    test("paid a tick after the deadline: 409 hold-expired, the order expired and its stock back", async () => {
      const a = await item(10);
      const r = await reserve(a, 3);
      await clock.advance(60_001);
      const late = await pay(r.body.order_id);
      expect(late.status).toBe(409);
      expect(late.body).toMatchObject({ type: "https://valerix.dev/problems/hold-expired", order_status: "expired" });
      expect(await stock(a)).toEqual([10, 0]);
      expect((await service.get(r.body.order_id)).status).toBe("expired");
      expect((await pay(r.body.order_id)).status).toBe(409);
    });

    test("the sweep expires holds past their deadline, not before; two workers sweeping at once release each hold once", async () => {
      const a = await item(100);
      const orders = [];
      for (let i = 0; i < 10; i++) orders.push((await reserve(a, 2)).body.order_id as string);
      expect(await stock(a)).toEqual([80, 20]);
      await clock.advance(59_000);
      expect(await worker().sweepHolds()).toBe(0);
      await clock.advance(1_000);
      const [x, y] = await Promise.all([worker().sweepHolds(), worker().sweepHolds()]);
      expect(x + y).toBe(10);
      expect(await stock(a)).toEqual([100, 0]);
      const releases = await sql<{ n: number }>`select count(*)::int as n from inventory.movements where item_id = ${a} and type = 'hold_release'`.execute(database.db);
      expect(releases.rows[0]!.n).toBe(10);
      for (const id of orders) expect((await service.get(id)).status).toBe("expired");
    });

    test("inventory away while paying: 202, and the worker confirms it after the deadline, judged by when the customer paid", async () => {
      const a = await item(10);
      const r = await reserve(a, 4);
      await clock.advance(30_000);
      inventory.settleFaults.push("unavailable");
      const paying = await pay(r.body.order_id);
      expect(paying.status).toBe(202);
      expect(paying.body).toMatchObject({ status: "reserved", paid_at: new Date(clock.now()).toISOString() });
      // The deadline passes before inventory is back: the sweep takes the paid hold to inventory,
      // which sells it, since the payment came in time. The queued delivery then finds it final.
      await clock.advance(60_000);
      expect(await worker().sweepHolds()).toBe(0);
      expect(await drain(worker())).toEqual(["already_final"]);
      expect((await service.get(r.body.order_id)).status).toBe("confirmed");
      expect(await stock(a)).toEqual([6, 0]);
    });

    test("a hold asked while inventory is down is made when it answers, its deadline counted from then", async () => {
      const a = await item(10);
      inventory.faults.push("unavailable");
      const r = await reserve(a, 2, 120);
      expect(r.status).toBe(202);
      await clock.advance(5_000);
      expect(await drain(worker())).toContain("confirmed");
      const held = await service.get(r.body.order_id);
      expect(held.status).toBe("reserved");
      expect(new Date(held.hold_expires_at!).getTime()).toBeGreaterThan(Date.now() + 120_000);
      expect(await stock(a)).toEqual([8, 2]);
    });

    test("cancelling a reserved order releases its hold; paying it then is a 409; a sale is not payable", async () => {
      const a = await item(10);
      const r = await reserve(a, 5);
      const c = await service.cancel(r.body.order_id, randomUUID(), {}, null, "test");
      expect(c.status).toBe(200);
      expect(await stock(a)).toEqual([10, 0]);
      expect(await pay(r.body.order_id)).toMatchObject({ status: 409, body: { type: "https://valerix.dev/problems/order-not-payable", order_status: "cancelled" } });
      const sale = JSON.parse((await service.create(randomUUID(), { lines: [{ item_id: a, quantity: 1 }] }, null)).body);
      expect(await pay(sale.order_id)).toMatchObject({ status: 409, body: { type: "https://valerix.dev/problems/order-not-payable" } });
      expect(await stock(a)).toEqual([9, 0]);
    });

    test("cancelling an expired hold is a 409 order-not-cancellable: its stock is already back, nothing moves", async () => {
      const a = await item(10);
      const r = await reserve(a, 3);
      await clock.advance(60_000);
      expect(await worker().sweepHolds()).toBe(1);
      const key = randomUUID();
      const c = await service.cancel(r.body.order_id, key, {}, null, "test");
      expect(c.status).toBe(409);
      expect(JSON.parse(c.body)).toMatchObject({ type: "https://valerix.dev/problems/order-not-cancellable", order_status: "expired" });
      expect(await service.cancel(r.body.order_id, key, {}, null, "test")).toMatchObject({ status: 409, replayed: true });
      expect((await service.get(r.body.order_id)).status).toBe("expired");
      expect(await stock(a)).toEqual([10, 0]);
    });
  });
}
