import { sql, type Kysely } from "kysely";

/**
 * Holds: stock reserved for an order while its customer pays, until a deadline.
 *
 * - An account may be `held`: its lines moved from `quantity` (available) to
 *   `reserved_quantity`, until `hold_expires_at`. It settles once: `sold` (paid in time: the
 *   reservation becomes a sale), `expired` (the deadline passed: the stock is back) or
 *   `cancelled` (the order was cancelled: the stock is back).
 * - Movements gain `reserved_change`, so the ledger accounts for both numbers: for every item
 *   `quantity = Σ quantity_change` and `reserved_quantity = Σ reserved_change`. New types:
 *   `hold` (−q available, +q reserved), `hold_release` (+q, −q: expiry or cancel), `sale` (0, −q).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    alter table inventory.order_accounts
      drop constraint order_accounts_outcome_check,
      add constraint order_accounts_outcome_check check (outcome in ('applied', 'rejected', 'released', 'held')),
      add column hold_expires_at timestamptz,
      add column settled text check (settled in ('sold', 'expired', 'cancelled')),
      add column settled_at timestamptz,
      add constraint order_accounts_hold_check check ((outcome = 'held') = (hold_expires_at is not null))`.execute(db);
  await sql`
    alter table inventory.movements
      add column reserved_change integer not null default 0,
      drop constraint movements_type_check,
      add constraint movements_type_check check (type in ('create', 'deduct', 'release', 'restock', 'adjust', 'hold', 'hold_release', 'sale')),
      -- 0002 wrote this check inline; PostgreSQL named it after the table, as it spans two columns.
      drop constraint movements_check,
      add constraint movements_quantity_change_check check (quantity_change <> 0 or type in ('create', 'sale'))`.execute(db);
  // Live holds are few and the expiry path looks only at them.
  await sql`create index order_accounts_live_holds_idx on inventory.order_accounts (hold_expires_at) where outcome = 'held' and settled is null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from inventory.order_accounts where outcome = 'held'`.execute(db);
  if (Number(rows[0]?.n ?? 0) > 0) throw new Error("holds exist; 0003_holds cannot be undone");
  await sql`drop index inventory.order_accounts_live_holds_idx`.execute(db);
  await sql`
    alter table inventory.movements
      drop column reserved_change,
      drop constraint movements_type_check,
      add constraint movements_type_check check (type in ('create', 'deduct', 'release', 'restock', 'adjust')),
      drop constraint movements_quantity_change_check,
      add constraint movements_check check (quantity_change <> 0 or type = 'create')`.execute(db);
  await sql`
    alter table inventory.order_accounts
      drop constraint order_accounts_hold_check,
      drop column hold_expires_at,
      drop column settled,
      drop column settled_at,
      drop constraint order_accounts_outcome_check,
      add constraint order_accounts_outcome_check check (outcome in ('applied', 'rejected', 'released'))`.execute(db);
}
