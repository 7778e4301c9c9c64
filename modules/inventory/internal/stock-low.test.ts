import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { Database } from "../../../platform/db.ts";
import { ManualClock } from "../../../tests/support/manual-clock.ts";
import { BACKENDS, openTestDatabase } from "../../../tests/support/system.ts";
import { InventoryService } from "./inventory.service.ts";
import { LedgerService } from "./ledger.service.ts";
import { mulberry32 } from "../../../platform/prng.ts";
import { stockLowMatchesLedger } from "../../../verify/stock-events.ts";
import type { LedgerRow } from "../../../verify/types.ts";

/**
 * `stock.low` at inventory, on both databases: the trigger of migration 0004 writes one event
 * each time an item's available quantity becomes at or below its threshold, in the transaction
 * of the change, whatever path made it; none while it stays low; again once it was above.
 */
for (const backend of BACKENDS) {
  describe(`stock.low on ${backend}`, () => {
    let database: Database;
    let close: () => Promise<void>;
    let clock: ManualClock;
    let inventory: InventoryService;
    let ledger: LedgerService;
    beforeAll(async () => {
      ({ database, close } = await openTestDatabase(backend, ["inventory"]));
      clock = new ManualClock(Date.UTC(2026, 5, 1));
      inventory = new InventoryService(database, undefined, clock);
      ledger = new LedgerService(database, () => {});
    });
    afterAll(() => close());

    async function item(quantity: number, threshold = 0) {
      const id = `low-${randomUUID().slice(0, 8)}`;
      await inventory.createItem(id, `Item ${id}`, quantity, threshold);
      return id;
    }
    /** The item's stock.low events, oldest first: the available quantity each one saw. */
    async function lows(id: string): Promise<number[]> {
      const r = await sql<{ available: number }>`
        select (data->>'available')::int as available from inventory.outbox_events where item_id = ${id} order by id`.execute(database.db);
      return r.rows.map((x) => Number(x.available));
    }
    const sell = (id: string, quantity: number, orderId = randomUUID()) => inventory.deduct({ order_id: orderId, lines: [{ item_id: id, quantity }] });

    test("falling to the threshold writes one event with the item as it stands; further deductions write none", async () => {
      const id = await item(10, 5);
      await sell(id, 4);
      expect(await lows(id)).toEqual([]);
      await sell(id, 1);
      expect(await lows(id)).toEqual([5]);
      await sell(id, 2);
      await sell(id, 3);
      expect(await lows(id)).toEqual([5]);
      const row = await sql<{ event_id: string; type: string; data: Record<string, unknown> }>`select event_id, type, data from inventory.outbox_events where item_id = ${id}`.execute(database.db);
      expect(row.rows[0]!.event_id).toMatch(/^evt_[0-9a-f]{32}00000000$/);
      expect(row.rows[0]).toMatchObject({ type: "stock.low", data: { item_id: id, item_name: `Item ${id}`, quantity: 5, reserved_quantity: 0, available: 5, low_stock_threshold: 5 } });
    });

    test("restock above the threshold re-arms; restock to it does not; adjust crosses like a sale", async () => {
      const id = await item(6, 5);
      await sell(id, 2); // 4: low
      await ledger.restock(id, null, { quantity: 1 }); // 5: still low
      await sell(id, 1); // 4
      expect(await lows(id)).toEqual([4]);
      await ledger.restock(id, null, { quantity: 2 }); // 6: above, re-armed
      await ledger.adjust(id, randomUUID(), { quantity_change: -3, reason: "Broken" }); // 3: low again
      expect(await lows(id)).toEqual([4, 3]);
    });

    test("no threshold, no events; a threshold set at or above the stock writes one; lowered below and raised again, one more", async () => {
      const id = await item(10);
      await sell(id, 9);
      expect(await lows(id)).toEqual([]);
      expect(await inventory.setLowStockThreshold(id, 1)).toMatchObject({ item_id: id, low_stock_threshold: 1, quantity: 1 });
      expect(await lows(id)).toEqual([1]);
      await inventory.setLowStockThreshold(id, 3); // still low: nothing new
      expect(await lows(id)).toEqual([1]);
      await inventory.setLowStockThreshold(id, 0); // off
      await inventory.setLowStockThreshold(id, 2); // low again
      expect(await lows(id)).toEqual([1, 1]);
      expect(await inventory.setLowStockThreshold("no-such-item-x", 3).catch((e) => e.code)).toBe("not_found");
      expect(await inventory.setLowStockThreshold(id, -1).catch((e) => e.code)).toBe("invalid_request");
      expect(await inventory.setLowStockThreshold(id, 1.5).catch((e) => e.code)).toBe("invalid_request");
      expect((await inventory.get(id))!.low_stock_threshold).toBe(2);
    });

    test("an item created at or below its threshold is low from the start", async () => {
      const id = await item(3, 3);
      expect(await lows(id)).toEqual([3]);
      expect((await inventory.get(id))!.low_stock_threshold).toBe(3);
    });

    test("a refused order leaves no event: a three-line order whose last line is short moves nothing", async () => {
      const [a, b, c] = [await item(10, 8), await item(10, 8), await item(1, 0)];
      const r = await inventory.deduct({ order_id: randomUUID(), lines: [{ item_id: a, quantity: 5 }, { item_id: b, quantity: 5 }, { item_id: c, quantity: 2 }] });
      expect(r).toMatchObject({ outcome: "rejected", reason: "insufficient_stock" });
      expect([await lows(a), await lows(b)]).toEqual([[], []]);
      expect((await inventory.get(a))!.quantity).toBe(10);
    });

    test("concurrent deductions sharing a statement cross once", async () => {
      const id = await item(40, 20);
      const results = await Promise.all(Array.from({ length: 30 }, () => sell(id, 1)));
      expect(results.every((r) => r.outcome === "applied")).toBe(true);
      expect((await inventory.get(id))!.quantity).toBe(10);
      expect(await lows(id)).toHaveLength(1);
      expect((await lows(id))[0]).toBeLessThanOrEqual(20);
    });

    test("holds: a hold can make an item low; expiry re-arms; cancelling re-arms; payment moves nothing available", async () => {
      const id = await item(10, 5);
      const first = randomUUID();
      await inventory.deduct({ order_id: first, lines: [{ item_id: id, quantity: 6 }], hold_s: 60 }); // 4 available, 6 reserved
      expect(await lows(id)).toEqual([4]);
      const ev = await sql<{ data: Record<string, number> }>`select data from inventory.outbox_events where item_id = ${id}`.execute(database.db);
      expect(ev.rows[0]!.data).toMatchObject({ quantity: 4, reserved_quantity: 6, available: 4 });
      await clock.advance(60_000);
      expect(await inventory.expire(first)).toMatchObject({ outcome: "expired" }); // 10: re-armed
      const second = randomUUID();
      await inventory.deduct({ order_id: second, lines: [{ item_id: id, quantity: 5 }], hold_s: 60 }); // 5: low
      expect(await lows(id)).toEqual([4, 5]);
      expect(await inventory.pay(second, new Date(clock.now()).toISOString())).toMatchObject({ outcome: "paid" }); // still 5
      expect(await lows(id)).toEqual([4, 5]);
      await ledger.restock(id, null, { quantity: 5 }); // 10
      const third = randomUUID();
      await inventory.deduct({ order_id: third, lines: [{ item_id: id, quantity: 6 }], hold_s: 60 }); // 4: low
      expect(await inventory.release(third)).toMatchObject({ restored: true }); // cancelled: 10, re-armed
      await sell(id, 5); // 5: low
      expect(await lows(id)).toEqual([4, 5, 4, 5]);
    });

    test("a random workload: the events are exactly the ledger's crossings (the verification run's check)", async () => {
      const rnd = mulberry32(backend === "postgres" ? 7 : 8);
      const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
      const items = [await item(30, 10), await item(30, 10), await item(15, 20), await item(30, 0)];
      const holds: string[] = [];
      const sold: string[] = [];
      for (let round = 0; round < 12; round++) {
        const work: Array<Promise<unknown>> = [];
        for (let i = 0; i < 8; i++) {
          const lines = items.filter(() => rnd() < 0.5).map((id) => ({ item_id: id, quantity: int(1, 4) }));
          if (lines.length === 0) continue;
          const orderId = randomUUID();
          if (rnd() < 0.3) {
            holds.push(orderId);
            work.push(inventory.deduct({ order_id: orderId, lines, hold_s: 60 }));
          } else {
            sold.push(orderId);
            work.push(inventory.deduct({ order_id: orderId, lines }));
          }
        }
        await Promise.all(work);
        if (rnd() < 0.5) await ledger.restock(items[int(0, items.length - 1)]!, null, { quantity: int(1, 12) });
        if (rnd() < 0.3 && sold.length) await inventory.release(sold.splice(int(0, sold.length - 1), 1)[0]!);
        if (rnd() < 0.4 && holds.length) {
          const h = holds.splice(int(0, holds.length - 1), 1)[0]!;
          if (rnd() < 0.5) await inventory.pay(h, new Date(clock.now()).toISOString());
          else await inventory.release(h);
        }
      }
      await clock.advance(61_000);
      for (const h of holds) await inventory.expire(h);
      const moves = await sql<LedgerRow>`
        select order_id::text as order_id, item_id, type, quantity_change, reserved_change, created_at::text as tx_at
        from inventory.movements where item_id = any(${items}::text[]) order by id`.execute(database.db);
      const events = await sql<{ event_id: string; item_id: string; available: number; low_stock_threshold: number }>`
        select event_id, item_id, (data->>'available')::int as available, (data->>'low_stock_threshold')::int as low_stock_threshold
        from inventory.outbox_events where item_id = any(${items}::text[]) order by xid, id`.execute(database.db);
      const thresholds = Object.fromEntries(await Promise.all(items.map(async (id) => [id, (await inventory.get(id))!.low_stock_threshold] as const)));
      const verdict = stockLowMatchesLedger({
        ledger: moves.rows.map((m) => ({ ...m, quantity_change: Number(m.quantity_change), reserved_change: Number(m.reserved_change) })),
        thresholds,
        events: events.rows.map((e) => ({ ...e, available: Number(e.available), low_stock_threshold: Number(e.low_stock_threshold) })),
      });
      expect(verdict.breaches).toEqual([]);
      expect(verdict.status).toBe("pass");
      // The workload did make items low, more than once.
      expect(events.rows.length).toBeGreaterThan(2);
    });

    test("stockEvents pages in visible order with an opaque cursor", async () => {
      const id = await item(10, 9);
      await sell(id, 1); // low
      await inventory.setLowStockThreshold(id, 0);
      await inventory.setLowStockThreshold(id, 9); // low again
      const all: string[] = [];
      let after: string | null = null;
      // Events show once no older transaction runs anywhere on the server (which other suites share).
      for (let i = 0; i < 10_000 && all.length < 2; i++) {
        const page = await inventory.stockEvents(after, 2);
        all.push(...page.events.filter((e) => e.data.item_id === id).map((e) => e.id));
        if (page.events.length === 0) {
          expect(page.next_after).toBe(after);
          await Bun.sleep(10);
        }
        after = page.next_after;
      }
      expect(all).toHaveLength(2);
      expect((await inventory.stockEvents(after, 1_000)).events.filter((e) => e.data.item_id === id)).toEqual([]);
      expect(new Set(all).size).toBe(2);
      // A cursor from another database (one this one's transactions have not reached): from the start again.
      const foreign = await inventory.stockEvents("99999999999.1", 1_000);
      const first = await inventory.stockEvents(null, 1_000);
      expect(foreign.events.map((e) => e.id)).toEqual(first.events.map((e) => e.id));
      expect(foreign.events.length).toBeGreaterThan(0);
      expect(await inventory.stockEvents("nonsense", 2).catch((e) => e.code)).toBe("invalid_request");
    });
  });
}
