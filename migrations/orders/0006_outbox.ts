import { sql, type Kysely } from "kysely";

/**
 * Order events leave the building: a transactional outbox and webhook subscriptions.
 *
 * - `outbox_events`: one row per order state change, written by a trigger on `order_history`,
 *   so every statement that changes an order (claim, transition, their batch forms, the lease
 *   transitions, cancel) writes its event in the same transaction without knowing about it; a
 *   change that rolls back leaves no event. `seq` counts one order's events from 1 (the order
 *   row's lock serialises its changes). `snapshot` is the order row as it was at the change
 *   (the API view is built from it). `xid` is the writing transaction: readers walk events in
 *   (xid, id) order and only below the oldest running transaction, so a cursor never passes an
 *   event that commits later (see `webhook.repository.ts`).
 *   `cancelling` is a step, not an outcome, and emits nothing; `order.cancelled` follows it.
 * - `webhooks`: subscriptions; `secret` is kept because signing needs it; `previous_secret`
 *   signs too until `previous_expires_at` (a rotation window).
 * - `webhook_deliveries`: one row per (event, subscription) to send; `webhook_attempts` every try.
 * - `webhook_relay_state`: how far, in (xid, id) order, the relay has fanned events out to deliveries.
 * - `webhook_request_keys`: `Idempotency-Key`s of the webhook admin writes.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table orders.outbox_events (
      id bigint generated always as identity primary key,
      -- The order and its seq name the event: no random id to draw, no extra unique index to keep.
      -- A change that rolled back left nothing, so the next committed change reusing its seq is
      -- still the only event ever sent under that id.
      event_id text generated always as ('evt_' || replace(order_id::text, '-', '') || lpad(to_hex(seq), 8, '0')) stored,
      type text not null,
      order_id uuid not null,
      seq integer not null,
      snapshot jsonb not null,
      xid xid8 not null default pg_current_xact_id(),
      created_at timestamptz not null default now(),
      unique (order_id, seq)
    )`.execute(db);
  await sql`create index outbox_events_xid_idx on orders.outbox_events (xid, id)`.execute(db);
  await sql`
    create function orders.outbox_on_history() returns trigger language plpgsql as $fn$
    declare
      event_type text;
      next_seq integer;
      snap jsonb;
    begin
      event_type := case new.status
        when 'pending' then 'order.created'
        when 'queued' then 'order.queued'
        when 'confirmed' then 'order.confirmed'
        when 'rejected' then 'order.rejected'
        when 'failed' then 'order.failed'
        when 'cancelled' then 'order.cancelled'
        when 'reserved' then 'order.reserved'
        when 'expired' then 'order.expired'
        else null end;
      if event_type is null then
        return null;
      end if;
      select to_jsonb(o) - 'lease_id' - 'leased_until' - 'request_id' into snap from orders.orders o where o.order_id = new.order_id;
      select coalesce(max(e.seq), 0) + 1 into next_seq from orders.outbox_events e where e.order_id = new.order_id;
      insert into orders.outbox_events (type, order_id, seq, snapshot, created_at)
      values (event_type, new.order_id, next_seq,
              coalesce(snap, '{}'::jsonb) || jsonb_build_object('status', new.status, 'reason', new.reason), new.at);
      return null;
    end
    $fn$`.execute(db);
  await sql`
    create trigger order_history_outbox after insert on orders.order_history
    for each row execute function orders.outbox_on_history()`.execute(db);

  await sql`
    create table orders.webhooks (
      id text primary key,
      url text not null,
      events text[] not null,
      description text,
      secret text not null,
      previous_secret text,
      previous_expires_at timestamptz,
      after_event bigint not null,
      failing_since timestamptz,
      disabled_at timestamptz,
      disabled_reason text,
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`
    create table orders.webhook_deliveries (
      id bigint generated always as identity primary key,
      webhook_id text not null references orders.webhooks (id) on delete cascade,
      event bigint not null references orders.outbox_events (id),
      order_id uuid not null,
      seq integer not null,
      state text not null default 'pending' check (state in ('pending', 'delivered', 'failed')),
      attempts integer not null default 0,
      next_attempt_at timestamptz not null,
      lease_id text,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index webhook_deliveries_due_idx on orders.webhook_deliveries (next_attempt_at) where state = 'pending'`.execute(db);
  await sql`create index webhook_deliveries_order_idx on orders.webhook_deliveries (webhook_id, order_id, seq) where state = 'pending'`.execute(db);
  await sql`
    create table orders.webhook_attempts (
      id bigint generated always as identity primary key,
      webhook_id text not null references orders.webhooks (id) on delete cascade,
      delivery_id bigint not null,
      event_id text not null,
      attempt integer not null,
      at timestamptz not null,
      status_code integer,
      duration_ms integer not null,
      error text
    )`.execute(db);
  await sql`create index webhook_attempts_webhook_idx on orders.webhook_attempts (webhook_id, id desc)`.execute(db);
  await sql`
    create table orders.webhook_relay_state (
      id integer primary key check (id = 1),
      fanned_xid xid8 not null,
      fanned_id bigint not null
    )`.execute(db);
  await sql`insert into orders.webhook_relay_state (id, fanned_xid, fanned_id) values (1, '0', 0)`.execute(db);
  await sql`
    create table orders.webhook_request_keys (
      key text primary key,
      fingerprint text not null,
      response_status integer not null,
      response_body text not null,
      expires_at timestamptz not null
    )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table orders.webhook_request_keys, orders.webhook_relay_state, orders.webhook_attempts, orders.webhook_deliveries, orders.webhooks`.execute(db);
  await sql`drop trigger order_history_outbox on orders.order_history`.execute(db);
  await sql`drop function orders.outbox_on_history()`.execute(db);
  await sql`drop table orders.outbox_events`.execute(db);
}
