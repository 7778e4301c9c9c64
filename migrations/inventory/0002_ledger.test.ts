import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { Database } from "../../platform/db.ts";
import { BACKENDS, openTestDatabase } from "../../tests/support/system.ts";
import { migrateModule, migrateModuleTo } from "../index.ts";
import { createInventoryModule } from "../../modules/inventory/index.ts";

/**
 * A database written by the one-item release (inventory at 0001, `inventory_transactions`)
 * migrates to the ledger: applied movements become movements summing to each quantity, and
 * every order's first outcome becomes its account, so replays and releases keep their answers.
 */
for (const backend of BACKENDS) {
  describe(`inventory migration 0002_ledger on ${backend}`, () => {
    let database: Database;
    let close: () => Promise<void>;
    const [o1, o2, o3, o4, o5] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    beforeAll(async () => {
      ({ database, close } = await openTestDatabase(backend, []));
      expect(await migrateModuleTo(database.db, "inventory", "0001_init")).toEqual(["0001_init"]);
      await sql`insert into inventory.inventory (item_id, item_name, quantity) values ('a', 'Item A', 11), ('b', 'Item B', 5)`.execute(database.db);
      // As the one-item release wrote them, in order.
      const rows: Array<[string | null, string, string, number, string]> = [
        [null, "a", "create", 10, "applied"],
        [null, "b", "create", 5, "applied"],
        [null, "a", "restock", 4, "applied"],
        [o1, "a", "deduct", -3, "applied"], // confirmed, standing
        [o2, "b", "deduct", -2, "applied"], // confirmed, then released: stock back
        [o2, "b", "release", 2, "applied"],
        [o3, "a", "deduct", 0, "insufficient_stock"], // refused
        [o4, "", "deduct", 0, "released"], // released before any deduction: blocks one
        [o5, "nope", "deduct", 0, "unknown_item"], // refused, then released
        [o5, "nope", "release", 0, "released"],
      ];
      for (const [orderId, itemId, type, change, outcome] of rows) {
        await sql`insert into inventory.inventory_transactions (order_id, item_id, type, quantity_change, outcome)
          values (${orderId}::uuid, ${itemId}, ${type}, ${change}, ${outcome})`.execute(database.db);
      }
      expect(await migrateModule(database.db, "inventory")).toEqual(["0002_ledger"]);
    });
    afterAll(() => close());

    test("applied movements carry over, in order, and sum to every item's quantity", async () => {
      const movements = await sql<{ item_id: string; type: string; quantity_change: number; order_id: string | null }>`
        select item_id, type, quantity_change, order_id from inventory.movements order by id`.execute(database.db);
      expect(movements.rows).toEqual([
        { item_id: "a", type: "create", quantity_change: 10, order_id: null },
        { item_id: "b", type: "create", quantity_change: 5, order_id: null },
        { item_id: "a", type: "restock", quantity_change: 4, order_id: null },
        { item_id: "a", type: "deduct", quantity_change: -3, order_id: o1 },
        { item_id: "b", type: "deduct", quantity_change: -2, order_id: o2 },
        { item_id: "b", type: "release", quantity_change: 2, order_id: o2 },
      ]);
      const mod = createInventoryModule({ database, adminGuard: () => undefined });
      expect((await mod.ledger.check()).drifted).toEqual([]);
      const old = await sql<{ t: string | null }>`select to_regclass('inventory.inventory_transactions')::text as t`.execute(database.db);
      expect(old.rows[0]!.t).toBeNull();
    });

    test("each order's first outcome becomes its account", async () => {
      const accounts = await sql<{ order_id: string; outcome: string; lines: unknown; rejected_lines: unknown; released: boolean }>`
        select order_id, outcome, lines, rejected_lines, released_at is not null as released from inventory.order_accounts`.execute(database.db);
      const byOrder = new Map(accounts.rows.map((a) => [a.order_id, { ...a, order_id: undefined }]));
      expect(byOrder.size).toBe(5);
      expect(byOrder.get(o1)).toMatchObject({ outcome: "applied", lines: [{ item_id: "a", quantity: 3 }], rejected_lines: null, released: false });
      expect(byOrder.get(o2)).toMatchObject({ outcome: "applied", lines: [{ item_id: "b", quantity: 2 }], released: true });
      expect(byOrder.get(o3)).toMatchObject({ outcome: "rejected", lines: [], rejected_lines: [{ item_id: "a", reason: "insufficient_stock" }], released: false });
      expect(byOrder.get(o4)).toMatchObject({ outcome: "released", lines: [], rejected_lines: null, released: true });
      expect(byOrder.get(o5)).toMatchObject({ outcome: "rejected", rejected_lines: [{ item_id: "nope", reason: "unknown_item" }], released: true });
    });

    test("the migrated accounts answer as before: replays, blocked orders, a release restoring once", async () => {
      const { port, ledger } = createInventoryModule({ database, adminGuard: () => undefined });
      expect(await port.deduct({ order_id: o1, lines: [{ item_id: "a", quantity: 3 }] })).toMatchObject({ outcome: "applied", replayed: true });
      expect(await port.deduct({ order_id: o3, lines: [{ item_id: "a", quantity: 1 }] })).toMatchObject({ outcome: "rejected", reason: "insufficient_stock", replayed: true });
      expect(await port.deduct({ order_id: o4, lines: [{ item_id: "a", quantity: 1 }] })).toMatchObject({ outcome: "rejected", reason: "released" });
      expect(await port.deduct({ order_id: o2, lines: [{ item_id: "b", quantity: 2 }] })).toMatchObject({ outcome: "rejected", reason: "released" });
      expect(await port.release(o1)).toMatchObject({ restored: true, quantity: 3 });
      expect(await port.release(o1)).toMatchObject({ restored: true, quantity: 3 });
      expect(await port.release(o2)).toMatchObject({ restored: true });
      expect((await port.get("a"))!.quantity).toBe(14);
      expect((await port.get("b"))!.quantity).toBe(5);
      expect((await ledger.check({ full: true })).drifted).toEqual([]);
    });
  });
}
