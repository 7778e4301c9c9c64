import type { Kysely } from "kysely";
import type { Database } from "../../../platform/db.ts";
import { GroupCommit, statementLimits, type GroupCommitSettings } from "../../../platform/group-commit.ts";
import type { InventoryItem, RejectionReason } from "../inventory.port.ts";
import type { InventoryTables } from "./inventory.tables.ts";

/**
 * Inventory's SQL. The deduction is a single statement that commits on its own: it claims the
 * `(order_id, 'deduct')` row and moves the stock together, and `CHECK (quantity >= 0)` refuses an
 * oversell under any concurrency. Statements on the hot path are named, so `pg` prepares them
 * once per connection.
 */
const DEDUCT_SQL = `
with ins as (
  insert into inventory.inventory_transactions (order_id, item_id, type, quantity_change, outcome)
  select $1::uuid, item_id, 'deduct', -$3::int, 'applied' from inventory.inventory where item_id = $2
  on conflict (order_id, type) do nothing
  returning item_id
), upd as (
  update inventory.inventory i set quantity = i.quantity - $3::int, updated_at = now()
  from ins where i.item_id = ins.item_id
  returning i.quantity
)
select quantity from upd`;

// The batch form of DEDUCT_SQL, for group commit: one claimed row per order and one update per
// item, taking the item rows' locks in item order so concurrent batches cannot deadlock on them.
// Any oversell fails the whole statement (the CHECK), and each order is then deducted alone.
const DEDUCT_BATCH_SQL = `
with req as (
  select * from unnest($1::uuid[], $2::text[], $3::int[]) with ordinality as r(order_id, item_id, quantity, n)
), ins as (
  insert into inventory.inventory_transactions (order_id, item_id, type, quantity_change, outcome)
  select r.order_id, i.item_id, 'deduct', -r.quantity, 'applied'
  from req r join inventory.inventory i on i.item_id = r.item_id order by r.n
  on conflict (order_id, type) do nothing
  returning order_id, item_id, -quantity_change as quantity
), locked as (
  select i.item_id from inventory.inventory i where i.item_id in (select item_id from ins) order by i.item_id for update
), upd as (
  update inventory.inventory i set quantity = i.quantity - t.quantity, updated_at = now()
  from (select ins.item_id, sum(ins.quantity)::int as quantity from ins join locked using (item_id) group by ins.item_id) t
  where i.item_id = t.item_id
  returning i.item_id, i.quantity
)
select ins.order_id, upd.quantity as remaining from ins join upd using (item_id)`;

const RECORD_REFUSAL_SQL = `
insert into inventory.inventory_transactions (order_id, item_id, type, quantity_change, outcome)
values ($1::uuid, $2, 'deduct', 0, $3)
on conflict (order_id, type) do nothing
returning outcome`;

// The first outcome of an order's deduct, unless the order's account has since been closed: a
// release row (written by every release that found a deduct row) makes every later answer
// 'released', so an "applied" that was given back is never replayed as standing.
const FIRST_DEDUCT_SQL = `
select d.item_id, -d.quantity_change as quantity,
  case when exists (
    select 1 from inventory.inventory_transactions r where r.order_id = d.order_id and r.type = 'release'
  ) then 'released' else d.outcome end as outcome
from inventory.inventory_transactions d where d.order_id = $1::uuid and d.type = 'deduct'`;

// A release first claims the deduct slot itself (outcome 'released'), so no later deduct can
// ever apply. If a deduct already stood, a second statement (it must see that row, committed
// after this statement's snapshot) writes the release row, once: restoring an applied
// deduction's stock, or, for a refused one, recording with quantity 0 that the account is closed.
const BLOCK_SQL = `
insert into inventory.inventory_transactions (order_id, item_id, type, quantity_change, outcome)
values ($1::uuid, '', 'deduct', 0, 'released')
on conflict (order_id, type) do nothing
returning id`;

