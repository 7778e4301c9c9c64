import type { Kysely, Selectable } from "kysely";
import type { Database } from "../../../platform/db.ts";
import { GroupCommit, statementLimits, type GroupCommitSettings } from "../../../platform/group-commit.ts";
import { ORDER_STATUSES, type IdempotencyKeyTable, type OrderStatus, type OrderTable, type OrdersTables } from "./order.tables.ts";
import type { LineRejection, OrderLine } from "../../inventory/index.ts";

/**
 * Orders' SQL. Each step of an order is one statement that commits on its own: claiming the
 * idempotency key together with the order, and finishing the order together with its history
 * row and the stored response. Round trips, not fsync or JavaScript, decide this flow's speed.
 */

// The key is claimed by the insert; an expired key is taken over in the same statement.
const CLAIM_SQL = `
with claim as (
  insert into orders.idempotency_keys (key, fingerprint, state, order_id, expires_at, created_at, updated_at)
  values ($1, $2, 'in_flight', $3::uuid, $6::timestamptz + make_interval(secs => $7::int), $6::timestamptz, $6::timestamptz)
  on conflict (key) do update set
    fingerprint = excluded.fingerprint, state = 'in_flight', order_id = excluded.order_id,
    response_status = null, response_body = null, for_create = true,
    created_at = excluded.created_at, updated_at = excluded.updated_at, expires_at = excluded.expires_at
  where orders.idempotency_keys.expires_at < excluded.created_at
  returning order_id
), ord as (
  insert into orders.orders (order_id, item_id, quantity, lines, hold_s, status, request_id, created_at, updated_at)
  select order_id, $4, $5::int, $9::text::jsonb, $10::int, 'pending', $8, $6::timestamptz, $6::timestamptz from claim
  returning order_id
), hist as (
  insert into orders.order_history (order_id, status, at) select order_id, 'pending', $6::timestamptz from ord
)
select order_id from ord`;

// With the breaker open the order is recorded as queued, its 202 stored, in one statement.
const CLAIM_QUEUED_SQL = `
with claim as (
  insert into orders.idempotency_keys (key, fingerprint, state, order_id, response_status, response_body, expires_at, created_at, updated_at)
  values ($1, $2, 'done', $3::uuid, 202, $9, $6::timestamptz + make_interval(secs => $7::int), $6::timestamptz, $6::timestamptz)
  on conflict (key) do update set
    fingerprint = excluded.fingerprint, state = 'done', order_id = excluded.order_id,
    response_status = excluded.response_status, response_body = excluded.response_body, for_create = true,
    created_at = excluded.created_at, updated_at = excluded.updated_at, expires_at = excluded.expires_at
  where orders.idempotency_keys.expires_at < excluded.created_at
  returning order_id
), ord as (
  insert into orders.orders (order_id, item_id, quantity, lines, hold_s, status, reason, request_id, created_at, updated_at)
  select order_id, $4, $5::int, $11::text::jsonb, $12::int, 'queued', $10, $8, $6::timestamptz, $6::timestamptz from claim
  returning order_id
), hist as (
  insert into orders.order_history (order_id, status, reason, at)
  select order_id, s.status, s.reason, $6::timestamptz from ord,
    (values (1, 'pending', null::text), (2, 'queued', $10)) as s(n, status, reason)
  order by s.n
)
select order_id from ord`;

// A transition from one of the allowed states, its history row, and, while the key is still in
// flight, the response a retrying client will be given. Only the order's own key (`for_create`):
// a cancel's or a payment's key for the order is claimed later, and one that died in flight is
// run again by its retry; it must not be answered with the order's 201.
const TRANSITION_SQL = `
with o as (
  update orders.orders set status = $2, reason = $3, updated_at = $4::timestamptz, attempts = attempts + $5::int,
    rejected_lines = coalesce($9::text::jsonb, rejected_lines), hold_expires_at = coalesce($10::timestamptz, hold_expires_at)
  where order_id = $1::uuid and status = any($6::text[])
  returning order_id
), h as (
  insert into orders.order_history (order_id, status, reason, at) select order_id, $2, $3, $4::timestamptz from o
), k as (
  update orders.idempotency_keys set state = 'done', response_status = $7::int, response_body = $8, updated_at = $4::timestamptz
  where order_id = $1::uuid and state = 'in_flight' and $7::int is not null and exists (select 1 from o)
    and for_create
)
select count(*)::int as n from o`;

