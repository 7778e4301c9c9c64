import { sql, type Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  await sql`create schema if not exists inventory`.execute(db);
  await sql`
    create table inventory.inventory (
      item_id text primary key check (length(item_id) between 1 and 64),
      item_name text not null check (length(item_name) between 1 and 200),
      quantity integer not null check (quantity >= 0),
      reserved_quantity integer not null default 0 check (reserved_quantity >= 0),
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);
  // One row per (order, kind of movement): the unique key is what makes a repeated deduct or
  // release a no-op. A deduct row is written for refusals too (quantity_change 0), so a repeat
  // returns the first outcome; a release writes a blocking deduct row first (outcome 'released').
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
  await sql`create index inventory_transactions_item_idx on inventory.inventory_transactions (item_id, created_at)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop schema inventory cascade`.execute(db);
}
