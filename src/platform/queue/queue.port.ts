/**
 * The retry queue port: orders accepted as `queued` wait here until inventory answers.
 * The queue is a wake-up mechanism, not the authority: the `orders` table is. A message lost
 * with Redis is recovered by the sweeper, which re-enqueues every order left `pending`/`queued`.
 *
 * Adapters: `redis-streams` (consumer group, XAUTOCLAIM of dead consumers' work, dead-letter
 * stream) and `postgres` (a table read with `FOR UPDATE SKIP LOCKED`). Both run `queue.contract.ts`.
 */
export interface RetryMessage {
  orderId: string;
  /** 0 for the first retry; the worker increments it on each `retryLater`. */
  attempt: number;
  requestId?: string | undefined;
}

export interface Delivery extends RetryMessage {
  /** Adapter-specific id of this delivery (stream entry id, row id). */
  readonly id: string;
  /** Done: remove it for good. */
  ack(): Promise<void>;
  /** Not yet: make it visible again after `delayMs` with `attempt + 1`. */
  retryLater(delayMs: number): Promise<void>;
  /** Give up on the message: move it to the dead letters with a reason. */
  deadLetter(reason: string): Promise<void>;
}

export interface QueueDepth {
  /** Messages waiting to be delivered (including those delayed for backoff). */
  ready: number;
  /** Messages delivered to a consumer and not yet acknowledged. */
  inFlight: number;
  deadLetters: number;
}

export interface RetryQueue {
  readonly kind: "redis-streams" | "postgres";
  /** `await queue.enqueue({ orderId, attempt: 0 }, { delayMs: 200 })`. Enqueuing an order twice is harmless. */
  enqueue(message: RetryMessage, opts?: { delayMs?: number }): Promise<void>;
  /**
   * Up to `max` messages that are due, waiting at most `waitMs` for one to arrive. Also takes
   * over messages another consumer received and did not settle within the visibility timeout.
   */
  receive(max: number, waitMs: number): Promise<Delivery[]>;
  depth(): Promise<QueueDepth>;
  /** Dead letters, newest first, for operators and the UI. */
  deadLetters(count: number): Promise<Array<RetryMessage & { reason: string; at: string }>>;
  close(): Promise<void>;
}
