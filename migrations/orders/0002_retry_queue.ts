import { sql, type Kysely } from "kysely";

/**
 * The retry queue of the PostgreSQL adapter (used when no Redis is configured).
 * One row per order: the primary key is what makes a second enqueue of the same order a no-op.
 */
export async function up(db: Kysely<any>): Promise<void> {
  // available_at: when the row may next be handed out. A receive pushes it to the end of the
  // lease, so a consumer that dies simply lets it come due again; no reaper is needed.
  // leased_until: set while a consumer holds the row (null = waiting), for depth and for
  // enqueue, which must not pull an in-flight row forward.
  // deliveries: bumped on every receive; a settle carries the value it saw, so a consumer whose
  // lease ran out cannot settle a row that has since been handed to another.
  await sql`
    create table orders.retry_queue (
      order_id uuid primary key,
      attempt integer not null default 0 check (attempt >= 0),
      request_id text,
      available_at timestamptz not null,
      leased_until timestamptz,
      deliveries integer not null default 0,
      enqueued_at timestamptz not null
    )`.execute(db);
  await sql`create index retry_queue_available_idx on orders.retry_queue (available_at)`.execute(db);
  // A separate table rather than a flag: the order can be enqueued again later without
  // touching its dead-letter history, and the hot table stays small.
  await sql`
    create table orders.retry_dead_letters (
      id bigint generated always as identity primary key,
      order_id uuid not null,
      attempt integer not null,
      request_id text,
      reason text not null,
      at timestamptz not null
    )`.execute(db);
  await sql`create index retry_dead_letters_order_idx on orders.retry_dead_letters (order_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists orders.retry_dead_letters`.execute(db);
  await sql`drop table if exists orders.retry_queue`.execute(db);
}
