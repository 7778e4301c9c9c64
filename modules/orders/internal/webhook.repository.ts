import { sql, type Kysely, type Transaction } from "kysely";
import type { Database } from "../../../platform/db.ts";
import { IdempotencyKeyReusedError } from "../../../platform/idempotency-key.ts";

/**
 * Webhook SQL: subscriptions, their admin keys, and the relay's deliveries and attempts. Events
 * and how they are read are in `outbox.repository.ts`.
 */

import { byEventId, VISIBLE, type EventRow, type EventType } from "./outbox.repository.ts";

/**
 * Age in seconds of the oldest event still on its way: waiting for delivery to an enabled
 * endpoint, or not yet fanned out at all (held back by an old transaction, or a relay behind).
 * 0 when nothing waits.
 */
export async function oldestUndeliveredAgeS(database: Database, now: Date): Promise<number> {
  const { rows } = await sql<{ pending: Date | null; unfanned: Date | null }>`
    select
      (select min(e.created_at) from orders.webhook_deliveries d join orders.outbox_events e on e.id = d.event
        join orders.webhooks w on w.id = d.webhook_id
        where d.state = 'pending' and w.disabled_at is null) as pending,
      (select e.created_at from orders.outbox_events e, orders.webhook_relay_state s
        where (e.xid, e.id) > (s.fanned_xid, s.fanned_id) and exists (select 1 from orders.webhooks where disabled_at is null)
        order by e.xid, e.id limit 1) as unfanned`.execute(database.db);
  const times = [rows[0]?.pending, rows[0]?.unfanned].filter((t): t is Date => t != null).map((t) => new Date(t).getTime());
  return times.length ? Math.max(0, (now.getTime() - Math.min(...times)) / 1000) : 0;
}

// ---- subscriptions ----

export interface WebhookRow {
  id: string;
  url: string;
  events: string[];
  description: string | null;
  secret: string;
  previous_secret: string | null;
  previous_expires_at: Date | null;
  failing_since: Date | null;
  disabled_at: Date | null;
  disabled_reason: string | null;
  created_at: Date;
}

export async function insertWebhook(trx: Kysely<any>, w: { id: string; url: string; events: string[]; description: string | null; secret: string; at: Date }): Promise<WebhookRow> {
  const { rows } = await sql<WebhookRow>`
    insert into orders.webhooks (id, url, events, description, secret, after_event, created_at)
    values (${w.id}, ${w.url}, ${w.events}::text[], ${w.description}, ${w.secret},
            coalesce((select max(id) from orders.outbox_events), 0), ${w.at})
    returning *`.execute(trx);
  return rows[0]!;
}

export async function listWebhooks(database: Database): Promise<WebhookRow[]> {
  return (await sql<WebhookRow>`select * from orders.webhooks order by created_at, id`.execute(database.db)).rows;
}

export async function findWebhook(db: Kysely<any>, id: string): Promise<WebhookRow | null> {
  return (await sql<WebhookRow>`select * from orders.webhooks where id = ${id}`.execute(db)).rows[0] ?? null;
}

/** Clears a disabled or failing endpoint's state: it is sent events again (from its pending deliveries). */
export async function enableWebhook(trx: Kysely<any>, id: string): Promise<WebhookRow | null> {
  const { rows } = await sql<WebhookRow>`
    update orders.webhooks set disabled_at = null, disabled_reason = null, failing_since = null
    where id = ${id} returning *`.execute(trx);
  return rows[0] ?? null;
}

export interface PendingDeliveries {
  count: number;
  /** When the oldest of them was created (fanned out or redelivered). */
  oldest: Date | null;
}

/** Deliveries still to be sent, per endpoint (`id`: that one only); endpoints with none are absent. */
export async function pendingDeliveries(db: Kysely<any>, id?: string): Promise<Map<string, PendingDeliveries>> {
  const { rows } = await sql<{ webhook_id: string; count: number; oldest: Date }>`
    select webhook_id, count(*)::int as count, min(created_at) as oldest from orders.webhook_deliveries
    where state = 'pending' ${id === undefined ? sql`` : sql`and webhook_id = ${id}`}
    group by webhook_id`.execute(db);
  return new Map(rows.map((r) => [r.webhook_id, { count: r.count, oldest: r.oldest }]));
}

