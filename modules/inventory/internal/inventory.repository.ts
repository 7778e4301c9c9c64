import { sql, type Kysely } from "kysely";
import type { Database } from "../../../platform/db.ts";
import { GroupCommit, statementLimits, type GroupCommitSettings } from "../../../platform/group-commit.ts";
import type { HoldOutcome, InventoryItem, LineRejection, OrderLine } from "../inventory.port.ts";
import type { InventoryTables } from "./inventory.tables.ts";

/**
 * Inventory's SQL for orders. A deduction normally is one statement that commits on its own: it
 * claims the order's account and moves every line's stock together, taking the item rows' locks
 * in item order, and `CHECK (quantity >= 0)` refuses an oversell under any concurrency. Orders
 * that statement cannot settle (a short or unknown line, an order decided before, a batch that
 * failed) are decided alone, in a transaction that takes the same locks in the same order: the
 * account first, then the items by id. Statements on the hot path are named, so `pg` prepares
 * them once per connection.
 */

// Orders as parallel arrays, one element per line: every order whose items all exist is claimed
// (in order id order) and deducted; an oversell anywhere fails the whole statement.
const DEDUCT_SQL = `
with req as (
  select * from unnest($1::uuid[], $2::text[], $3::int[]) with ordinality as r(order_id, item_id, quantity, n)
), ok as (
  select r.order_id from req r left join inventory.inventory i on i.item_id = r.item_id
  group by r.order_id having count(i.item_id) = count(*)
), claim as (
  insert into inventory.order_accounts (order_id, outcome, lines)
  select r.order_id, 'applied', jsonb_agg(jsonb_build_object('item_id', r.item_id, 'quantity', r.quantity) order by r.n)
  from req r join ok using (order_id) group by r.order_id order by r.order_id
  on conflict (order_id) do nothing
  returning order_id
), lines as (
  select r.* from req r join claim using (order_id)
), locked as (
  select i.item_id from inventory.inventory i where i.item_id in (select item_id from lines) order by i.item_id for update
), upd as (
  update inventory.inventory i set quantity = i.quantity - t.quantity, updated_at = now()
  from (select l.item_id, sum(l.quantity)::int as quantity from lines l join locked using (item_id) group by l.item_id) t
  where i.item_id = t.item_id
  returning i.item_id, i.quantity
), mov as (
  insert into inventory.movements (item_id, type, quantity_change, order_id)
  select item_id, 'deduct', -quantity, order_id from lines order by n
)
select l.order_id, l.item_id, upd.quantity as remaining from lines l join upd using (item_id)`;

export interface DeductInput {
  orderId: string;
  lines: readonly OrderLine[];
  /** Reserve instead of sell, until this moment. */
  holdUntil?: Date;
}

/** An order's account: its first outcome, and whether a release has closed it since. */
export interface Account {
  outcome: "applied" | "rejected" | "released" | "held";
  lines: OrderLine[];
  rejected_lines: LineRejection[];
  released: boolean;
  hold_expires_at: Date | null;
  settled: "sold" | "expired" | "cancelled" | null;
}

export type DeductRow =
  | { kind: "applied"; remaining: number[] }
  | { kind: "refused"; rejected: LineRejection[] }
  | { kind: "first"; account: Account };

function isCheckViolation(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { code?: string }).code === "23514";
}

function deductParams(items: readonly DeductInput[]): unknown[] {
  const lines = items.flatMap((r) => r.lines.map((l) => [r.orderId, l.item_id, l.quantity] as const));
  return [lines.map((l) => l[0]), lines.map((l) => l[1]), lines.map((l) => l[2])];
}

/**
 * Runs DEDUCT_SQL for some orders; per order, each line's stock right after it (lines of one
 * item deduct in the order given), or null when the statement did not claim the order.
 */
