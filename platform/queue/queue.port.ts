/**
 * The retry queue port: orders accepted as `queued` wait here until inventory answers.
 * The queue is a wake-up mechanism, not the authority: the `orders` table is. A message lost
 * with Redis is recovered by the sweeper, which re-enqueues every order left `pending`/`queued`.
 *
 * Delivery is at-least-once. A message is handed to one consumer at a time; if that consumer
 * does not settle it (ack, retryLater, deadLetter) within the adapter's visibility timeout, it
 * is handed to another. The worker is idempotent per `orderId`, so a rare repeat is harmless.
 *
 * Adapters: `redis-streams` (consumer group, XAUTOCLAIM of dead consumers' work, dead-letter
 * stream) and `postgres` (a table read with `FOR UPDATE SKIP LOCKED`). Both run `queue.contract.ts`.
 * Failures: `QueueUnavailableError` when the backing store does not answer in time,
 * `QueueClosedError` after `close()` (see `queue.errors.ts`).
 */
export interface RetryMessage {
  /** The order's id (a UUID, as in `orders.orders`). At most one message per order is queued. */
  orderId: string;
  /** 0 for the first retry; the worker increments it on each `retryLater`. */
  attempt: number;
  requestId?: string | undefined;
}

export interface Delivery extends RetryMessage {
  /** Adapter-specific id of this delivery (stream entry id, row id), for logs. */
  readonly id: string;
  /**
   * Done: remove it for good. `await delivery.ack()`.
   * Settling a delivery whose visibility timeout ran out and which was since handed to another
   * consumer does nothing: that consumer owns the message now. The same holds for the two below.
   */
  ack(): Promise<void>;
  /** Not yet: make it visible again after `delayMs` with `attempt + 1`. `await delivery.retryLater(2_000)`. */
  retryLater(delayMs: number): Promise<void>;
  /** Give up on the message: move it to the dead letters with a reason. `await delivery.deadLetter("max attempts")`. */
  deadLetter(reason: string): Promise<void>;
}

export interface QueueDepth {
  /** Messages waiting to be delivered (including those delayed for backoff). */
  ready: number;
  /**
   * Messages delivered to a consumer and not yet settled, including those whose consumer died
   * and that wait to be taken over.
   */
  inFlight: number;
  deadLetters: number;
}

export interface RetryQueue {
  readonly kind: "redis-streams" | "postgres";
  /**
   * `await queue.enqueue({ orderId, attempt: 0 }, { delayMs: 200 })`. Enqueuing an order twice is
   * harmless: while a message for the order is queued, a second enqueue only brings its due time
   * forward (never later), and while it is in flight it changes nothing.
   */
  enqueue(message: RetryMessage, opts?: { delayMs?: number }): Promise<void>;
  /**
   * Up to `max` messages that are due, waiting at most `waitMs` for one to arrive. Also takes
   * over messages another consumer received and did not settle within the visibility timeout.
   * `const batch = await queue.receive(10, 1_000)`: [] when nothing came in time or the queue
   * was closed meanwhile.
   */
  receive(max: number, waitMs: number): Promise<Delivery[]>;
  /** `const { ready, inFlight, deadLetters } = await queue.depth()`, for metrics and health. */
  depth(): Promise<QueueDepth>;
  /** Dead letters, newest first, for operators and the UI: `await queue.deadLetters(20)`. `at` is ISO 8601. */
  deadLetters(count: number): Promise<Array<RetryMessage & { reason: string; at: string }>>;
  /**
   * Stops pending receives (they resolve to []) and releases the adapter's own connections.
   * A database handed in by the caller stays open. Calling it twice is fine.
   */
  close(): Promise<void>;
}
