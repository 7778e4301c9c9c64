import { sql, type Kysely } from "kysely";

/**
 * Orders of several lines and a stock ledger.
 *
 * - `order_accounts`: one row per order id, the claim that makes a deduction happen at most once:
 *   its first outcome (`applied`, `rejected` with the failing lines, or `released`: closed before
 *   any deduction), the lines asked for, and `released_at` once a release closed the account.
 * - `movements`: the ledger. Every change of an item's quantity is one row (`create`, `deduct`,
 *   `release`, `restock`, `adjust`), so for every item `quantity = Σ quantity_change`. The
 *   unique index makes a line's deduction, and its release, happen at most once per order.
 * - `request_keys`: the `Idempotency-Key`s of inventory's own writes (adjust, restock).
 *
 * The old `inventory_transactions` rows carry over: applied movements into the ledger, each
 * order's deduct row into its account (a refused one-line order keeps its failing line).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table inventory.order_accounts (
      order_id uuid primary key,
      outcome text not null check (outcome in ('applied', 'rejected', 'released')),
      lines jsonb not null,
      rejected_lines jsonb,
      released_at timestamptz,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`
    create table inventory.movements (
      id bigint generated always as identity primary key,
      item_id text not null references inventory.inventory (item_id),
      type text not null check (type in ('create', 'deduct', 'release', 'restock', 'adjust')),
      quantity_change integer not null check (quantity_change <> 0 or type = 'create'),
      order_id uuid,
      reason text check (length(reason) between 1 and 200),
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`create unique index movements_order_line_idx on inventory.movements (order_id, item_id, type) where order_id is not null`.execute(db);
  await sql`create index movements_item_idx on inventory.movements (item_id, id)`.execute(db);
  await sql`
    create table inventory.request_keys (
      scope text not null,
      key text not null,
      fingerprint text not null,
      response_status integer not null,
      response_body text not null,
      created_at timestamptz not null default now(),
      expires_at timestamptz not null,
      primary key (scope, key)
    )`.execute(db);
  await sql`create index request_keys_expires_idx on inventory.request_keys (expires_at)`.execute(db);

  await sql`
    insert into inventory.movements (item_id, type, quantity_change, order_id, created_at)
    select item_id, type, quantity_change, order_id, created_at from inventory.inventory_transactions
    where item_id <> '' and (type in ('create', 'restock') or (type in ('deduct', 'release') and quantity_change <> 0 and outcome = 'applied'))
    order by id`.execute(db);
  await sql`
    insert into inventory.order_accounts (order_id, outcome, lines, rejected_lines, released_at, created_at)
    select d.order_id,
      case when d.outcome = 'applied' then 'applied' when d.outcome = 'released' then 'released' else 'rejected' end,
      case when d.item_id = '' or d.quantity_change = 0 then '[]'::jsonb
        else jsonb_build_array(jsonb_build_object('item_id', d.item_id, 'quantity', -d.quantity_change)) end,
      case when d.outcome in ('unknown_item', 'insufficient_stock')
        then jsonb_build_array(jsonb_build_object('item_id', d.item_id, 'reason', d.outcome)) end,
      coalesce(r.created_at, case when d.outcome = 'released' then d.created_at end),
      d.created_at
    from inventory.inventory_transactions d
    left join inventory.inventory_transactions r on r.order_id = d.order_id and r.type = 'release'
    where d.type = 'deduct' and d.order_id is not null`.execute(db);
  await sql`drop table inventory.inventory_transactions`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table inventory.request_keys`.execute(db);
  await sql`drop table inventory.movements`.execute(db);
  await sql`drop table inventory.order_accounts`.execute(db);
  await sql`
    create table inventory.inventory_transactions (
      id bigint generated always as identity primary key,
      order_id uuid,
      item_id text not null,
      type text not null check (type in ('deduct', 'release', 'restock', 'create')),
      quantity_change integer not null,
      outcome text not null default 'applied'
        check (outcome in ('applied', 'unknown_item', 'insufficient_stock', 'released')),
      created_at timestamptz not null default now(),
      unique (order_id, type)
    )`.execute(db);
}
