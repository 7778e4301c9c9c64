import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { Database } from "../../../platform/db.ts";
import { BACKENDS, openTestDatabase } from "../../../tests/support/system.ts";
import { createItem, deduct, DeductWriter, getItem } from "./inventory.repository.ts";

/**
 * Group-committed deductions, on both databases: each order gets the answer a lone deduction
 * would have given it, stock moves exactly once per applied order, and an oversell anywhere in
 * a batch costs no order its place.
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
    async function item(quantity: number) {
      const id = `item-${randomUUID().slice(0, 8)}`;
      await createItem(database, id, id, quantity);
      return id;
    }
    async function applied(orderIds: string[]) {
      const r = await sql<{ n: number }>`
        select count(*)::int as n from inventory.inventory_transactions
        where order_id = any(${orderIds}::uuid[]) and type = 'deduct' and outcome = 'applied'`.execute(database.db);
      return r.rows[0]!.n;
    }

    test("a burst over two items: one statement, each order told the stock it left", async () => {
      const w = writer();
      const a = await item(100);
      const b = await item(50);
      const reqs = [a, b, a, a, b, a].map((itemId, i) => ({ orderId: randomUUID(), itemId, quantity: i + 1 }));
      const out = await Promise.all(reqs.map((r) => w.deduct(r.orderId, r.itemId, r.quantity)));
      expect(w.stats()).toEqual({ batches: 2, items: 6 });
      // Item a: 100 −1 (alone) → 99, then in the batch −3 → 96, −4 → 92, −6 → 86. Item b: 50 −2 → 48, −5 → 43.
      expect(out).toEqual([
        { kind: "applied", remaining: 99 },
        { kind: "applied", remaining: 48 },
        { kind: "applied", remaining: 96 },
        { kind: "applied", remaining: 92 },
        { kind: "applied", remaining: 43 },
        { kind: "applied", remaining: 86 },
      ]);
      expect((await getItem(database, a))!.quantity).toBe(86);
      expect((await getItem(database, b))!.quantity).toBe(43);
      expect(await applied(reqs.map((r) => r.orderId))).toBe(6);
    });

    test("an oversell in a batch: every order decided alone, the stock never below zero", async () => {
      const w = writer();
      const scarce = await item(3);
      const plenty = await item(10);
      const reqs = [scarce, scarce, plenty, scarce, scarce, scarce, plenty].map((itemId) => ({ orderId: randomUUID(), itemId, quantity: 1 }));
      const out = await Promise.all(reqs.map((r) => w.deduct(r.orderId, r.itemId, r.quantity)));
      const kinds = out.map((o) => (o.kind === "applied" ? "applied" : o.kind === "refused" ? o.reason : o.kind));
      expect(kinds.filter((k, i) => reqs[i]!.itemId === plenty)).toEqual(["applied", "applied"]);
      expect(kinds.filter((k, i) => reqs[i]!.itemId === scarce).sort()).toEqual(["applied", "applied", "applied", "insufficient_stock", "insufficient_stock"]);
      expect((await getItem(database, scarce))!.quantity).toBe(0);
      expect((await getItem(database, plenty))!.quantity).toBe(8);
      expect(await applied(reqs.map((r) => r.orderId))).toBe(5);
    });

    test("unknown items, repeats of a decided order and duplicates in one burst: as a lone deduction answers", async () => {
      const w = writer();
      const it = await item(10);
      const decided = randomUUID();
      expect(await deduct(database, decided, it, 2)).toEqual({ kind: "applied", remaining: 8 });
      const dup = randomUUID();
      const out = await Promise.all([
        w.deduct(randomUUID(), it, 1),
        w.deduct(randomUUID(), "no-such-item", 1),
        w.deduct(decided, it, 2),
        w.deduct(dup, it, 3),
        w.deduct(dup, it, 3),
      ]);
      expect(out[0]).toEqual({ kind: "applied", remaining: 7 });
      expect(out[1]).toEqual({ kind: "refused", reason: "unknown_item" });
      expect(out[2]).toEqual({ kind: "first", item_id: it, quantity: 2, outcome: "applied" });
      expect(out[3]).toEqual({ kind: "applied", remaining: 4 });
      expect(out[4]).toEqual({ kind: "first", item_id: it, quantity: 3, outcome: "applied" });
      expect((await getItem(database, it))!.quantity).toBe(4);
    });

    test("two writers batching the same items at once: no deadlock, no lost or double deduction", async () => {
      const items = [await item(1000), await item(1000), await item(1000)];
      const writers = [new DeductWriter(database, { maxBatch: 16, maxInFlight: 2 }), new DeductWriter(database, { maxBatch: 16, maxInFlight: 2 })];
      const reqs = Array.from({ length: 120 }, (_, i) => ({ orderId: randomUUID(), itemId: items[(i * 7) % 3]!, w: writers[i % 2]! }));
      const out = await Promise.all(reqs.map((r) => r.w.deduct(r.orderId, r.itemId, 1)));
      expect(out.every((o) => o.kind === "applied")).toBe(true);
      const left = await Promise.all(items.map(async (i) => (await getItem(database, i))!.quantity));
      expect(left.reduce((a, b) => a + b, 0)).toBe(3000 - 120);
      expect(await applied(reqs.map((r) => r.orderId))).toBe(120);
      expect(writers[0]!.stats().batches).toBeLessThan(60);
    });
  });
}
