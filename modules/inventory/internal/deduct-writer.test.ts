import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { Database } from "../../../platform/db.ts";
import { BACKENDS, openTestDatabase } from "../../../tests/support/system.ts";
import { createItem, deduct, DeductWriter, getItem, release } from "./inventory.repository.ts";

/**
 * Group-committed deductions, on both databases: each order gets the answer a lone deduction
 * would have given it, stock moves exactly once per applied line, an order's lines move all
 * together or not at all, and an oversell anywhere in a batch costs no order its place.
 */
for (const backend of BACKENDS) {
  describe(`group-committed deductions on ${backend}`, () => {
    let database: Database;
    let close: () => Promise<void>;
    beforeAll(async () => {
      ({ database, close } = await openTestDatabase(backend, ["inventory"]));
    });
    afterAll(() => close());

    const writer = () => new DeductWriter(database, { maxBatch: 64, maxInFlight: 1 });
    const one = (orderId: string, itemId: string, quantity: number) => ({ orderId, lines: [{ item_id: itemId, quantity }] });
    async function item(quantity: number) {
      const id = `item-${randomUUID().slice(0, 8)}`;
      await createItem(database, id, id, quantity);
      return id;
    }
    /** Deducted lines in the ledger for these orders. */
    async function applied(orderIds: string[]) {
      const r = await sql<{ n: number }>`
        select count(*)::int as n from inventory.movements where order_id = any(${orderIds}::uuid[]) and type = 'deduct'`.execute(database.db);
      return r.rows[0]!.n;
    }
    /** Items whose quantity is not the sum of their movements. */
    async function drifted(itemIds: string[]) {
      const r = await sql<{ item_id: string }>`
        select i.item_id from inventory.inventory i join inventory.movements m using (item_id)
        where i.item_id = any(${itemIds}::text[]) group by i.item_id, i.quantity having i.quantity <> sum(m.quantity_change)`.execute(database.db);
      return r.rows.map((x) => x.item_id);
    }

    test("a burst over two items: one statement, each order told the stock it left", async () => {
      const w = writer();
      const a = await item(100);
      const b = await item(50);
      const reqs = [a, b, a, a, b, a].map((itemId, i) => one(randomUUID(), itemId, i + 1));
      const out = await Promise.all(reqs.map((r) => w.deduct(r)));
      expect(w.stats()).toEqual({ batches: 2, items: 6 });
      // Item a: 100 −1 (alone) → 99, then in the batch −3 → 96, −4 → 92, −6 → 86. Item b: 50 −2 → 48, −5 → 43.
      expect(out).toEqual([99, 48, 96, 92, 43, 86].map((n) => ({ kind: "applied", remaining: [n] })));
      expect((await getItem(database, a))!.quantity).toBe(86);
      expect((await getItem(database, b))!.quantity).toBe(43);
      expect(await applied(reqs.map((r) => r.orderId))).toBe(6);
      expect(await drifted([a, b])).toEqual([]);
    });

    test("an oversell in a batch: every order decided alone, the stock never below zero", async () => {
      const w = writer();
      const scarce = await item(3);
      const plenty = await item(10);
      const reqs = [scarce, scarce, plenty, scarce, scarce, scarce, plenty].map((itemId) => one(randomUUID(), itemId, 1));
      const out = await Promise.all(reqs.map((r) => w.deduct(r)));
      const kinds = out.map((o) => (o.kind === "refused" ? o.rejected[0]!.reason : o.kind));
      expect(kinds.filter((k, i) => reqs[i]!.lines[0]!.item_id === plenty)).toEqual(["applied", "applied"]);
      expect(kinds.filter((k, i) => reqs[i]!.lines[0]!.item_id === scarce).sort()).toEqual(["applied", "applied", "applied", "insufficient_stock", "insufficient_stock"]);
      expect((await getItem(database, scarce))!.quantity).toBe(0);
      expect((await getItem(database, plenty))!.quantity).toBe(8);
      expect(await applied(reqs.map((r) => r.orderId))).toBe(5);
    });

    test("unknown items, repeats of a decided order and duplicates in one burst: as a lone deduction answers", async () => {
      const w = writer();
      const it = await item(10);
      const decided = randomUUID();
      expect(await deduct(database, one(decided, it, 2))).toEqual({ kind: "applied", remaining: [8] });
      const dup = randomUUID();
      const out = await Promise.all([
        w.deduct(one(randomUUID(), it, 1)),
        w.deduct(one(randomUUID(), "no-such-item", 1)),
        w.deduct(one(decided, it, 2)),
        w.deduct(one(dup, it, 3)),
        w.deduct(one(dup, it, 3)),
      ]);
      expect(out[0]).toEqual({ kind: "applied", remaining: [7] });
      expect(out[1]).toEqual({ kind: "refused", rejected: [{ item_id: "no-such-item", reason: "unknown_item" }] });
      const firstApplied = (q: number) => ({ kind: "first", account: { outcome: "applied", lines: [{ item_id: it, quantity: q }], rejected_lines: [], released: false } });
      expect(out[2] as unknown).toEqual(firstApplied(2));
      expect(out[3]).toEqual({ kind: "applied", remaining: [4] });
      expect(out[4] as unknown).toEqual(firstApplied(3));
      expect((await getItem(database, it))!.quantity).toBe(4);
    });

    test("a 3-line order with one short line: refused naming that line, no stock moved; with an unknown one too, both named", async () => {
      const [a, b, c] = [await item(5), await item(1), await item(5)];
      const orderId = randomUUID();
      const lines = [{ item_id: a, quantity: 2 }, { item_id: b, quantity: 2 }, { item_id: c, quantity: 2 }];
      expect(await writer().deduct({ orderId, lines })).toEqual({ kind: "refused", rejected: [{ item_id: b, reason: "insufficient_stock" }] });
      expect([(await getItem(database, a))!.quantity, (await getItem(database, b))!.quantity, (await getItem(database, c))!.quantity]).toEqual([5, 1, 5]);
      expect(await applied([orderId])).toBe(0);
      const both = await deduct(database, { orderId: randomUUID(), lines: [{ item_id: "ghost", quantity: 1 }, ...lines] });
      expect(both).toEqual({ kind: "refused", rejected: [{ item_id: "ghost", reason: "unknown_item" }, { item_id: b, reason: "insufficient_stock" }] });
      // The refusal is the order's first outcome: a repeat after a restock still says so.
      expect(await deduct(database, { orderId, lines })).toMatchObject({ kind: "first", account: { outcome: "rejected", rejected_lines: [{ item_id: b, reason: "insufficient_stock" }] } });
      expect(await drifted([a, b, c])).toEqual([]);
    });

    test("release restores every line once; a deduction after it is refused", async () => {
      const [a, b] = [await item(10), await item(10)];
      const orderId = randomUUID();
      expect(await deduct(database, { orderId, lines: [{ item_id: b, quantity: 3 }, { item_id: a, quantity: 2 }] })).toEqual({ kind: "applied", remaining: [7, 8] });
      const first = await release(database, orderId);
      const again = await release(database, orderId);
      expect(first).toEqual({ restored: true, restoredNow: true, lines: [a, b].sort().map((id) => ({ item_id: id, quantity: id === a ? 2 : 3 })) });
      expect(again).toMatchObject({ restored: true, restoredNow: false });
      expect([(await getItem(database, a))!.quantity, (await getItem(database, b))!.quantity]).toEqual([10, 10]);
      expect(await deduct(database, { orderId, lines: [{ item_id: a, quantity: 1 }] })).toMatchObject({ kind: "first", account: { released: true } });
      const blocked = randomUUID();
      expect(await release(database, blocked)).toEqual({ restored: false, restoredNow: false, lines: [] });
      expect(await deduct(database, { orderId: blocked, lines: [{ item_id: a, quantity: 1 }] })).toMatchObject({ kind: "first", account: { outcome: "released", released: true } });
      expect((await getItem(database, a))!.quantity).toBe(10);
      expect(await drifted([a, b])).toEqual([]);
    });

    test("64 concurrent 3-line orders over 4 hot items in random line orders: no deadlock, no oversell, ledger sums hold", async () => {
      const items = [await item(40), await item(40), await item(40), await item(40)];
      const writers = [new DeductWriter(database, { maxBatch: 16, maxInFlight: 2 }), new DeductWriter(database, { maxBatch: 16, maxInFlight: 2 })];
      let seed = 7;
      const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      const reqs = Array.from({ length: 64 }, (_, i) => {
        const pick = [...items].sort(() => rand() - 0.5).slice(0, 3);
        return { orderId: randomUUID(), lines: pick.map((id) => ({ item_id: id, quantity: 1 + Math.floor(rand() * 2) })), w: writers[i % 2]! };
      });
      const out = await Promise.all(reqs.map((r) => r.w.deduct(r)));
      const appliedReqs = reqs.filter((_, i) => out[i]!.kind === "applied");
      expect(out.every((o) => o.kind === "applied" || o.kind === "refused")).toBe(true);
      for (const id of items) {
        const taken = appliedReqs.flatMap((r) => r.lines).filter((l) => l.item_id === id).reduce((n, l) => n + l.quantity, 0);
        const left = (await getItem(database, id))!.quantity;
        expect(left).toBeGreaterThanOrEqual(0);
        expect(left).toBe(40 - taken);
      }
      // Every applied order has all three lines in the ledger; every refused one has none.
      expect(await applied(appliedReqs.map((r) => r.orderId))).toBe(appliedReqs.length * 3);
      expect(await applied(reqs.filter((_, i) => out[i]!.kind !== "applied").map((r) => r.orderId))).toBe(0);
      expect(await drifted(items)).toEqual([]);
    });

    test("two writers batching the same items at once: no deadlock, no lost or double deduction", async () => {
      const items = [await item(1000), await item(1000), await item(1000)];
      const writers = [new DeductWriter(database, { maxBatch: 16, maxInFlight: 2 }), new DeductWriter(database, { maxBatch: 16, maxInFlight: 2 })];
      const reqs = Array.from({ length: 120 }, (_, i) => ({ ...one(randomUUID(), items[(i * 7) % 3]!, 1), w: writers[i % 2]! }));
      const out = await Promise.all(reqs.map((r) => r.w.deduct(r)));
      expect(out.every((o) => o.kind === "applied")).toBe(true);
      const left = await Promise.all(items.map(async (i) => (await getItem(database, i))!.quantity));
      expect(left.reduce((a, b) => a + b, 0)).toBe(3000 - 120);
      expect(await applied(reqs.map((r) => r.orderId))).toBe(120);
      expect(writers[0]!.stats().batches).toBeLessThan(60);
    });
  });
}
