import { sql, type Kysely, type Transaction } from "kysely";
import type { Database } from "../../../platform/db.ts";
import type { InventoryItem } from "../inventory.port.ts";
import { itemColumns, toItem } from "./inventory.repository.ts";
import type { InventoryTables, MovementType } from "./inventory.tables.ts";

/**
 * The ledger's SQL: reading an item's movements, changing stock by hand (restock, adjust) with
 * the movement that says so, and the reconciliation query that compares each item's quantity
 * with the sum of its movements.
 */

const typed = (database: Database) => database.db as Kysely<InventoryTables>;

export interface MovementView {
  id: number;
  type: MovementType;
  quantity_change: number;
  order_id: string | null;
  reason: string | null;
  created_at: string;
}

/**
 * An item's movements, newest first, `limit` of them with ids below `before` when given; `more`
 * says whether older ones remain. Null when the item does not exist.
 */
export async function listMovements(
  database: Database,
  itemId: string,
  limit: number,
  before: number | undefined,
): Promise<{ movements: MovementView[]; more: boolean } | null> {
  let q = typed(database)
    .selectFrom("inventory.movements")
    .select(["id", "type", "quantity_change", "order_id", "reason", "created_at"])
    .where("item_id", "=", itemId);
  if (before !== undefined) q = q.where("id", "<", before);
  const rows = await q.orderBy("id", "desc").limit(limit + 1).execute();
  // Every item has its `create` movement, so no rows means no item, or a cursor past the first.
  if (rows.length === 0) {
    const item = await typed(database).selectFrom("inventory.inventory").select("item_id").where("item_id", "=", itemId).executeTakeFirst();
    if (!item) return null;
  }
  const movements = rows.slice(0, limit).map((r) => ({
    id: Number(r.id),
    type: r.type,
    quantity_change: Number(r.quantity_change),
    order_id: r.order_id,
    reason: r.reason,
    created_at: new Date(r.created_at).toISOString(),
  }));
  return { movements, more: rows.length > limit };
}

export type StockChange =
  | { kind: "applied"; item: InventoryItem; movementId: number }
  | { kind: "missing" }
  | { kind: "below_zero"; quantity: number }
  | { kind: "over_limit"; quantity: number };

/**
 * Changes an item's stock by `change` inside `trx` and records the movement: the row is locked
 * first, so the check against zero and `maxStock` holds until commit. A refusal writes nothing.
 */
export async function changeStock(
  trx: Transaction<InventoryTables>,
  change: { itemId: string; quantityChange: number; type: "restock" | "adjust"; reason: string | null; maxStock: number },
): Promise<StockChange> {
  const row = await trx.selectFrom("inventory.inventory").select("quantity").where("item_id", "=", change.itemId).forUpdate().executeTakeFirst();
  if (!row) return { kind: "missing" };
  const quantity = Number(row.quantity);
  const after = quantity + change.quantityChange;
  if (after < 0) return { kind: "below_zero", quantity };
  if (after > change.maxStock) return { kind: "over_limit", quantity };
  const item = await trx
    .updateTable("inventory.inventory")
    .set({ quantity: after, updated_at: new Date() })
    .where("item_id", "=", change.itemId)
    .returning(itemColumns)
    .executeTakeFirstOrThrow();
  const movement = await trx
    .insertInto("inventory.movements")
    .values({ item_id: change.itemId, type: change.type, quantity_change: change.quantityChange, order_id: null, reason: change.reason })
    .returning("id")
    .executeTakeFirstOrThrow();
  return { kind: "applied", item: toItem(item), movementId: Number(movement.id) };
}

/** An item whose quantity is not the sum of its movements. */
export interface DriftedItem {
  item_id: string;
  quantity: number;
  /** Σ quantity_change of its movements. */
  ledger: number;
}

/**
 * Every item whose quantity differs from the sum of its movements, in item order. One snapshot
 * (REPEATABLE READ, read only) sees the quantity and the movements of the same committed
 * transactions, so a deduction committing meanwhile never shows as drift. One pass over the
 * ledger: its cost grows with the ledger (see README, "The stock ledger").
 */
export async function findDrift(database: Database): Promise<DriftedItem[]> {
  return typed(database)
    .transaction()
    .setIsolationLevel("repeatable read")
    .setAccessMode("read only")
    .execute(async (trx) => {
      const r = await sql<{ item_id: string; quantity: number; ledger: number }>`
        select i.item_id, i.quantity, coalesce(m.total, 0)::bigint as ledger
        from inventory.inventory i
        left join (select item_id, sum(quantity_change) as total from inventory.movements group by item_id) m using (item_id)
        where i.quantity <> coalesce(m.total, 0)
        order by i.item_id`.execute(trx);
      return r.rows.map((x) => ({ item_id: x.item_id, quantity: Number(x.quantity), ledger: Number(x.ledger) }));
    });
}
