import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`create schema if not exists orders`.execute(db);
  await sql`
    create table orders.orders (
      order_id uuid primary key,
      item_id text not null,
      quantity integer not null check (quantity > 0),
      status text not null check (status in ('pending', 'confirmed', 'rejected', 'queued', 'failed')),
      reason text,
      attempts integer not null default 0,
      request_id text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index orders_created_idx on orders.orders (created_at desc)`.execute(db);
  // Partial index: the sweeper looks only at unfinished orders, which stay few.
  await sql`create index orders_unfinished_idx on orders.orders (updated_at) where status in ('pending', 'queued')`.execute(db);
  await sql`
    create table orders.order_history (
      id bigint generated always as identity primary key,
      order_id uuid not null references orders.orders (order_id) on delete cascade,
      status text not null,
      reason text,
      at timestamptz not null default now()
    )`.execute(db);
  await sql`create index order_history_order_idx on orders.order_history (order_id, id)`.execute(db);
  // The key is claimed in the same statement that inserts the order, so concurrent duplicates
  // make exactly one order. state: in_flight until the first response is stored, then done.
  await sql`
    create table orders.idempotency_keys (
      key text primary key,
      fingerprint text not null,
      state text not null check (state in ('in_flight', 'done')),
      order_id uuid not null,
      response_status integer,
      response_body text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      expires_at timestamptz not null
    )`.execute(db);
  await sql`create index idempotency_keys_expires_idx on orders.idempotency_keys (expires_at)`.execute(db);
  await sql`create index idempotency_keys_order_idx on orders.idempotency_keys (order_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop schema orders cascade`.execute(db);
}
