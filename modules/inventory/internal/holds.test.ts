import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { Database } from "../../../platform/db.ts";
import { ManualClock } from "../../../tests/support/manual-clock.ts";
import { BACKENDS, openTestDatabase } from "../../../tests/support/system.ts";
import { InventoryService } from "./inventory.service.ts";

/**
 * Holds at inventory, on both databases, with a manual clock: a hold moves stock from available to
 * reserved until its deadline; payment in time sells it, expiry gives it back, and the two decide
 * on the order's account one after the other, so exactly one wins. Every test ends by checking the
 * ledger: quantity = Σ quantity_change and reserved = Σ reserved_change, per item.
 */
for (const backend of BACKENDS) {
  describe(`holds on ${backend}`, () => {
    let database: Database;
    let close: () => Promise<void>;
    let clock: ManualClock;
    let inventory: InventoryService;
    beforeAll(async () => {
      ({ database, close } = await openTestDatabase(backend, ["inventory"]));
      clock = new ManualClock(Date.UTC(2026, 5, 1));
      inventory = new InventoryService(database, undefined, clock);
    });
    afterAll(() => close());

    async function item(quantity: number) {
      const id = `hold-${randomUUID().slice(0, 8)}`;
      await inventory.createItem(id, id, quantity);
      return id;
    }
    /** [available, reserved] per item, after checking both against the ledger. */
    async function stock(...ids: string[]) {
      const r = await sql<{ item_id: string; quantity: number; reserved_quantity: number; q: number; rq: number }>`
        select i.item_id, i.quantity, i.reserved_quantity,
          coalesce(sum(m.quantity_change), 0)::int as q, coalesce(sum(m.reserved_change), 0)::int as rq
        from inventory.inventory i left join inventory.movements m using (item_id)
        where i.item_id = any(${ids}::text[]) group by i.item_id, i.quantity, i.reserved_quantity`.execute(database.db);
      const byId = new Map(r.rows.map((x) => [x.item_id, x]));
      return ids.map((id) => {
        const x = byId.get(id)!;
        expect([x.q, x.rq]).toEqual([x.quantity, x.reserved_quantity]);
        return [x.quantity, x.reserved_quantity];
      });
    }
    const hold = (orderId: string, lines: Array<{ item_id: string; quantity: number }>, holdS = 60) => inventory.deduct({ order_id: orderId, lines, hold_s: holdS });

    test("a hold moves every line from available to reserved until its deadline; a replay says so", async () => {
      const [a, b] = [await item(10), await item(5)];
      const orderId = randomUUID();
      const r = await hold(orderId, [{ item_id: a, quantity: 2 }, { item_id: b, quantity: 5 }], 600);
      expect(r).toMatchObject({ outcome: "applied", hold_expires_at: new Date(clock.now() + 600_000).toISOString() });
      expect(await stock(a, b)).toEqual([[8, 2], [0, 5]]);
      expect(await hold(orderId, [{ item_id: a, quantity: 2 }, { item_id: b, quantity: 5 }], 600)).toMatchObject({ outcome: "applied", replayed: true, hold_expires_at: r.outcome === "applied" ? r.hold_expires_at : "" });
      // Held stock is not available to anyone else.
      expect(await inventory.deduct({ order_id: randomUUID(), lines: [{ item_id: b, quantity: 1 }] })).toMatchObject({ outcome: "rejected", reason: "insufficient_stock" });
      expect((await inventory.deduct({ order_id: randomUUID(), lines: [{ item_id: a, quantity: 1 }], hold_s: 10 }).catch((e) => e)).code).toBe("invalid_request");
    });

    test("paid one tick before the deadline: sold; one tick after: expired with the stock back", async () => {
      const a = await item(10);
      const inTime = randomUUID();
      const late = randomUUID();
      await hold(inTime, [{ item_id: a, quantity: 3 }]);
      await hold(late, [{ item_id: a, quantity: 4 }]);
      const deadline = clock.now() + 60_000;
      await clock.advance(60_000);
      expect(await inventory.pay(inTime, new Date(deadline - 1).toISOString())).toMatchObject({ outcome: "paid" });
      expect(await inventory.pay(late, new Date(deadline + 1).toISOString())).toMatchObject({ outcome: "expired" });
      expect(await stock(a)).toEqual([[7, 0]]);
      // Settled once: repeats answer the same and move nothing; an expiry of a paid hold says paid.
      expect(await inventory.pay(inTime, new Date(deadline - 1).toISOString())).toMatchObject({ outcome: "paid" });
      expect(await inventory.expire(inTime)).toMatchObject({ outcome: "paid" });
      expect(await inventory.pay(late, new Date(deadline - 1).toISOString())).toMatchObject({ outcome: "expired" });
      expect(await stock(a)).toEqual([[7, 0]]);
      // An expired order's account is closed: a late deduction is refused.
      expect(await inventory.deduct({ order_id: late, lines: [{ item_id: a, quantity: 4 }] })).toMatchObject({ outcome: "rejected", reason: "released" });
    });

    test("expiry: a live hold stays held before its deadline; after it, released once", async () => {
      const a = await item(10);
      const orderId = randomUUID();
      await hold(orderId, [{ item_id: a, quantity: 3 }]);
      await clock.advance(59_999);
      expect(await inventory.expire(orderId)).toMatchObject({ outcome: "held" });
      expect(await stock(a)).toEqual([[7, 3]]);
      await clock.advance(1);
      const both = await Promise.all([inventory.expire(orderId), inventory.expire(orderId)]);
      expect(both.map((x) => x.outcome)).toEqual(["expired", "expired"]);
      expect(await stock(a)).toEqual([[10, 0]]);
      expect(await inventory.expire(randomUUID())).toMatchObject({ outcome: "not_held" });
    });

    test("cancelling a held order releases its hold; a paid one gives its sale back; both once", async () => {
      const a = await item(10);
      const held = randomUUID();
      const paid = randomUUID();
      await hold(held, [{ item_id: a, quantity: 2 }]);
      await hold(paid, [{ item_id: a, quantity: 3 }]);
      expect(await inventory.pay(paid, new Date(clock.now()).toISOString())).toMatchObject({ outcome: "paid" });
      expect(await stock(a)).toEqual([[5, 2]]);
      expect(await inventory.release(held)).toMatchObject({ restored: true, quantity: 2 });
      expect(await inventory.pay(held, new Date(clock.now()).toISOString())).toMatchObject({ outcome: "released" });
      expect(await inventory.release(paid)).toMatchObject({ restored: true, quantity: 3 });
      expect(await inventory.release(paid)).toMatchObject({ restored: true, quantity: 3 });
      expect(await stock(a)).toEqual([[10, 0]]);
    });

    test("1,000 trials of payment racing expiry at the deadline: each hold ends one way, and stock agrees every time", async () => {
      const a = await item(1_000_000);
      const outcomes = { paid: 0, expired: 0 };
      for (let i = 0; i < 1000; i++) {
        const orderId = randomUUID();
        await hold(orderId, [{ item_id: a, quantity: 1 }]);
        const deadline = clock.now() + 60_000;
        await clock.advance(60_000);
        // The customer paid a tick before the deadline; the sweeper expires at the deadline.
        const [p, e] = await Promise.all([inventory.pay(orderId, new Date(deadline - 1).toISOString()), inventory.expire(orderId)]);
        expect(["paid", "expired"]).toContain(p.outcome);
        expect(e.outcome).toBe(p.outcome);
        outcomes[p.outcome as "paid" | "expired"]++;
      }
      expect(outcomes.paid + outcomes.expired).toBe(1000);
      const settled = await sql<{ sold: number; expired: number }>`
        select count(*) filter (where type = 'sale')::int as sold, count(*) filter (where type = 'hold_release')::int as expired
        from inventory.movements where item_id = ${a}`.execute(database.db);
      expect(settled.rows[0]).toEqual({ sold: outcomes.paid, expired: outcomes.expired });
      expect(await stock(a)).toEqual([[1_000_000 - outcomes.paid, 0]]);
    });
  });
}
