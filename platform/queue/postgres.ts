import type { Database } from "../db.ts";
import { systemClock, type Clock } from "../clock.ts";
import { QueueClosedError } from "./queue.errors.ts";
import type { Delivery, QueueDepth, RetryMessage, RetryQueue } from "./queue.port.ts";

export interface PostgresQueueOptions {
  /** How long a received message stays hidden from other consumers. Default 30 s. */
  visibilityTimeoutMs?: number;
  clock?: Clock;
  /** Pause between polls while `receive` waits. Default 250 ms. */
  pollMs?: number;
}

// Every time value comes from the injected clock (passed as a parameter, never `now()` in SQL),
// so tests can move time and all replicas agree with their own clocks to within the skew.
const SQL = {
  // An enqueue for an order already queued only brings its due time forward; one in flight
  // (live lease) is left alone, so the sweeper cannot cause a second concurrent delivery.
  enqueue: `
    insert into orders.retry_queue as q (order_id, attempt, request_id, available_at, enqueued_at)
    values ($1, $2, $3, $4::timestamptz, $5::timestamptz)
    on conflict (order_id) do update
      set available_at = least(q.available_at, excluded.available_at)
      where q.leased_until is null or q.leased_until <= $5::timestamptz`,
  // Expired leases need no special case: a receive moves available_at to the lease end.
  receive: `
    with due as (
      select order_id from orders.retry_queue
      where available_at <= $1::timestamptz
      order by available_at, order_id
      limit $2
      for update skip locked
    )
    update orders.retry_queue q
      set available_at = $3::timestamptz, leased_until = $3::timestamptz, deliveries = q.deliveries + 1
      from due
      where q.order_id = due.order_id
      returning q.order_id, q.attempt, q.request_id, q.deliveries`,
  ack: `delete from orders.retry_queue where order_id = $1 and deliveries = $2`,
  retryLater: `
    update orders.retry_queue
      set attempt = attempt + 1, available_at = $3::timestamptz, leased_until = null
      where order_id = $1 and deliveries = $2`,
  deadLetter: `
    with gone as (
      delete from orders.retry_queue where order_id = $1 and deliveries = $2
      returning order_id, attempt, request_id
    )
    insert into orders.retry_dead_letters (order_id, attempt, request_id, reason, at)
      select order_id, attempt, request_id, $3, $4::timestamptz from gone`,
  depth: `
    select
      (count(*) filter (where leased_until is null))::int as ready,
      (count(*) filter (where leased_until is not null))::int as in_flight,
      (select count(*) from orders.retry_dead_letters)::int as dead
    from orders.retry_queue`,
  deadLetters: `
    select order_id, attempt, request_id, reason, at
    from orders.retry_dead_letters order by id desc limit $1`,
} as const;

interface ReceivedRow {
  order_id: string;
  attempt: number;
  request_id: string | null;
  deliveries: number;
}

/**
 * The retry queue in PostgreSQL (table `orders.retry_queue`, migration `orders/0002`). Consumers
 * take due rows with `FOR UPDATE SKIP LOCKED` and hold them by a lease; `receive` polls.
 * The database belongs to the caller: `close()` does not close it.
 */
export function createPostgresQueue(database: Database, opts: PostgresQueueOptions = {}): RetryQueue {
  const clock = opts.clock ?? systemClock;
  const visibilityMs = opts.visibilityTimeoutMs ?? 30_000;
  const pollMs = Math.max(1, opts.pollMs ?? 250);
  const closing = new AbortController();

  const iso = (ms: number) => new Date(ms).toISOString();
  const open = () => {
    if (closing.signal.aborted) throw new QueueClosedError();
  };

  const toDelivery = (row: ReceivedRow): Delivery => {
    const token = [row.order_id, row.deliveries];
    return {
      id: `${row.order_id}:${row.deliveries}`,
      orderId: row.order_id,
      attempt: row.attempt,
      requestId: row.request_id ?? undefined,
      async ack() {
        open();
        await database.query("retry_queue_ack", SQL.ack, token);
      },
      async retryLater(delayMs) {
        open();
        await database.query("retry_queue_retry_later", SQL.retryLater, [
          ...token,
          iso(clock.now() + Math.max(0, delayMs)),
        ]);
      },
      async deadLetter(reason) {
        open();
        await database.query("retry_queue_dead_letter", SQL.deadLetter, [...token, reason, iso(clock.now())]);
      },
    };
  };

  const take = async (max: number): Promise<Delivery[]> => {
    const now = clock.now();
    const rows = await database.query<ReceivedRow>("retry_queue_receive", SQL.receive, [
      iso(now),
      max,
      iso(now + visibilityMs),
    ]);
    return rows.map(toDelivery);
  };

  return {
    kind: "postgres",

    async enqueue(message: RetryMessage, o = {}) {
      open();
      const now = clock.now();
      await database.query("retry_queue_enqueue", SQL.enqueue, [
        message.orderId,
        message.attempt,
        message.requestId ?? null,
        iso(now + Math.max(0, o.delayMs ?? 0)),
        iso(now),
      ]);
    },

    async receive(max, waitMs) {
      if (closing.signal.aborted || max < 1) return [];
      const deadline = clock.now() + Math.max(0, waitMs);
      for (;;) {
        const got = await take(Math.floor(max));
        if (got.length > 0) return got;
        const left = deadline - clock.now();
        if (left <= 0 || closing.signal.aborted) return [];
        try {
          await clock.sleep(Math.min(pollMs, left), closing.signal);
        } catch {
          return []; // closed while waiting
        }
      }
    },

    async depth(): Promise<QueueDepth> {
      open();
      const [row] = await database.query<{ ready: number; in_flight: number; dead: number }>(
        "retry_queue_depth",
        SQL.depth,
        [],
      );
      return { ready: Number(row?.ready ?? 0), inFlight: Number(row?.in_flight ?? 0), deadLetters: Number(row?.dead ?? 0) };
    },

    async deadLetters(count) {
      open();
      const rows = await database.query<{
        order_id: string;
        attempt: number;
        request_id: string | null;
        reason: string;
        at: Date | string;
      }>("retry_queue_dead_letters", SQL.deadLetters, [Math.max(0, Math.floor(count))]);
      return rows.map((r) => ({
        orderId: r.order_id,
        attempt: r.attempt,
        requestId: r.request_id ?? undefined,
        reason: r.reason,
        at: new Date(r.at).toISOString(),
      }));
    },

    async close() {
      closing.abort(new QueueClosedError());
    },
  };
}