// The retry worker's form of TRANSITION_SQL: only while the worker's lease ($9) stands, and
// letting go of it, so a worker whose lease ran out and was taken over moves nothing. (Written
// out rather than generated: `npm run bench` reads TRANSITION_SQL's text for pgbench.)
const LEASED_TRANSITION_SQL = `
with o as (
  update orders.orders set status = $2, reason = $3, updated_at = $4::timestamptz, attempts = attempts + $5::int,
    rejected_lines = coalesce($10::text::jsonb, rejected_lines), hold_expires_at = coalesce($11::timestamptz, hold_expires_at),
    lease_id = null, leased_until = null
  where order_id = $1::uuid and status = any($6::text[]) and lease_id = $9::uuid
  returning order_id
), h as (
  insert into orders.order_history (order_id, status, reason, at) select order_id, $2, $3, $4::timestamptz from o
), k as (
  update orders.idempotency_keys set state = 'done', response_status = $7::int, response_body = $8, updated_at = $4::timestamptz
  where order_id = $1::uuid and state = 'in_flight' and $7::int is not null and exists (select 1 from o)
    and for_create
)
select count(*)::int as n from o`;

// The retry worker claims an unfinished order before it calls inventory for it: only while no
// other worker's lease is live, and a pending order (its request died) joins the queued ones in
// the same statement. FOR UPDATE re-reads the row if a concurrent transition moved it first.
const CLAIM_WORK_SQL = `
with prev as (
  select order_id, status from orders.orders
  where order_id = $1::uuid and (leased_until is null or leased_until <= $2::timestamptz)
    and (status in ('pending', 'queued', 'cancelling') or (status = 'reserved' and (paid_at is not null or hold_expires_at <= $2::timestamptz)))
  for update
), o as (
  update orders.orders o set status = case when prev.status in ('cancelling', 'reserved') then prev.status else 'queued' end,
    reason = case when prev.status = 'pending' then 'recovered' else o.reason end,
    lease_id = $3::uuid, leased_until = $2::timestamptz + $4::int * interval '1 millisecond', updated_at = $2::timestamptz
  from prev where o.order_id = prev.order_id
  returning o.order_id, o.item_id, o.quantity, o.lines, o.rejected_lines, o.hold_s, o.hold_expires_at, o.paid_at,
    o.status, o.reason, o.attempts, o.request_id, o.created_at, o.updated_at, prev.status as was
), h as (
  insert into orders.order_history (order_id, status, reason, at) select order_id, 'queued', 'recovered', $2::timestamptz from o where was = 'pending'
)
select order_id, item_id, quantity, lines, rejected_lines, hold_s, hold_expires_at, paid_at, status, reason, attempts, request_id, created_at, updated_at from o`;

// The batch forms of the three statements above, for group commit: one row per order, passed
// as parallel arrays. Keys are claimed in key order and orders updated in id order, so two
// batches running at once take their row locks in the same order. (The lone forms repeat their
// ON CONFLICT clauses literally: `npm run bench` reads them as text for pgbench.)
const BATCH_INPUT_SQL = `
  select * from unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::int[], $6::timestamptz[], $7::int[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int[])
    with ordinality as r(key, fingerprint, order_id, item_id, quantity, at, ttl_s, request_id, response_body, reason, lines, hold_s, n)`;