const RESTORE_SQL = `
with d as (
  select item_id, case when outcome = 'applied' then -quantity_change else 0 end as qty
  from inventory.inventory_transactions
  where order_id = $1::uuid and type = 'deduct' and outcome <> 'released'
), rel as (
  insert into inventory.inventory_transactions (order_id, item_id, type, quantity_change, outcome)
  select $1::uuid, item_id, 'release', qty, case when qty > 0 then 'applied' else 'released' end from d
  on conflict (order_id, type) do nothing
  returning item_id, quantity_change
), upd as (
  update inventory.inventory i set quantity = i.quantity + rel.quantity_change, updated_at = now()
  from rel where i.item_id = rel.item_id and rel.quantity_change > 0
  returning rel.quantity_change
)
select (select qty from d) as deducted, (select quantity_change from upd) as restored_now`;

export type DeductRow =
  | { kind: "applied"; remaining: number }
  | { kind: "first"; item_id: string; quantity: number; outcome: "applied" | RejectionReason }
  | { kind: "refused"; reason: "unknown_item" | "insufficient_stock" };

function isCheckViolation(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { code?: string }).code === "23514";
}

export async function deduct(database: Database, orderId: string, itemId: string, quantity: number): Promise<DeductRow> {
  try {
    const rows = await database.query<{ quantity: number }>("inv_deduct", DEDUCT_SQL, [orderId, itemId, quantity]);
    if (rows[0]) return { kind: "applied", remaining: rows[0].quantity };
  } catch (err) {
    if (!isCheckViolation(err)) throw err;
    return recordRefusal(database, orderId, itemId, "insufficient_stock");
  }
  // Nothing claimed: either this order was decided before, or the item does not exist.
  return settleUnclaimed(database, { orderId, itemId, quantity });
}

export interface DeductRequestRow {
  orderId: string;
  itemId: string;
  quantity: number;
}

/**
 * Deductions under group commit (`platform/group-commit.ts`): concurrent orders share one
 * statement and one commit, and each call answers exactly what `deduct` alone would have.
 */
export class DeductWriter {
  private readonly group: GroupCommit<DeductRequestRow, DeductRow>;

  constructor(private readonly database: Database, settings: GroupCommitSettings) {
    this.group = new GroupCommit({
      ...statementLimits(settings, "deduct"),
      keyOf: (r) => r.orderId,
      runOne: (r) => deduct(database, r.orderId, r.itemId, r.quantity),
      runBatch: (items) => this.runBatch(items),
    });
  }

  deduct(orderId: string, itemId: string, quantity: number): Promise<DeductRow> {
    return this.group.submit({ orderId, itemId, quantity });
  }

  /** Statements run and deductions carried. */
  stats() {
    return this.group.stats();
  }

  private async runBatch(items: readonly DeductRequestRow[]): Promise<DeductRow[]> {
    const rows = await this.database.query<{ order_id: string; remaining: number }>("inv_deduct_batch", DEDUCT_BATCH_SQL, [
      items.map((r) => r.orderId),
      items.map((r) => r.itemId),
      items.map((r) => r.quantity),
    ]);
    const applied = new Map<string, number>();
    for (const r of rows) applied.set(r.order_id, r.remaining);
    // Within the statement the orders of one item deduct in batch order: each order's remaining
    // stock is the item's final stock plus what the later orders of that item took.
    const takenAfter = new Map<string, number>();
    const out: Array<DeductRow | null> = new Array(items.length).fill(null);
    for (let i = items.length - 1; i >= 0; i--) {
      const r = items[i]!;
      const final = applied.get(r.orderId);
      if (final === undefined) continue;
      const later = takenAfter.get(r.itemId) ?? 0;
      out[i] = { kind: "applied", remaining: final + later };
      takenAfter.set(r.itemId, later + r.quantity);
    }
    // Nothing claimed for an order: decided before, or an unknown item. Settled alone, as `deduct` does.
    return Promise.all(out.map((row, i) => row ?? settleUnclaimed(this.database, items[i]!)));
  }
}

async function settleUnclaimed(database: Database, r: DeductRequestRow): Promise<DeductRow> {
  const first = await firstDeduct(database, r.orderId);
  if (first) return first;
  return recordRefusal(database, r.orderId, r.itemId, "unknown_item");
}