async function deductStatement(database: Database, name: string, items: readonly DeductInput[]): Promise<Array<number[] | null>> {
  const rows = await database.query<{ order_id: string; item_id: string; remaining: number }>(name, DEDUCT_SQL, deductParams(items));
  const final = new Map<string, number>();
  const claimed = new Set<string>();
  for (const r of rows) {
    final.set(r.item_id, r.remaining);
    claimed.add(r.order_id);
  }
  const takenAfter = new Map<string, number>();
  const out: Array<number[] | null> = new Array(items.length).fill(null);
  for (let i = items.length - 1; i >= 0; i--) {
    const r = items[i]!;
    if (!claimed.has(r.orderId)) continue;
    out[i] = r.lines.map((l) => {
      const later = takenAfter.get(l.item_id) ?? 0;
      takenAfter.set(l.item_id, later + l.quantity);
      return final.get(l.item_id)! + later;
    });
  }
  return out;
}

/** Deducts one order alone: the statement, and when it settles nothing, the careful path. */
export async function deduct(database: Database, r: DeductInput): Promise<DeductRow> {
  // Holds are made on the careful path: they are few, and move two numbers per line.
  if (r.holdUntil) return decideAlone(database, r);
  try {
    const [remaining] = await deductStatement(database, "inv_deduct", [r]);
    if (remaining) return { kind: "applied", remaining };
  } catch (err) {
    if (!isCheckViolation(err)) throw err;
  }
  return decideAlone(database, r);
}

/**
 * Deductions under group commit (`platform/group-commit.ts`): concurrent orders share one
 * statement and one commit, and each call answers exactly what `deduct` alone would have.
 */
export class DeductWriter {
  private readonly group: GroupCommit<DeductInput, DeductRow>;

  constructor(private readonly database: Database, settings: GroupCommitSettings) {
    this.group = new GroupCommit({
      ...statementLimits(settings, "deduct"),
      keyOf: (r) => r.orderId,
      runOne: (r) => deduct(database, r),
      runBatch: (items) => this.runBatch(items),
    });
  }

  deduct(r: DeductInput): Promise<DeductRow> {
    return r.holdUntil ? deduct(this.database, r) : this.group.submit(r);
  }

  /** Statements run and deductions carried. */
  stats() {
    return this.group.stats();
  }

  private async runBatch(items: readonly DeductInput[]): Promise<DeductRow[]> {
    const remaining = await deductStatement(this.database, "inv_deduct_batch", items);
    // Not claimed: decided before, or a line names an unknown item. Decided alone.
    return Promise.all(remaining.map((rem, i) => (rem ? { kind: "applied" as const, remaining: rem } : decideAlone(this.database, items[i]!))));
  }
}

/**
 * Decides one order in a transaction: claims its account (or finds it decided), locks its items
 * in id order, and either deducts every line or records every failing line and moves nothing.
 */
async function decideAlone(database: Database, r: DeductInput): Promise<DeductRow> {
  const row = await database.db.transaction().execute(async (trx): Promise<DeductRow | null> => {
    const hold = r.holdUntil?.toISOString() ?? null;
    const claimed = await sql`
      insert into inventory.order_accounts (order_id, outcome, lines, hold_expires_at)
      values (${r.orderId}::uuid, ${hold ? "held" : "applied"}, ${JSON.stringify(r.lines)}::jsonb, ${hold}::timestamptz)
      on conflict (order_id) do nothing returning order_id`.execute(trx);
    if (claimed.rows.length === 0) return null;
    const ids = r.lines.map((l) => l.item_id);
    const stock = await sql<{ item_id: string; quantity: number }>`
      select item_id, quantity from inventory.inventory where item_id = any(${ids}::text[]) order by item_id for update`.execute(trx);
    const have = new Map(stock.rows.map((s) => [s.item_id, Number(s.quantity)]));
    const rejected: LineRejection[] = [];
    for (const l of r.lines) {
      const q = have.get(l.item_id);
      if (q === undefined) rejected.push({ item_id: l.item_id, reason: "unknown_item" });
      else if (q < l.quantity) rejected.push({ item_id: l.item_id, reason: "insufficient_stock" });
    }
    if (rejected.length > 0) {
      await sql`update inventory.order_accounts set outcome = 'rejected', rejected_lines = ${JSON.stringify(rejected)}::jsonb, hold_expires_at = null
        where order_id = ${r.orderId}::uuid`.execute(trx);
      return { kind: "refused", rejected };
    }
    const qty = r.lines.map((l) => l.quantity);
    // A hold moves each line from available to reserved; a sale takes it.
    const reserved = hold ? 1 : 0;
    await sql`update inventory.inventory i set quantity = i.quantity - l.quantity, reserved_quantity = i.reserved_quantity + ${reserved}::int * l.quantity, updated_at = now()
      from unnest(${ids}::text[], ${qty}::int[]) as l(item_id, quantity) where i.item_id = l.item_id`.execute(trx);
    await sql`insert into inventory.movements (item_id, type, quantity_change, reserved_change, order_id)
      select item_id, ${hold ? "hold" : "deduct"}, -quantity, ${reserved}::int * quantity, ${r.orderId}::uuid
      from unnest(${ids}::text[], ${qty}::int[]) with ordinality as l(item_id, quantity, n) order by n`.execute(trx);
    return { kind: "applied", remaining: r.lines.map((l) => have.get(l.item_id)! - l.quantity) };
  });
  if (row) return row;
  const account = await findAccount(database, r.orderId);
  if (!account) throw new Error(`account of order ${r.orderId} vanished`);
  return { kind: "first", account };
}