const CLAIM_BATCH_SQL = `
with req as (${BATCH_INPUT_SQL}
), claim as (
  insert into orders.idempotency_keys (key, fingerprint, state, order_id, expires_at, created_at, updated_at)
  select key, fingerprint, 'in_flight', order_id, at + make_interval(secs => ttl_s), at, at from req order by key
  on conflict (key) do update set
    fingerprint = excluded.fingerprint, state = 'in_flight', order_id = excluded.order_id,
    response_status = null, response_body = null, for_create = true,
    created_at = excluded.created_at, updated_at = excluded.updated_at, expires_at = excluded.expires_at
  where orders.idempotency_keys.expires_at < excluded.created_at
  returning order_id
), ord as (
  insert into orders.orders (order_id, item_id, quantity, lines, hold_s, status, request_id, created_at, updated_at)
  select r.order_id, r.item_id, r.quantity, r.lines::jsonb, r.hold_s, 'pending', r.request_id, r.at, r.at from req r join claim using (order_id)
  returning order_id
), hist as (
  insert into orders.order_history (order_id, status, at) select r.order_id, 'pending', r.at from req r join ord using (order_id)
)
select order_id from ord`;

const CLAIM_QUEUED_BATCH_SQL = `
with req as (${BATCH_INPUT_SQL}
), claim as (
  insert into orders.idempotency_keys (key, fingerprint, state, order_id, response_status, response_body, expires_at, created_at, updated_at)
  select key, fingerprint, 'done', order_id, 202, response_body, at + make_interval(secs => ttl_s), at, at from req order by key
  on conflict (key) do update set
    fingerprint = excluded.fingerprint, state = 'done', order_id = excluded.order_id,
    response_status = excluded.response_status, response_body = excluded.response_body, for_create = true,
    created_at = excluded.created_at, updated_at = excluded.updated_at, expires_at = excluded.expires_at
  where orders.idempotency_keys.expires_at < excluded.created_at
  returning order_id
), ord as (
  insert into orders.orders (order_id, item_id, quantity, lines, hold_s, status, reason, request_id, created_at, updated_at)
  select r.order_id, r.item_id, r.quantity, r.lines::jsonb, r.hold_s, 'queued', r.reason, r.request_id, r.at, r.at from req r join claim using (order_id)
  returning order_id
), hist as (
  insert into orders.order_history (order_id, status, reason, at)
  select r.order_id, s.status, s.reason, r.at from req r join ord using (order_id),
    lateral (values (1, 'pending', null::text), (2, 'queued', r.reason)) as s(n, status, reason)
  order by r.n, s.n
)
select order_id from ord`;

const TRANSITION_BATCH_SQL = `
with req as (
  select * from unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::int[], $6::text[], $7::int[], $8::text[], $9::text[], $10::timestamptz[])
    as r(order_id, to_status, reason, at, attempt, from_status, response_status, response_body, rejected_lines, hold_expires_at)
), o as (
  update orders.orders o set status = r.to_status, reason = r.reason, updated_at = r.at, attempts = o.attempts + r.attempt,
    rejected_lines = coalesce(r.rejected_lines::jsonb, o.rejected_lines), hold_expires_at = coalesce(r.hold_expires_at, o.hold_expires_at)
  from (select * from req order by order_id) r
  where o.order_id = r.order_id and o.status = r.from_status
  returning o.order_id
), h as (
  insert into orders.order_history (order_id, status, reason, at)
  select r.order_id, r.to_status, r.reason, r.at from req r join o using (order_id)
), k as (
  update orders.idempotency_keys k set state = 'done', response_status = r.response_status, response_body = r.response_body, updated_at = r.at
  from req r join o using (order_id)
  where k.order_id = r.order_id and k.state = 'in_flight' and r.response_status is not null
    and k.for_create
)
select order_id from o`;

const KEY_SQL = `
select fingerprint, state, order_id, response_status, response_body, updated_at, expires_at
from orders.idempotency_keys where key = $1`;

/** An order as stored: the table's select type. */
export type OrderRow = Selectable<OrderTable>;

export type KeyRow = Pick<
  Selectable<IdempotencyKeyTable>,
  "fingerprint" | "state" | "order_id" | "response_status" | "response_body" | "updated_at" | "expires_at"
>;

