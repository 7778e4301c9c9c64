import { sql, type Kysely } from "kysely";

/**
 * The orders outbox also carries events other modules write: `stock.low` from inventory's own
 * outbox, imported by the relay (at least once, each event once by its id) so one relay, one
 * catch-up list and one redelivery serve every event.
 *
 * - An imported row has no order: `order_id` and `seq` are null, `source_event_id` is the id its
 *   module gave it (unique: the import's `on conflict do nothing`), and `snapshot` holds the
 *   event's `data` as that module wrote it. A check keeps the two kinds apart.
 * - `event_id` stays generated, now from `source_event_id` when there is one: order events keep
 *   their ids (recomputed from the same columns), and the trigger that writes them is untouched.
 *   A column's expression cannot be changed in place before PostgreSQL 17, so it is dropped and
 *   added again, which rewrites the table once.
 * - Deliveries of imported events have no order either: they are not held back behind an
 *   order's earlier events.
 * - `webhook_relay_state.stock_cursor`: how far the import has read inventory's events (its
 *   opaque cursor; null before the first event).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    alter table orders.outbox_events
      alter column order_id drop not null,
      alter column seq drop not null,
      add column source_event_id text unique,
      drop column event_id`.execute(db);
  await sql`
    alter table orders.outbox_events
      add column event_id text generated always as
        (coalesce(source_event_id, 'evt_' || replace(order_id::text, '-', '') || lpad(to_hex(seq), 8, '0'))) stored,
      add constraint outbox_events_source_check check (
        case when source_event_id is null then order_id is not null and seq is not null
             else order_id is null and seq is null end)`.execute(db);
  await sql`
    alter table orders.webhook_deliveries
      alter column order_id drop not null,
      alter column seq drop not null`.execute(db);
  await sql`alter table orders.webhook_relay_state add column stock_cursor text`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`delete from orders.webhook_deliveries where order_id is null`.execute(db);
  await sql`delete from orders.outbox_events where order_id is null`.execute(db);
  await sql`alter table orders.webhook_relay_state drop column stock_cursor`.execute(db);
  await sql`
    alter table orders.webhook_deliveries
      alter column order_id set not null,
      alter column seq set not null`.execute(db);
  await sql`
    alter table orders.outbox_events
      drop constraint outbox_events_source_check,
      drop column event_id`.execute(db);
  await sql`
    alter table orders.outbox_events
      drop column source_event_id,
      alter column order_id set not null,
      alter column seq set not null,
      add column event_id text generated always as ('evt_' || replace(order_id::text, '-', '') || lpad(to_hex(seq), 8, '0')) stored`.execute(db);
}