/** Orders holding reserved stock now: neither paid, expired nor cancelled. */
export async function countLiveHolds(database: Database): Promise<number> {
  const r = await typed(database)
    .selectFrom("inventory.order_accounts")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("outcome", "=", "held")
    .where("settled", "is", null)
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}

export async function findAccount(database: Database, orderId: string): Promise<Account | null> {
  const r = await typed(database)
    .selectFrom("inventory.order_accounts")
    .select(["outcome", "lines", "rejected_lines", "released_at", "hold_expires_at", "settled"])
    .where("order_id", "=", orderId)
    .executeTakeFirst();
  if (!r) return null;
  return {
    outcome: r.outcome,
    lines: r.lines,
    rejected_lines: r.rejected_lines ?? [],
    released: r.released_at !== null || r.outcome === "released",
    hold_expires_at: r.hold_expires_at ? new Date(r.hold_expires_at) : null,
    settled: r.settled,
  };
}

/** Per item, what an order's movements leave standing: units sold to it, and units reserved for it. */
async function standing(trx: Kysely<any>, orderId: string): Promise<Array<{ item_id: string; sold: number; held: number }>> {
  const r = await sql<{ item_id: string; sold: number; held: number }>`
    select item_id, (-sum(quantity_change) - sum(reserved_change))::int as sold, sum(reserved_change)::int as held
    from inventory.movements where order_id = ${orderId}::uuid group by item_id order by item_id`.execute(trx);
  return r.rows.map((x) => ({ item_id: x.item_id, sold: Number(x.sold), held: Number(x.held) }));
}

/**
 * Gives back what an order holds, line by line in item order: reserved units leave
 * `reserved_quantity` for `quantity` (`hold_release`), sold units return to `quantity`
 * (`release`). Each kind of movement happens at most once per line (the ledger's unique index).
 */
async function giveBack(trx: Kysely<any>, orderId: string, parts: { sold: boolean; held: boolean }): Promise<OrderLine[]> {
  const rows = (await standing(trx, orderId)).map((x) => ({ ...x, sold: parts.sold ? x.sold : 0, held: parts.held ? x.held : 0 }));
  const moving = rows.filter((x) => x.sold > 0 || x.held > 0);
  if (moving.length === 0) return [];
  const ids = moving.map((x) => x.item_id);
  await sql`select item_id from inventory.inventory where item_id = any(${ids}::text[]) order by item_id for update`.execute(trx);
  await sql`update inventory.inventory i set quantity = i.quantity + l.sold + l.held, reserved_quantity = i.reserved_quantity - l.held, updated_at = now()
    from unnest(${ids}::text[], ${moving.map((x) => x.sold)}::int[], ${moving.map((x) => x.held)}::int[]) as l(item_id, sold, held)
    where i.item_id = l.item_id`.execute(trx);
  await sql`insert into inventory.movements (item_id, type, quantity_change, reserved_change, order_id)
    select item_id, 'release', sold, 0, ${orderId}::uuid from unnest(${ids}::text[], ${moving.map((x) => x.sold)}::int[]) as l(item_id, sold) where sold > 0
    union all
    select item_id, 'hold_release', held, -held, ${orderId}::uuid from unnest(${ids}::text[], ${moving.map((x) => x.held)}::int[]) as l(item_id, held) where held > 0`.execute(trx);
  return moving.map((x) => ({ item_id: x.item_id, quantity: x.sold + x.held }));
}