export interface NewOrder {
  key: string;
  fingerprint: string;
  orderId: string;
  /** Every line as sent; a one-line order is also stored in `item_id` and `quantity`. */
  lines: readonly OrderLine[];
  /** Reserve for this many seconds instead of selling. */
  holdS?: number | undefined;
  at: Date;
  ttlS: number;
  requestId: string | null;
}

/** The one-line columns of a new order: its item and quantity, or null for several lines. */
function single(o: NewOrder): [string | null, number | null] {
  return o.lines.length === 1 ? [o.lines[0]!.item_id, o.lines[0]!.quantity] : [null, null];
}

/** Claims the key and inserts the pending order; false when the key is already taken (and live). */
export async function claim(database: Database, o: NewOrder): Promise<boolean> {
  const rows = await database.query("ord_claim", CLAIM_SQL, [
    o.key, o.fingerprint, o.orderId, ...single(o), o.at.toISOString(), o.ttlS, o.requestId, JSON.stringify(o.lines), o.holdS ?? null,
  ]);
  return rows.length > 0;
}

export async function claimQueued(database: Database, o: NewOrder, responseBody: string, reason: string): Promise<boolean> {
  const rows = await database.query("ord_claim_queued", CLAIM_QUEUED_SQL, [
    o.key, o.fingerprint, o.orderId, ...single(o), o.at.toISOString(), o.ttlS, o.requestId, responseBody, reason, JSON.stringify(o.lines), o.holdS ?? null,
  ]);
  return rows.length > 0;
}

export interface Transition {
  orderId: string;
  to: OrderStatus;
  from: readonly OrderStatus[];
  reason: string | null;
  at: Date;
  /** 1 when this transition follows an inventory call made by the retry worker. */
  attempt?: 0 | 1;
  /** The response to store for a key still in flight (null: leave the key alone). */
  response?: { status: number; body: string } | null;
  /** The lines inventory refused, for a rejection. */
  rejectedLines?: readonly LineRejection[] | null;
  /** The deadline inventory recorded, for a hold. */
  holdExpiresAt?: string | null;
}

const rejectedJson = (t: Transition) => (t.rejectedLines?.length ? JSON.stringify(t.rejectedLines) : null);

/** Applies a state transition if the order is in one of `from`; returns whether it did. */
export async function transition(database: Database, t: Transition): Promise<boolean> {
  const rows = await database.query<{ n: number }>("ord_transition", TRANSITION_SQL, [
    t.orderId, t.to, t.reason, t.at.toISOString(), t.attempt ?? 0, t.from, t.response?.status ?? null, t.response?.body ?? null, rejectedJson(t), t.holdExpiresAt ?? null,
  ]);
  return (rows[0]?.n ?? 0) > 0;
}

/** The worker's transition: as `transition`, and only while `leaseId` is the order's lease (then let go). */
export async function leasedTransition(database: Database, t: Transition & { leaseId: string }): Promise<boolean> {
  const rows = await database.query<{ n: number }>("ord_leased_transition", LEASED_TRANSITION_SQL, [
    t.orderId, t.to, t.reason, t.at.toISOString(), t.attempt ?? 0, t.from, t.response?.status ?? null, t.response?.body ?? null, t.leaseId, rejectedJson(t),
    t.holdExpiresAt ?? null,
  ]);
  return (rows[0]?.n ?? 0) > 0;
}

/**
 * Claims an unfinished order for one worker delivery: `leaseId` until `at + leaseMs`. Null when
 * the order is missing, final, or held by another worker's live lease. A pending order becomes
 * queued (reason `recovered`, with its history row).
 */
export async function claimForWork(database: Database, c: { orderId: string; at: Date; leaseId: string; leaseMs: number }): Promise<OrderRow | null> {
  const rows = await database.query<OrderRow>("ord_claim_work", CLAIM_WORK_SQL, [c.orderId, c.at.toISOString(), c.leaseId, Math.round(c.leaseMs)]);
  return rows[0] ?? null;
}

/**
 * Records that the customer paid a reserved order, once: the first payment's time stands, so a
 * payment finished later (from the retry queue) is judged by when it was made. Null when the
 * order is not reserved.
 */