async function recordRefusal(
  database: Database,
  orderId: string,
  itemId: string,
  reason: "unknown_item" | "insufficient_stock",
): Promise<DeductRow> {
  const rows = await database.query("inv_refuse", RECORD_REFUSAL_SQL, [orderId, itemId, reason]);
  if (rows[0]) return { kind: "refused", reason };
  // A concurrent call for the same order decided first; its outcome stands.
  const first = await firstDeduct(database, orderId);
  if (!first) throw new Error(`deduct row for ${orderId} vanished`);
  return first;
}

async function firstDeduct(database: Database, orderId: string): Promise<DeductRow | null> {
  const rows = await database.query<{ item_id: string; quantity: number; outcome: "applied" | RejectionReason }>(
    "inv_first_deduct",
    FIRST_DEDUCT_SQL,
    [orderId],
  );
  const r = rows[0];
  return r ? { kind: "first", item_id: r.item_id, quantity: r.quantity, outcome: r.outcome } : null;
}

/** Returns the quantity restored by the standing deduction (0 when none stood). */
export async function release(database: Database, orderId: string): Promise<{ restored: boolean; quantity: number }> {
  const blocked = await database.query("inv_block", BLOCK_SQL, [orderId]);
  if (blocked[0]) return { restored: false, quantity: 0 };
  const rows = await database.query<{ deducted: number | null; restored_now: number | null }>("inv_restore", RESTORE_SQL, [orderId]);
  const deducted = rows[0]?.deducted ?? 0;
  return { restored: deducted > 0, quantity: deducted };
}

const typed = (database: Database) => database.db as Kysely<InventoryTables>;

function toItem(r: { item_id: string; item_name: string; quantity: number; reserved_quantity: number; updated_at: Date | string }): InventoryItem {
  return {
    item_id: r.item_id,
    item_name: r.item_name,
    quantity: r.quantity,
    reserved_quantity: r.reserved_quantity,
    updated_at: new Date(r.updated_at).toISOString(),
  };
}

const itemColumns = ["item_id", "item_name", "quantity", "reserved_quantity", "updated_at"] as const;

export async function getItem(database: Database, itemId: string): Promise<InventoryItem | null> {
  const r = await typed(database).selectFrom("inventory.inventory").select(itemColumns).where("item_id", "=", itemId).executeTakeFirst();
  return r ? toItem(r) : null;
}

export async function listItems(database: Database): Promise<InventoryItem[]> {
  const rows = await typed(database).selectFrom("inventory.inventory").select(itemColumns).orderBy("item_id").execute();
  return rows.map(toItem);
}

/** Inserts a new item with its opening stock recorded as a transaction; null when the id is taken. */
export async function createItem(database: Database, itemId: string, itemName: string, quantity: number): Promise<InventoryItem | null> {
  return typed(database)
    .transaction()
    .execute(async (trx) => {
      const r = await trx
        .insertInto("inventory.inventory")
        .values({ item_id: itemId, item_name: itemName, quantity })
        .onConflict((oc) => oc.column("item_id").doNothing())
        .returning(itemColumns)
        .executeTakeFirst();
      if (!r) return null;
      await trx
        .insertInto("inventory.inventory_transactions")
        .values({ order_id: null, item_id: itemId, type: "create", quantity_change: quantity })
        .execute();
      return toItem(r);
    });
}

/** Null when the item is missing or the restock would pass `maxStock`. */
export async function restock(database: Database, itemId: string, quantity: number, maxStock: number): Promise<InventoryItem | null> {
  return typed(database)
    .transaction()
    .execute(async (trx) => {
      const r = await trx
        .updateTable("inventory.inventory")
        .set((eb) => ({ quantity: eb("quantity", "+", quantity), updated_at: new Date() }))
        .where("item_id", "=", itemId)
        .where("quantity", "<=", maxStock - quantity)
        .returning(itemColumns)
        .executeTakeFirst();
      if (!r) return null;
      await trx
        .insertInto("inventory.inventory_transactions")
        .values({ order_id: null, item_id: itemId, type: "restock", quantity_change: quantity })
        .execute();
      return toItem(r);
    });
}