/**
 * Settles a live hold, under the account's row lock, so a payment and an expiry arriving together
 * are decided one after the other and exactly one wins: `pay` sells the reservation if it was paid
 * before the deadline (otherwise the hold expires now); `expire` gives the stock back once the
 * deadline has passed. A settled hold answers how it was settled.
 */
export async function settleHold(
  database: Database,
  orderId: string,
  how: { kind: "pay"; paidAt: Date; at: Date } | { kind: "expire"; at: Date },
): Promise<{ outcome: HoldOutcome; hold_expires_at: Date | null; moved: OrderLine[] }> {
  return database.db.transaction().execute(async (trx) => {
    const acc = await sql<{ outcome: string; hold_expires_at: Date | null; settled: string | null; released_at: Date | null }>`
      select outcome, hold_expires_at, settled, released_at from inventory.order_accounts where order_id = ${orderId}::uuid for update`.execute(trx);
    const a = acc.rows[0];
    if (!a) return { outcome: "not_held" as const, hold_expires_at: null, moved: [] };
    const expiresAt = a.hold_expires_at ? new Date(a.hold_expires_at) : null;
    const done = (outcome: HoldOutcome, moved: OrderLine[] = []) => ({ outcome, hold_expires_at: expiresAt, moved });
    if (a.outcome === "released") return done("released");
    if (a.outcome !== "held" || !expiresAt) return done("not_held");
    if (a.settled === "sold") return done("paid");
    if (a.settled === "expired") return done("expired");
    if (a.settled === "cancelled" || a.released_at) return done("released");
    const paidInTime = how.kind === "pay" && how.paidAt.getTime() < expiresAt.getTime();
    if (paidInTime) {
      // The reservation becomes a sale: the units leave `reserved_quantity`; available is untouched.
      const held = (await standing(trx, orderId)).filter((x) => x.held > 0);
      const ids = held.map((x) => x.item_id);
      const qty = held.map((x) => x.held);
      await sql`select item_id from inventory.inventory where item_id = any(${ids}::text[]) order by item_id for update`.execute(trx);
      await sql`update inventory.inventory i set reserved_quantity = i.reserved_quantity - l.q, updated_at = now()
        from unnest(${ids}::text[], ${qty}::int[]) as l(item_id, q) where i.item_id = l.item_id`.execute(trx);
      await sql`insert into inventory.movements (item_id, type, quantity_change, reserved_change, order_id)
        select item_id, 'sale', 0, -q, ${orderId}::uuid from unnest(${ids}::text[], ${qty}::int[]) as l(item_id, q)`.execute(trx);
      await sql`update inventory.order_accounts set settled = 'sold', settled_at = ${how.at.toISOString()}::timestamptz where order_id = ${orderId}::uuid`.execute(trx);
      return done("paid", held.map((x) => ({ item_id: x.item_id, quantity: x.held })));
    }
    if (how.at.getTime() < expiresAt.getTime()) return done("held");
    const moved = await giveBack(trx, orderId, { sold: false, held: true });
    await sql`update inventory.order_accounts set settled = 'expired', settled_at = ${how.at.toISOString()}::timestamptz, released_at = ${how.at.toISOString()}::timestamptz
      where order_id = ${orderId}::uuid`.execute(trx);
    return done("expired", moved);
  });
}

/**
 * Closes an order's account for good. No account yet: one is written closed, so no later
 * deduction can apply. An open account: every deducted line is restored, once (the ledger's
 * unique index and the account's `released_at` both say so), in item order.
 */
