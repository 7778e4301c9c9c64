import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { sql, type Kysely } from "kysely";
import type { Database } from "../../../platform/db.ts";
import { BACKENDS, openTestDatabase } from "../../../tests/support/system.ts";
import { LedgerReconciler } from "./drift.ts";
import { createItem, DeductWriter, release } from "./inventory.repository.ts";
import { changeStock } from "./ledger.repository.ts";
import type { InventoryTables } from "./inventory.tables.ts";

/**
 * The drift alarm on both databases: a full pass, then checks that read only what came after
 * the checkpoint, and neither may ever see drift that is not there (orders committing during a
 * check, a movement committing after one with a larger id) nor miss drift that is.
 */
for (const backend of BACKENDS) {
  describe(`ledger reconciliation on ${backend}`, () => {
    let database: Database;
    let close: () => Promise<void>;
    beforeAll(async () => {
      ({ database, close } = await openTestDatabase(backend, ["inventory"]));
    });
    afterAll(() => close());

    const typed = () => database.db as Kysely<InventoryTables>;
    async function item(quantity: number) {
      const id = `item-${randomUUID().slice(0, 8)}`;
      await createItem(database, id, id, quantity);
      return id;
    }
    const adjust = (itemId: string, quantityChange: number) =>
      typed()
        .transaction()
        .execute((trx) => changeStock(trx, { itemId, quantityChange, type: "adjust", reason: "test", maxStock: 1_000_000_000 }));

    test("the first check sums the whole ledger, later ones only what came after their checkpoint", async () => {
      const r = new LedgerReconciler(database, { fullEvery: 3 });
      const a = await item(10);
      await adjust(a, -3);
      const first = await r.check();
      expect(first).toMatchObject({ mode: "full", drifted: [] });
      expect(first.movements_read).toBeGreaterThanOrEqual(2);
      const second = await r.check();
      expect(second).toMatchObject({ mode: "incremental", movements_read: 0, drifted: [] });
      await adjust(a, 5);
      await item(1);
      expect(await r.check()).toMatchObject({ mode: "incremental", movements_read: 2, drifted: [] });
      expect(await r.check()).toMatchObject({ mode: "full", drifted: [] });
    });

    test("a quantity changed behind the ledger's back is named by the next check, full or incremental; nothing is fixed", async () => {
      const r = new LedgerReconciler(database);
      const a = await item(10);
      const b = await item(10);
      await r.check();
      await sql`update inventory.inventory set quantity = quantity + 1 where item_id = ${a}`.execute(database.db);
      await sql`update inventory.inventory set quantity = quantity - 2 where item_id = ${b}`.execute(database.db);
      const seen: string[][] = [];
      r.onCheck((c) => seen.push(c.drifted.map((d) => d.item_id)));
      const incremental = await r.check();
      expect(incremental.mode).toBe("incremental");
      expect(incremental.drifted).toEqual([
        { item_id: a, quantity: 11, ledger: 10 },
        { item_id: b, quantity: 8, ledger: 10 },
      ].sort((x, y) => (x.item_id < y.item_id ? -1 : 1)));
      expect((await r.check({ full: true })).drifted.map((d) => d.item_id).sort()).toEqual([a, b].sort());
      expect(seen.length).toBe(2);
      const stock = await sql<{ quantity: number }>`select quantity from inventory.inventory where item_id = ${a}`.execute(database.db);
      expect(stock.rows[0]!.quantity).toBe(11);
      await sql`update inventory.inventory set quantity = quantity - 1 where item_id = ${a}`.execute(database.db);
      await sql`update inventory.inventory set quantity = quantity + 2 where item_id = ${b}`.execute(database.db);
      expect((await r.check()).drifted).toEqual([]);
    });

    test("an edit of the movements themselves escapes the checkpoint and is caught by the next full pass", async () => {
      const r = new LedgerReconciler(database);
      const a = await item(10);
      await adjust(a, -4);
      await r.check();
      await sql`delete from inventory.movements where item_id = ${a} and type = 'adjust'`.execute(database.db);
      expect((await r.check()).drifted).toEqual([]);
      expect((await r.check({ full: true })).drifted).toEqual([{ item_id: a, quantity: 6, ledger: 10 }]);
      await sql`update inventory.inventory set quantity = 10 where item_id = ${a}`.execute(database.db);
    });

    test("orders, releases and adjustments committing during checks never show as drift", async () => {
      const r = new LedgerReconciler(database, { fullEvery: 4 });
      const items = await Promise.all([item(500), item(500), item(500), item(500)]);
      await r.check();
      const w = new DeductWriter(database, { maxBatch: 16, maxInFlight: 2 });
      const reports: number[] = [];
      let busy = true;
      const checking = (async () => {
        while (busy) reports.push((await r.check()).drifted.length);
      })();
      await Promise.all(
        Array.from({ length: 96 }, async (_, i) => {
          const orderId = randomUUID();
          const lines = [items[i % 4]!, items[(i + 1) % 4]!, items[(i + 2) % 4]!].map((itemId, n) => ({ item_id: itemId, quantity: 1 + ((i + n) % 3) }));
          await w.deduct({ orderId, lines });
          if (i % 3 === 0) await release(database, orderId);
          if (i % 5 === 0) await adjust(items[i % 4]!, i % 2 ? 2 : -1);
        }),
      );
      busy = false;
      await checking;
      expect(reports.length).toBeGreaterThan(2);
      expect(reports.every((n) => n === 0)).toBe(true);
      expect((await r.check()).drifted).toEqual([]);
      expect((await r.check({ full: true })).drifted).toEqual([]);
    });

    test.skipIf(backend !== "postgres")("a movement that commits after one with a larger id is still counted", async () => {
      const r = new LedgerReconciler(database, { lockTimeoutMs: 20 });
      const a = await item(10);
      await r.check();
      // A writer takes the next id and keeps its transaction open; a later one commits past it.
      const slow = await typed().startTransaction().execute();
      try {
        await sql`update inventory.inventory set quantity = quantity - 1 where item_id = ${a}`.execute(slow);
        await sql`insert into inventory.movements (item_id, type, quantity_change, reason) values (${a}, 'adjust', -1, 'slow writer')`.execute(slow);
        const b = await item(5);
        await adjust(b, 1);
        // The watermark cannot pass the open writer, so this check leaves its id for the next one.
        expect((await r.check()).drifted).toEqual([]);
        await slow.commit().execute();
      } catch (err) {
        await slow.rollback().execute();
        throw err;
      }
      const after = await r.check();
      expect(after.mode).toBe("incremental");
      expect(after.drifted).toEqual([]);
      expect((await r.check({ full: true })).drifted).toEqual([]);
    });

    test("start checks at once and on schedule; stop waits for a running check", async () => {
      const r = new LedgerReconciler(database);
      const checks: string[] = [];
      r.onCheck((c) => checks.push(c.mode));
      r.start(50);
      for (let i = 0; i < 100 && checks.length < 3; i++) await Bun.sleep(20);
      await r.stop();
      const n = checks.length;
      expect(n).toBeGreaterThanOrEqual(3);
      expect(checks[0]).toBe("full");
      await Bun.sleep(120);
      expect(checks.length).toBe(n);
      expect(() => r.start(0)).toThrow(RangeError);
      expect(() => new LedgerReconciler(database, { fullEvery: 0 })).toThrow(RangeError);
    });
  });
}
