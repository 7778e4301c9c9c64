import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import type { Database } from "../../../platform/db.ts";
import type { RetryQueue } from "../../../platform/queue/index.ts";
import { ManualClock } from "../../../tests/support/manual-clock.ts";
import { BACKENDS, openTestDatabase } from "../../../tests/support/system.ts";
import type { FaultyInventory, SwitchPolicy } from "../../../tests/support/faulty-inventory.ts";
import { orderHarness, type OrderHarness } from "../../../tests/support/order-harness.ts";
import type { Orders, RetryWorker } from "../index.ts";

/**
 * Orders of several lines and their cancellation, against the real modules on both databases:
 * inventory's in-process port (faults injected at its edge), the PostgreSQL retry queue and a
 * manual clock. Every test ends by checking the ledger: each item's stock is the sum of its
 * movements, and equals its opening stock less the lines of the orders that stand.
 */
for (const backend of BACKENDS) {
  describe(`orders of several lines, and cancellation, on ${backend}`, () => {
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
    const items = (...quantities: number[]) => h.items(...quantities);
    const stock = (ids: string[]) => h.available(...ids);
    const place = async (lines: Array<{ item_id: string; quantity: number }>, key = randomUUID()) => {
      const res = await service.create(key, { lines }, null);
      return { ...res, body: JSON.parse(res.body) };
    };
    const cancel = async (orderId: string, key = randomUUID(), reason?: string) => {
      const res = await service.cancel(orderId, key, reason ? { reason } : {}, null, "test");
      return { ...res, body: JSON.parse(res.body) };
    };

    test("a 3-line order with one short line: 422 naming it, no stock moved", async () => {
      const [a, b, c] = await items(10, 1, 10);
      const r = await place([{ item_id: a!, quantity: 2 }, { item_id: b!, quantity: 3 }, { item_id: c!, quantity: 1 }]);
      expect(r.status).toBe(422);
      expect(r.body).toMatchObject({ order_status: "rejected", reason: "insufficient_stock", rejected_lines: [{ item_id: b, reason: "insufficient_stock" }] });
      expect(r.body.lines).toHaveLength(3);
      expect(r.body.message).toBe(`Not enough stock for ${b}. Nothing was taken.`);
      expect(await stock([a!, b!, c!])).toEqual([10, 1, 10]);
      const read = await service.get(r.body.order_id);
      expect(read).toMatchObject({ status: "rejected", rejected_lines: [{ item_id: b, reason: "insufficient_stock" }] });
      expect(read.item_id).toBeUndefined();
    });

    test("an item on two lines is a 400 and nothing is recorded", async () => {
      const [a] = await items(10);
      const err = await service.create(randomUUID(), { lines: [{ item_id: a!, quantity: 1 }, { item_id: a!, quantity: 2 }] }, null).catch((e) => e);
      expect(err.code).toBe("duplicate_line_item");
      expect(await stock([a!])).toEqual([10]);
    });

    test("the same key sent 30 times at once: one order, each line deducted once", async () => {
      const [a, b] = await items(100, 100);
      const key = randomUUID();
      const lines = [{ item_id: a!, quantity: 2 }, { item_id: b!, quantity: 1 }];
      const answers = await Promise.all(Array.from({ length: 30 }, () => service.create(key, { lines }, null).catch((e) => e)));
      const ids = new Set(answers.filter((x) => x.orderId).map((x) => x.orderId));
      expect(ids.size).toBe(1);
      expect(answers.every((x) => x.status === 201 || x.code === "idempotency_key_in_use")).toBe(true);
      expect(await stock([a!, b!])).toEqual([98, 99]);
    });

    test("cancel of a confirmed order: every line's stock back once; a second cancel answers 200 and moves nothing", async () => {
      const [a, b] = await items(10, 10);
      const placed = await place([{ item_id: a!, quantity: 2 }, { item_id: b!, quantity: 3 }]);
      expect(placed.status).toBe(201);
      expect(await stock([a!, b!])).toEqual([8, 7]);
      const key = randomUUID();
      const first = await cancel(placed.body.order_id, key, "changed my mind");
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({ status: "cancelled", reason: "cancelled" });
      expect(await stock([a!, b!])).toEqual([10, 10]);
      // The same key replays; another key finds it cancelled: 200 again, nothing moves.
      const replay = await cancel(placed.body.order_id, key, "changed my mind");
      expect(replay).toMatchObject({ status: 200, replayed: true });
      const again = await cancel(placed.body.order_id);
      expect(again).toMatchObject({ status: 200, replayed: false, body: { status: "cancelled" } });
      expect(await stock([a!, b!])).toEqual([10, 10]);
      // The key with another reason is a reuse.
      expect((await service.cancel(placed.body.order_id, key, { reason: "other" }, null, "test").catch((e) => e)).code).toBe("idempotency_key_reused");
      const history = (await service.get(placed.body.order_id)).history;
      expect(history.map((h) => h.status)).toEqual(["pending", "confirmed", "cancelling", "cancelled"]);
      expect(history[2]).toMatchObject({ actor: "test", note: "changed my mind" });
    });

    test("rejected and failed orders are not cancellable (409); an unknown order is a 404", async () => {
      const [a] = await items(1);
      const rejected = await place([{ item_id: a!, quantity: 5 }]);
      const r = await cancel(rejected.body.order_id);
      expect(r.status).toBe(409);
      expect(r.body).toMatchObject({ type: "https://valerix.dev/problems/order-not-cancellable", order_status: "rejected" });
      expect((await service.cancel(randomUUID(), randomUUID(), {}, null, "test").catch((e) => e)).code).toBe("not_found");
      expect(await stock([a!])).toEqual([1]);
    });

    test("cancel while the breaker is open: 202 cancelling, then cancelled by the worker; the late retry of the deduction takes nothing", async () => {
      const [a, b] = await items(10, 10);
      // Inventory slow: the order is queued, with a deduction that may or may not have landed.
      inventory.faults.push("lost_response");
      const placed = await place([{ item_id: a!, quantity: 1 }, { item_id: b!, quantity: 4 }]);
      expect(placed.status).toBe(202);
      policy.open = true;
      const c = await cancel(placed.body.order_id, randomUUID(), "too slow");
      expect(c.status).toBe(202);
      expect(c.body).toMatchObject({ status: "cancelling" });
      policy.open = false;
      const results = await drain(worker());
      expect(results).toContain("cancelled");
      expect(results).not.toContain("confirmed");
      expect((await service.get(placed.body.order_id)).status).toBe("cancelled");
      // The deduction had landed (its answer was lost); the release gave every line back, once.
      expect(await stock([a!, b!])).toEqual([10, 10]);
      // A deduction arriving now is refused.
      expect(await inventory.deduct({ order_id: placed.body.order_id, lines: [{ item_id: a!, quantity: 1 }] })).toMatchObject({ outcome: "rejected", reason: "released" });
    });

    test("a queued order cancelled before its retry never takes stock", async () => {
      const [a] = await items(10);
      inventory.faults.push("unavailable");
      const placed = await place([{ item_id: a!, quantity: 3 }]);
      expect(placed.status).toBe(202);
      const c = await cancel(placed.body.order_id);
      expect(c).toMatchObject({ status: 200, body: { status: "cancelled" } });
      const results = await drain(worker());
      expect(results.filter((r) => r === "confirmed")).toEqual([]);
      expect(await stock([a!])).toEqual([10]);
      expect((await service.get(placed.body.order_id)).status).toBe("cancelled");
    });

    test("inventory unreachable for the release: 202 cancelling; a later cancel or the worker finishes it, once", async () => {
      const [a] = await items(10);
      const placed = await place([{ item_id: a!, quantity: 3 }]);
      inventory.releaseFaults.push("lost_response");
      const first = await cancel(placed.body.order_id);
      expect(first).toMatchObject({ status: 202, body: { status: "cancelling" } });
      // The release did commit (its answer was lost): the stock is back already, and stays back once.
      expect(await stock([a!])).toEqual([10]);
      const second = await cancel(placed.body.order_id);
      expect(second).toMatchObject({ status: 200, body: { status: "cancelled" } });
      await drain(worker());
      expect(await stock([a!])).toEqual([10]);
    });
  });
}