export async function release(database: Database, orderId: string): Promise<{ restored: boolean; lines: OrderLine[]; restoredNow: boolean }> {
  return database.db.transaction().execute(async (trx) => {
    const blocked = await sql`
      insert into inventory.order_accounts (order_id, outcome, lines, released_at) values (${orderId}::uuid, 'released', '[]'::jsonb, now())
      on conflict (order_id) do nothing returning order_id`.execute(trx);
    if (blocked.rows.length > 0) return { restored: false, lines: [], restoredNow: false };
    const account = await sql<{ released_at: Date | null; outcome: string; settled: string | null }>`
      select released_at, outcome, settled from inventory.order_accounts where order_id = ${orderId}::uuid for update`.execute(trx);
    const a = account.rows[0];
    if (a?.released_at) {
      const before = await givenBack(trx, orderId);
      return { restored: before.length > 0, lines: before, restoredNow: false };
    }
    const live = a?.outcome === "held" && a.settled === null;
    await sql`update inventory.order_accounts set released_at = now(),
      settled = case when ${live} then 'cancelled' else settled end, settled_at = case when ${live} then now() else settled_at end
      where order_id = ${orderId}::uuid`.execute(trx);
    const lines = await giveBack(trx, orderId, { sold: true, held: true });
    return { restored: lines.length > 0, lines, restoredNow: lines.length > 0 };
  });
}

/** What earlier releases (or an expiry) gave back, per item in item order. */
async function givenBack(trx: Kysely<any>, orderId: string): Promise<OrderLine[]> {
  const r = await sql<{ item_id: string; quantity: number }>`
    select item_id, sum(quantity_change)::int as quantity from inventory.movements
    where order_id = ${orderId}::uuid and type in ('release', 'hold_release') group by item_id order by item_id`.execute(trx);
  return r.rows.map((x) => ({ item_id: x.item_id, quantity: Number(x.quantity) }));
}

const typed = (database: Database) => database.db as Kysely<InventoryTables>;

export function toItem(r: { item_id: string; item_name: string; quantity: number; reserved_quantity: number; low_stock_threshold: number; updated_at: Date | string }): InventoryItem {
  return {
    item_id: r.item_id,
    item_name: r.item_name,
    quantity: r.quantity,
    reserved_quantity: r.reserved_quantity,
    low_stock_threshold: r.low_stock_threshold,
    updated_at: new Date(r.updated_at).toISOString(),
  };
}

export const itemColumns = ["item_id", "item_name", "quantity", "reserved_quantity", "low_stock_threshold", "updated_at"] as const;

export async function getItem(database: Database, itemId: string): Promise<InventoryItem | null> {
  const r = await typed(database).selectFrom("inventory.inventory").select(itemColumns).where("item_id", "=", itemId).executeTakeFirst();
  return r ? toItem(r) : null;
}

export async function listItems(database: Database): Promise<InventoryItem[]> {
  const rows = await typed(database).selectFrom("inventory.inventory").select(itemColumns).orderBy("item_id").execute();
  return rows.map(toItem);
}

/** Inserts a new item with its opening stock recorded as its first movement; null when the id is taken. */
export async function createItem(database: Database, itemId: string, itemName: string, quantity: number, lowStockThreshold = 0): Promise<InventoryItem | null> {
  return typed(database)
    .transaction()
    .execute(async (trx) => {
      const r = await trx
        .insertInto("inventory.inventory")
        .values({ item_id: itemId, item_name: itemName, quantity, low_stock_threshold: lowStockThreshold })
        .onConflict((oc) => oc.column("item_id").doNothing())
        .returning(itemColumns)
        .executeTakeFirst();
      if (!r) return null;
      await trx
        .insertInto("inventory.movements")
        .values({ order_id: null, item_id: itemId, type: "create", quantity_change: quantity, reason: null })
        .execute();
      return toItem(r);
    });
}

/**
 * Sets an item's low-stock threshold; null for an unknown item. Setting it at or above the
 * available quantity makes the item low, and the trigger writes its `stock.low` in this
 * statement's transaction, as any other change that makes it low does.
 */
export async function setLowStockThreshold(database: Database, itemId: string, threshold: number): Promise<InventoryItem | null> {
  const r = await typed(database)
    .updateTable("inventory.inventory")
    .set({ low_stock_threshold: threshold, updated_at: new Date() })
    .where("item_id", "=", itemId)
    .returning(itemColumns)
    .executeTakeFirst();
  return r ? toItem(r) : null;
}