export async function recordPayment(database: Database, orderId: string, at: Date): Promise<Date | null> {
  const r = await typed(database)
    .updateTable("orders.orders")
    .set((eb) => ({ paid_at: eb.fn.coalesce("paid_at", eb.val(at)), updated_at: at }))
    .where("order_id", "=", orderId)
    .where("status", "=", "reserved")
    .returning("paid_at")
    .executeTakeFirst();
  return r?.paid_at ? new Date(r.paid_at) : null;
}

/**
 * Reserved orders past their deadline and held by no live worker lease, oldest deadline first:
 * unpaid ones to expire, and paid ones whose payment inventory has not yet heard of (it will
 * sell them if the payment came in time).
 */
export async function findDueHolds(database: Database, now: Date, limit: number): Promise<string[]> {
  const rows = await typed(database)
    .selectFrom("orders.orders")
    .select("order_id")
    .where("status", "=", "reserved")
    .where("hold_expires_at", "<=", now)
    .where((eb) => eb.or([eb("leased_until", "is", null), eb("leased_until", "<=", now)]))
    .orderBy("hold_expires_at")
    .limit(limit)
    .execute();
  return rows.map((r) => r.order_id);
}

/** Lets go of a worker's lease without moving the order (it stays queued for a later delivery). */
export async function letGo(database: Database, orderId: string, leaseId: string): Promise<void> {
  await typed(database)
    .updateTable("orders.orders")
    .set({ lease_id: null, leased_until: null })
    .where("order_id", "=", orderId)
    .where("lease_id", "=", leaseId)
    .execute();
}

/** Claims an idempotency key for a request on an existing order (a cancel); false when it is taken and live. */
export async function claimKey(database: Database, k: { key: string; fingerprint: string; orderId: string; at: Date; ttlS: number }): Promise<boolean> {
  const expires = new Date(k.at.getTime() + k.ttlS * 1000);
  const r = await typed(database)
    .insertInto("orders.idempotency_keys")
    .values({ key: k.key, fingerprint: k.fingerprint, state: "in_flight", order_id: k.orderId, expires_at: expires, created_at: k.at, updated_at: k.at, for_create: false })
    .onConflict((oc) =>
      oc.column("key").doUpdateSet({
        fingerprint: k.fingerprint, state: "in_flight", order_id: k.orderId, response_status: null, response_body: null, for_create: false,
        created_at: k.at, updated_at: k.at, expires_at: expires,
      }).where("orders.idempotency_keys.expires_at", "<", k.at),
    )
    .returning("key")
    .executeTakeFirst();
  return r !== undefined;
}

/** Stores the answer a key's request was given, for its replays. */
export async function storeKeyResponse(database: Database, r: { key: string; orderId: string; status: number; body: string; at: Date }): Promise<void> {
  await typed(database)
    .updateTable("orders.idempotency_keys")
    .set({ state: "done", response_status: r.status, response_body: r.body, updated_at: r.at })
    .where("key", "=", r.key)
    .where("order_id", "=", r.orderId)
    .execute();
}

/**
 * Moves an order to `cancelling` from one of `from`, with a history row saying who asked and
 * why. False when the order was in none of those states.
 */
export async function startCancel(
  database: Database,
  c: { orderId: string; from: readonly OrderStatus[]; at: Date; actor: string; note: string | null },
): Promise<boolean> {
  return typed(database)
    .transaction()
    .execute(async (trx) => {
      const moved = await trx
        .updateTable("orders.orders")
        .set({ status: "cancelling", reason: "cancel_requested", updated_at: c.at })
        .where("order_id", "=", c.orderId)
        .where("status", "in", [...c.from])
        .returning("order_id")
        .executeTakeFirst();
      if (!moved) return false;
      await trx
        .insertInto("orders.order_history")
        .values({ order_id: c.orderId, status: "cancelling", reason: "cancel_requested", actor: c.actor, note: c.note, at: c.at })
        .execute();
      return true;
    });
}

export async function findKey(database: Database, key: string): Promise<KeyRow | null> {
  const rows = await database.query<KeyRow>("ord_key", KEY_SQL, [key]);
  return rows[0] ?? null;
}

