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

/**
 * A movement id at or below which every movement that will ever exist is committed. Every
 * transaction that writes the ledger holds `ROW EXCLUSIVE` on it from before it takes an id
 * (the identity value is drawn while the insert runs) until it ends; a `SHARE` lock is granted
 * only once no such transaction is left, so the largest id then is a watermark. The lock is
 * held for one index lookup; null when it was not granted within `lockTimeoutMs` (a long
 * writer), in which case the caller keeps its old watermark.
 */
export async function ledgerWatermark(database: Database, lockTimeoutMs: number): Promise<number | null> {
  try {
    return await typed(database)
      .transaction()
      .execute(async (trx) => {
        await sql.raw(`set local lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`).execute(trx);
        await sql`lock table inventory.movements in share mode`.execute(trx);
        const r = await sql<{ w: number }>`select coalesce(max(id), 0) as w from inventory.movements`.execute(trx);
        return Number(r.rows[0]!.w);
      });
  } catch (err) {
    // lock_not_available: writers held the ledger longer than we would wait.
    if ((err as { code?: string }).code === "55P03") return null;
    throw err;
  }
}

/** One snapshot of the ledger past a watermark: every item's quantity, and its movements after `after`. */
export interface LedgerSlice {
  quantities: Map<string, number>;
  /** Σ quantity_change per item of movements with id > after. */
  since: Map<string, number>;
  /** The same, of movements with `after` < id ≤ `upTo` only: what the next checkpoint adds. */
  settled: Map<string, number>;
  /** Movements read. */
  read: number;
}

/**
 * Reads, in one snapshot (REPEATABLE READ, read only), every item's quantity and the movements
 * after `after` (all of them when 0), through the primary key. One snapshot sees the quantity
 * and the movements of the same committed transactions, so a deduction committing meanwhile
 * never shows as drift.
 */
export async function ledgerSlice(database: Database, after: number, upTo: number): Promise<LedgerSlice> {
  return typed(database)
    .transaction()
    .setIsolationLevel("repeatable read")
    .setAccessMode("read only")
    .execute(async (trx) => {
      const q = await sql<{ item_id: string; quantity: number }>`select item_id, quantity from inventory.inventory`.execute(trx);
      const m = await sql<{ item_id: string; since: number; settled: number | null; n: number }>`
        select item_id, sum(quantity_change)::bigint as since, (sum(quantity_change) filter (where id <= ${upTo}))::bigint as settled, count(*)::bigint as n
        from inventory.movements where id > ${after} group by item_id`.execute(trx);
      const slice: LedgerSlice = { quantities: new Map(), since: new Map(), settled: new Map(), read: 0 };
      for (const r of q.rows) slice.quantities.set(r.item_id, Number(r.quantity));
      for (const r of m.rows) {
        slice.since.set(r.item_id, Number(r.since));
        if (r.settled !== null) slice.settled.set(r.item_id, Number(r.settled));
        slice.read += Number(r.n);
      }
      return slice;
    });
}

/** An item whose quantity is not the sum of its movements. */
export interface DriftedItem {
  item_id: string;
  quantity: number;
  /** Σ quantity_change of its movements. */
  ledger: number;
}