export async function deleteWebhook(trx: Kysely<any>, id: string): Promise<boolean> {
  const r = await sql`delete from orders.webhooks where id = ${id} returning id`.execute(trx);
  return r.rows.length > 0;
}

export async function rotateSecret(trx: Kysely<any>, id: string, secret: string, previousUntil: Date): Promise<WebhookRow | null> {
  const { rows } = await sql<WebhookRow>`
    update orders.webhooks set previous_secret = secret, previous_expires_at = ${previousUntil}, secret = ${secret}
    where id = ${id} returning *`.execute(trx);
  return rows[0] ?? null;
}

export interface AttemptRow {
  at: Date;
  event_id: string;
  attempt: number;
  status_code: number | null;
  duration_ms: number;
  error: string | null;
}

export async function listAttempts(database: Database, webhookId: string, limit: number): Promise<AttemptRow[]> {
  return (
    await sql<AttemptRow>`
      select at, event_id, attempt, status_code, duration_ms, error from orders.webhook_attempts
      where webhook_id = ${webhookId} order by id desc limit ${limit}`.execute(database.db)
  ).rows;
}

/** New deliveries of one event to every enabled subscription it matches (a redelivery). */
export async function redeliver(trx: Kysely<any>, eventId: string, at: Date): Promise<number | null> {
  const ev = await sql<{ id: string }>`select id::text as id from orders.outbox_events where ${byEventId(eventId)}`.execute(trx);
  if (!ev.rows[0]) return null;
  const r = await sql`
    insert into orders.webhook_deliveries (webhook_id, event, order_id, seq, next_attempt_at, created_at, updated_at)
    select w.id, e.id, e.order_id, e.seq, ${at}, ${at}, ${at} from orders.outbox_events e
    join orders.webhooks w on (e.type = any(w.events) or '*' = any(w.events)) and w.disabled_at is null
    where e.id = ${ev.rows[0].id}::bigint returning id`.execute(trx);
  return r.rows.length;
}

// ---- admin keys ----

export interface StoredAnswer {
  status: number;
  body: string;
  replayed: boolean;
}

/**
 * Runs `work` in a transaction under an `Idempotency-Key`, as inventory's admin writes do: the
 * key, the change and the answer commit together; a refusal (a thrown error) stores nothing.
 * The stored answer of a registration or rotation carries the secret, which the same database
 * holds anyway (signing needs it); keys expire after `ttlMs`.
 */
export async function keyedWrite(
  database: Database,
  claim: { key: string; fingerprint: string; ttlMs: number },
  work: (trx: Transaction<any>) => Promise<{ status: number; body: string }>,
): Promise<StoredAnswer> {
  return database.db.transaction().execute(async (trx): Promise<StoredAnswer> => {
    await sql`delete from orders.webhook_request_keys where key = ${claim.key} and expires_at <= now()`.execute(trx);
    const claimed = await sql`
      insert into orders.webhook_request_keys (key, fingerprint, response_status, response_body, expires_at)
      values (${claim.key}, ${claim.fingerprint}, 0, '', now() + ${claim.ttlMs} * interval '1 millisecond')
      on conflict (key) do nothing returning key`.execute(trx);
    if (claimed.rows.length === 0) {
      const stored = (await sql<{ fingerprint: string; response_status: number; response_body: string }>`
        select fingerprint, response_status, response_body from orders.webhook_request_keys where key = ${claim.key}`.execute(trx)).rows[0]!;
      if (stored.fingerprint !== claim.fingerprint) throw new IdempotencyKeyReusedError(`Idempotency-Key "${claim.key}" was already used with a different request.`);
      return { status: stored.response_status, body: stored.response_body, replayed: true };
    }
    const done = await work(trx);
    await sql`update orders.webhook_request_keys set response_status = ${done.status}, response_body = ${done.body} where key = ${claim.key}`.execute(trx);
    return { ...done, replayed: false };
  });
}

// ---- the relay ----