const typed = (database: Database) => database.db as Kysely<OrdersTables>;

const orderColumns = [
  "order_id", "item_id", "quantity", "lines", "rejected_lines", "hold_s", "hold_expires_at", "paid_at",
  "status", "reason", "attempts", "request_id", "created_at", "updated_at",
] as const;

export async function findOrder(database: Database, orderId: string): Promise<OrderRow | null> {
  const r = await typed(database).selectFrom("orders.orders").select(orderColumns).where("order_id", "=", orderId).executeTakeFirst();
  return (r as OrderRow | undefined) ?? null;
}

export async function listOrders(database: Database, opts: { status?: OrderStatus; limit: number }): Promise<OrderRow[]> {
  let q = typed(database).selectFrom("orders.orders").select(orderColumns).orderBy("created_at", "desc").orderBy("order_id").limit(opts.limit);
  if (opts.status) q = q.where("status", "=", opts.status);
  return (await q.execute()) as OrderRow[];
}

export async function orderHistory(database: Database, orderId: string) {
  return typed(database)
    .selectFrom("orders.order_history")
    .select(["status", "reason", "at", "actor", "note"])
    .where("order_id", "=", orderId)
    .orderBy("id")
    .execute();
}

/** Orders no one is working on: pending or queued, untouched for `olderThanMs`, and held by no live worker lease. */
export async function findStranded(database: Database, now: Date, olderThanMs: number, limit: number): Promise<OrderRow[]> {
  const before = new Date(now.getTime() - olderThanMs);
  return (await typed(database)
    .selectFrom("orders.orders")
    .select(orderColumns)
    .where((eb) => eb.or([eb("status", "in", ["pending", "queued", "cancelling"]), eb.and([eb("status", "=", "reserved"), eb("paid_at", "is not", null)])]))
    .where("updated_at", "<", before)
    .where((eb) => eb.or([eb("leased_until", "is", null), eb("leased_until", "<=", now)]))
    .orderBy("updated_at")
    .limit(limit)
    .execute()) as OrderRow[];
}

/**
 * Records a worker's delivery that did not settle the order and lets go of its lease: the reason
 * changes, and the attempt count grows by `counted` (an attempt that reached inventory counts;
 * one refused by a configuration fault does not), the state does not (no history row).
 */
export async function recordAttempt(
  database: Database,
  a: { orderId: string; leaseId: string; reason: string; at: Date; counted: boolean },
): Promise<void> {
  await typed(database)
    .updateTable("orders.orders")
    .set((eb) => ({ reason: a.reason, updated_at: a.at, attempts: eb("attempts", "+", a.counted ? 1 : 0), lease_id: null, leased_until: null }))
    .where("order_id", "=", a.orderId)
    .where("status", "=", "queued")
    .where("lease_id", "=", a.leaseId)
    .execute();
}

/** Marks an order as touched so the sweeper leaves it alone for another `strandedAfterMs`. */
export async function touch(database: Database, orderId: string, at: Date): Promise<void> {
  await typed(database).updateTable("orders.orders").set({ updated_at: at }).where("order_id", "=", orderId).execute();
}

export async function countByStatus(database: Database): Promise<Record<OrderStatus, number>> {
  const rows = await typed(database)
    .selectFrom("orders.orders")
    .select(["status", (eb) => eb.fn.countAll<number>().as("n")])
    .groupBy("status")
    .execute();
  const out = Object.fromEntries(ORDER_STATUSES.map((s) => [s, 0])) as Record<OrderStatus, number>;
  for (const r of rows) out[r.status] = Number(r.n);
  return out;
}

export async function deleteExpiredKeys(database: Database, now: Date): Promise<number> {
  const r = await typed(database).deleteFrom("orders.idempotency_keys").where("expires_at", "<", now).executeTakeFirst();
  return Number(r.numDeletedRows);
}

interface QueuedClaim {
  order: NewOrder;
  responseBody: string | null;
  reason: string | null;
}