/** Turns visible events past the relay's mark into deliveries; one relay at a time does it. Returns events handled. */
export async function fanOut(database: Database, now: Date, limit: number): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    with st as (select fanned_xid, fanned_id from orders.webhook_relay_state where id = 1 for update skip locked),
    ev as (
      select e.id, e.xid, e.type, e.order_id, e.seq from orders.outbox_events e, st
      where (e.xid, e.id) > (st.fanned_xid, st.fanned_id) and ${VISIBLE} order by e.xid, e.id limit ${limit}
    ),
    ins as (
      insert into orders.webhook_deliveries (webhook_id, event, order_id, seq, next_attempt_at, created_at, updated_at)
      select w.id, ev.id, ev.order_id, ev.seq, ${now}, ${now}, ${now} from ev
      join orders.webhooks w on (ev.type = any(w.events) or '*' = any(w.events)) and ev.id > w.after_event and w.disabled_at is null
      returning 1
    ),
    last as (select xid, id from ev order by xid desc, id desc limit 1),
    mark as (update orders.webhook_relay_state s set fanned_xid = last.xid, fanned_id = last.id from last where s.id = 1 returning 1)
    select (select count(*) from ev)::int as n, (select count(*) from ins)::int as d, (select count(*) from mark)::int as m`.execute(database.db);
  return rows[0]?.n ?? 0;
}

export interface ClaimedDelivery {
  id: string;
  webhook_id: string;
  attempts: number;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_expires_at: Date | null;
  event: EventRow;
}

/**
 * Claims due deliveries for `leaseMs`: the lease is the next attempt time pushed ahead, so a relay
 * that dies mid-attempt leaves its deliveries to be taken again when the lease runs out (at least
 * once, the same event id). SKIP LOCKED lets replicas share the work; a delivery waits while an
 * earlier event of the same order for the same endpoint is still pending.
 */
export async function claimDue(
  database: Database,
  c: { now: Date; limit: number; leaseMs: number; leaseId: string; skipWebhooks: readonly string[] },
): Promise<ClaimedDelivery[]> {
  const until = new Date(c.now.getTime() + c.leaseMs);
  const { rows } = await sql<{ id: string }>`
    with due as (
      select d.id from orders.webhook_deliveries d join orders.webhooks w on w.id = d.webhook_id
      where d.state = 'pending' and d.next_attempt_at <= ${c.now} and w.disabled_at is null
        and not (w.id = any(${[...c.skipWebhooks]}::text[]))
        and not exists (
          select 1 from orders.webhook_deliveries p
          where p.webhook_id = d.webhook_id and p.order_id = d.order_id and p.state = 'pending'
            and (p.seq < d.seq or (p.seq = d.seq and p.id < d.id)))
      order by d.next_attempt_at, d.id limit ${c.limit}
      for update of d skip locked
    )
    update orders.webhook_deliveries d set next_attempt_at = ${until}, lease_id = ${c.leaseId}, attempts = d.attempts + 1, updated_at = ${c.now}
    from due where d.id = due.id returning d.id::text as id`.execute(database.db);
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const full = await sql<Omit<ClaimedDelivery, "event"> & { ev_id: string; event_id: string; type: EventType; order_id: string; seq: number; snapshot: Record<string, unknown>; created_at: Date }>`
    select d.id::text as id, d.webhook_id, d.attempts, w.url, w.secret, w.previous_secret, w.previous_expires_at,
      e.id::text as ev_id, e.event_id, e.type, e.order_id::text as order_id, e.seq, e.snapshot, e.created_at
    from orders.webhook_deliveries d join orders.webhooks w on w.id = d.webhook_id join orders.outbox_events e on e.id = d.event
    where d.id = any(${ids}::bigint[]) order by d.id`.execute(database.db);
  return full.rows.map((r) => ({
    id: r.id,
    webhook_id: r.webhook_id,
    attempts: r.attempts,
    url: r.url,
    secret: r.secret,
    previous_secret: r.previous_secret,
    previous_expires_at: r.previous_expires_at,
    event: { id: r.ev_id, event_id: r.event_id, type: r.type, order_id: r.order_id, seq: r.seq, snapshot: r.snapshot, created_at: r.created_at },
  }));
}

export interface AttemptRecord {
  deliveryId: string;
  webhookId: string;
  eventId: string;
  leaseId: string;
  attempt: number;
  at: Date;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
}

/**
 * Records an attempt and its consequence in one transaction. `next`: delivered, a retry at a
 * time, or given up. `disableBefore`: an endpoint failing since before this is disabled.
 * Returns whether the endpoint was disabled by this attempt; nothing changes when the lease was lost.
 */
export async function finishAttempt(
  database: Database,
  a: AttemptRecord,
  next: { kind: "delivered" } | { kind: "retry"; at: Date } | { kind: "failed" },
  disableBefore: Date,
): Promise<{ recorded: boolean; disabled: boolean }> {
  return database.db.transaction().execute(async (trx) => {
    const set =
      next.kind === "delivered"
        ? sql`state = 'delivered', lease_id = null`
        : next.kind === "failed"
          ? sql`state = 'failed', lease_id = null`
          : sql`next_attempt_at = ${next.at}, lease_id = null`;
    const moved = await sql`update orders.webhook_deliveries set ${set}, updated_at = ${a.at} where id = ${a.deliveryId}::bigint and lease_id = ${a.leaseId} returning id`.execute(trx);
    if (moved.rows.length === 0) return { recorded: false, disabled: false };
    await sql`
      insert into orders.webhook_attempts (webhook_id, delivery_id, event_id, attempt, at, status_code, duration_ms, error)
      values (${a.webhookId}, ${a.deliveryId}::bigint, ${a.eventId}, ${a.attempt}, ${a.at}, ${a.statusCode}, ${a.durationMs}, ${a.error})`.execute(trx);
    if (next.kind === "delivered") {
      await sql`update orders.webhooks set failing_since = null where id = ${a.webhookId} and failing_since is not null`.execute(trx);
      return { recorded: true, disabled: false };
    }
    const r = await sql<{ disabled: boolean }>`
      update orders.webhooks set failing_since = coalesce(failing_since, ${a.at}),
        disabled_at = case when failing_since is not null and failing_since <= ${disableBefore} then ${a.at} else disabled_at end,
        disabled_reason = case when failing_since is not null and failing_since <= ${disableBefore}
          then 'Failing since ' || to_char(failing_since at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '; last error: ' || ${a.error ?? "unknown"}
          else disabled_reason end
      where id = ${a.webhookId} and disabled_at is null returning disabled_at is not null as disabled`.execute(trx);
    return { recorded: true, disabled: r.rows[0]?.disabled ?? false };
  });
}

/**
 * Forgets what is older than `before`, a batch at a time, oldest first by primary key: ids grow
 * with time, so each table is read from its start only up to its first row that is young enough
 * (no extra index, and nothing read past the cut once the old rows are gone). Attempts, finished
 * deliveries, and events no pending delivery needs and the fan-out has passed. Returns rows removed.
 */
export async function purgeBefore(database: Database, before: Date, batch = 5_000): Promise<number> {
  const cut = (table: string, column: string) =>
    sql`coalesce((select id from ${sql.table(table)} where ${sql.ref(column)} >= ${before} order by id limit 1), 9223372036854775807)`;
  const { rows } = await sql<{ a: number; d: number }>`
    with a as (
      delete from orders.webhook_attempts where id in (
        select id from orders.webhook_attempts where id < ${cut("orders.webhook_attempts", "at")} order by id limit ${batch}) returning 1
    ), d as (
      delete from orders.webhook_deliveries where id in (
        select id from orders.webhook_deliveries
        where id < ${cut("orders.webhook_deliveries", "created_at")} and state <> 'pending' and updated_at < ${before}
        order by id limit ${batch}) returning 1
    )
    select (select count(*) from a)::int as a, (select count(*) from d)::int as d`.execute(database.db);
  const e = await sql`
    delete from orders.outbox_events where id in (
      select e.id from orders.outbox_events e, orders.webhook_relay_state s
      where e.id < ${cut("orders.outbox_events", "created_at")} and (e.xid, e.id) <= (s.fanned_xid, s.fanned_id)
        and not exists (select 1 from orders.webhook_deliveries d where d.event = e.id)
      order by e.id limit ${batch})
    returning 1`.execute(database.db);
  return (rows[0]?.a ?? 0) + (rows[0]?.d ?? 0) + e.rows.length;
}