function batchParams(items: readonly QueuedClaim[]): unknown[] {
  const col = <T>(f: (c: QueuedClaim) => T) => items.map(f);
  return [
    col((c) => c.order.key),
    col((c) => c.order.fingerprint),
    col((c) => c.order.orderId),
    col((c) => single(c.order)[0]),
    col((c) => single(c.order)[1]),
    col((c) => c.order.at.toISOString()),
    col((c) => c.order.ttlS),
    col((c) => c.order.requestId),
    col((c) => c.responseBody),
    col((c) => c.reason),
    col((c) => JSON.stringify(c.order.lines)),
    col((c) => c.order.holdS ?? null),
  ];
}

async function claimedIds(database: Database, name: string, text: string, items: readonly QueuedClaim[]): Promise<boolean[]> {
  const rows = await database.query<{ order_id: string }>(name, text, batchParams(items));
  const won = new Set(rows.map((r) => r.order_id));
  return items.map((c) => won.has(c.order.orderId));
}

/** A transition out of exactly one state, as the order path makes them. */
export type SimpleTransition = Transition & { from: readonly [OrderStatus] };

/**
 * The order path's writes under group commit (`platform/group-commit.ts`): concurrent
 * orders share a statement and a commit. Each call answers exactly what its single-statement
 * form (`claim`, `claimQueued`, `transition`) would have.
 */
export class OrderWriter {
  private readonly claims: GroupCommit<QueuedClaim, boolean>;
  private readonly queuedClaims: GroupCommit<QueuedClaim, boolean>;
  private readonly transitions: GroupCommit<SimpleTransition, boolean>;

  constructor(database: Database, settings: GroupCommitSettings) {
    const byKey = (c: QueuedClaim) => c.order.key;
    this.claims = new GroupCommit({
      ...statementLimits(settings, "claim"),
      keyOf: byKey,
      runOne: (c) => claim(database, c.order),
      runBatch: (items) => claimedIds(database, "ord_claim_batch", CLAIM_BATCH_SQL, items),
    });
    this.queuedClaims = new GroupCommit({
      ...statementLimits(settings, "claim_queued"),
      keyOf: byKey,
      runOne: (c) => claimQueued(database, c.order, c.responseBody ?? "", c.reason ?? ""),
      runBatch: (items) => claimedIds(database, "ord_claim_queued_batch", CLAIM_QUEUED_BATCH_SQL, items),
    });
    this.transitions = new GroupCommit({
      ...statementLimits(settings, "transition"),
      keyOf: (t) => t.orderId,
      runOne: (t) => transition(database, t),
      runBatch: async (items) => {
        const col = <T>(f: (t: SimpleTransition) => T) => items.map(f);
        const rows = await database.query<{ order_id: string }>("ord_transition_batch", TRANSITION_BATCH_SQL, [
          col((t) => t.orderId),
          col((t) => t.to),
          col((t) => t.reason),
          col((t) => t.at.toISOString()),
          col((t) => t.attempt ?? 0),
          col((t) => t.from[0]),
          col((t) => t.response?.status ?? null),
          col((t) => t.response?.body ?? null),
          col((t) => rejectedJson(t)),
          col((t) => t.holdExpiresAt ?? null),
        ]);
        const moved = new Set(rows.map((r) => r.order_id));
        return items.map((t) => moved.has(t.orderId));
      },
    });
  }

  /** Claims the key and inserts the pending order; false when the key is already taken (and live). */
  claim(order: NewOrder): Promise<boolean> {
    return this.claims.submit({ order, responseBody: null, reason: null });
  }

  /** Records the order as queued with its stored 202; false when the key is already taken (and live). */
  claimQueued(order: NewOrder, responseBody: string, reason: string): Promise<boolean> {
    return this.queuedClaims.submit({ order, responseBody, reason });
  }

  transition(t: SimpleTransition): Promise<boolean> {
    return this.transitions.submit(t);
  }

  /** Statements run and orders carried, per kind of write. */
  stats() {
    return { claim: this.claims.stats(), claimQueued: this.queuedClaims.stats(), transition: this.transitions.stats() };
  }
}
