/**
 * The data a verification run gathers, shared by the load driver, the settle phase, the
 * invariant checker and the report. Times are milliseconds since the run's start (`at_ms`) on the
 * runner's monotonic clock, so a report never depends on the machine's wall clock.
 */

export type OrderStatus = "pending" | "confirmed" | "rejected" | "queued" | "failed" | "cancelling" | "cancelled" | "reserved" | "expired";
/**
 * Settled: nothing works on the order any more (a confirmed one may still be cancelled by a
 * client). `reserved` is not: its hold still ends paid, expired or cancelled.
 */
export const FINAL_STATUSES: ReadonlySet<string> = new Set(["confirmed", "rejected", "failed", "cancelled", "expired"]);

/** Which sender made an attempt: the order's own client, its deliberate twin, or the post-heal catch-up. */
export type Lane = "main" | "duplicate" | "reconcile";

/**
 * Which request of a cancellation: the first (its own key), the same key sent again once answered
 * (it must replay), a second key (a cancelled order answers 200 again), or the post-heal resend of
 * a cancel that never got an answer (its first key).
 */
export type CancelLane = "cancel" | "cancel_replay" | "cancel_second" | "cancel_reconcile";

/** How a definitive answer reads. Anything but `order` means the API and the client disagree. */
export type AnswerKind = "order" | "key_reused" | "client_error";

/** How a definitive cancel answer reads: 200/202 with the order, 409 not cancellable, or outside the contract. */
export type CancelAnswerKind = "order" | "not_cancellable" | "key_reused" | "not_found" | "client_error";

/** One line of an order. */
export interface OrderLine {
  item_id: string;
  quantity: number;
}

/** One HTTP request of the careful client, kept whatever happened. */
export interface Attempt<L extends string = Lane> {
  lane: L;
  /** When it was sent, ms since the run started. */
  at_ms: number;
  duration_ms: number;
  /** HTTP status, or 0 when no answer came (timeout, reset, refused). */
  status: number;
  /** For status 0: `timeout`, `reset`, `refused` or `transport`. */
  error?: string;
  /** The answer carried `Idempotent-Replayed: true`. */
  replayed?: boolean;
  /** The answer's `Retry-After`, in seconds, when it had one (a 503 during a database outage). */
  retry_after_s?: number;
  order_id?: string | null;
}

/** The first answer that ends a sender's retries: 201, 202, 422, or another 4xx. */
export interface Answer {
  lane: Lane;
  status: number;
  kind: AnswerKind;
  order_id: string | null;
  /** The order's state as the answer told it (`order_status` in a 422 problem). */
  order_status: string | null;
  /** A hold's deadline, when the answer carried one (`reserved`). */
  hold_expires_at?: string | null;
  at_ms: number;
}

/** The answer that ends one cancel request's retries: 200, 202, 409 not cancellable, or another 4xx. */
export interface CancelAnswer {
  lane: CancelLane;
  /** The Idempotency-Key it was sent with. */
  key: string;
  status: number;
  kind: CancelAnswerKind;
  /** The order's state as the answer told it (`status` of the order, `order_status` of a 409 problem). */
  order_status: string | null;
  /** Carried `Idempotent-Replayed: true`. */
  replayed: boolean;
  at_ms: number;
}

/**
 * When a cancel is sent, relative to its order's answer; `reserved`: a hold's cancel, sent while
 * the order is reserved (some seconds after the hold is made, well before its deadline);
 * `after_expiry`: a hold left to expire, cancelled 2–5 s after its deadline (a 409 is due).
 */
export type CancelMoment = "immediate" | "delayed" | "after_heal" | "reserved" | "after_expiry";

/** Which request of a payment: the first key, the same key again once answered (it must replay), a second key. */
export type PayLane = "pay" | "pay_replay" | "pay_second";

/**
 * How a definitive pay answer reads: 200/202 with the order, 409 `hold-expired`, 409
 * `order-not-payable`, or outside the contract.
 */
export type PayAnswerKind = "order" | "hold_expired" | "not_payable" | "key_reused" | "not_found" | "client_error";

/** The answer that ends one pay request's retries. */
export interface PayAnswer {
  lane: PayLane;
  key: string;
  status: number;
  kind: PayAnswerKind;
  /** The order's state as the answer told it (`status`, or a problem's `order_status`). */
  order_status: string | null;
  paid_at: string | null;
  hold_expires_at: string | null;
  replayed: boolean;
  at_ms: number;
}

/** What a hold is planned to end in: paid, cancelled while reserved, or left to expire. */
export type HoldFate = "pay" | "cancel" | "expire";
/** When a payment goes: well before the deadline, near it, or after it (a 409 is expected). */
export type PayMoment = "early" | "near" | "late";

/** An order placed with `hold_s`, and what the plan did with its hold. */
export interface HoldRecord {
  hold_s: number;
  fate: HoldFate;
  pay_moment: PayMoment | null;
  /**
   * For `early`: ms after the runner learned of the hold; for `near` and `late`: ms relative to
   * the deadline (negative: before it). For a cancel, see the order's `cancel.delay_ms`.
   */
  offset_ms: number;
  pay_key: string;
  /** Send the pay key again once it was answered (it must replay). */
  replay: boolean;
  /** A second pay with its own key, once the first was answered. */
  second_key: string | null;
  /** The deadline as the runner learned it (the 201, or a read once the worker made the hold); null if never reserved. */
  expires_at: string | null;
  /** The state the order was in when the runner stopped waiting for its hold (`reserved`, or why there was none). */
  seen_status: string | null;
  /** When the first pay request left: ms since the run started, and the wall clock. */
  pay_sent_ms: number | null;
  pay_sent_at: string | null;
  attempts: Array<Attempt<PayLane>>;
  answers: PayAnswer[];
}

/** A cancellation the plan asked for, and everything that happened to it. */
export interface CancelRecord {
  moment: CancelMoment;
  /** For `delayed`: how long after the order's answer. */
  delay_ms: number;
  key: string;
  /** Send the first key again once it was answered. */
  replay: boolean;
  /** A second cancel with its own key, once the first was answered. */
  second_key: string | null;
  /** The `reason` the first key sends (kept in the order's history), or none. */
  reason: string | null;
  /** The order's first answer when the cancel left (201, 202, 422); null while not sent. */
  order_answer: number | null;
  /** When the first cancel request left; null when it was never sent (the order had no id). */
  sent_ms: number | null;
  attempts: Array<Attempt<CancelLane>>;
  answers: CancelAnswer[];
}

/** What the runner read back about an order after healing. */
export interface FinalObservation {
  /** The order's status, `missing` for a 404, `unreadable` when the read itself kept failing. */
  status: OrderStatus | "missing" | "unreadable";
  reason: string | null;
  /** Inventory calls the server made for it (its `attempts` field). */
  server_attempts: number;
  created_at: string | null;
  updated_at: string | null;
  /** A hold's deadline and the payment's moment, when the order has them. */
  hold_expires_at?: string | null;
  paid_at?: string | null;
  history: Array<{ status: string; reason: string | null; at: string }>;
  /** ms after healing when the runner first saw it final; null if never. */
  final_seen_ms: number | null;
}

/** One logical order: one key, however many requests it took. */
export interface OrderRecord {
  index: number;
  key: string;
  /** Every line, in the order sent. */
  lines: OrderLine[];
  /** `one_item`: sent in the seed's `{item_id, quantity}` body (one line); `lines` otherwise. */
  form: "lines" | "one_item";
  /** Sent twice at once on purpose (a double click), to exercise the in-flight path. */
  duplicate: boolean;
  attempts: Attempt[];
  answers: Answer[];
  /** When the first request left, ms since the run started. */
  sent_ms: number;
  /** When the first definitive answer arrived; null if none during the load. */
  answered_ms: number | null;
  /** Needed the post-heal catch-up because every request during the load failed. */
  reconciled: boolean;
  /** The cancellation the plan gave this order, if any. */
  cancel: CancelRecord | null;
  /** Placed with `hold_s`: the hold and its payments; null for a sale. Absent in records from before holds. */
  hold?: HoldRecord | null;
  final: FinalObservation | null;
}

/** A restock the runner made during the load (not retried: restock has no idempotency key). */
export interface RestockRecord {
  item_id: string;
  quantity: number;
  at_ms: number;
  /** HTTP status, 0 when no answer came (the restock may or may not have happened). */
  status: number;
}

/** An inventory movement as stored in `inventory.movements`. */
export interface LedgerRow {
  order_id: string | null;
  item_id: string;
  type: "create" | "deduct" | "release" | "restock" | "adjust" | "hold" | "hold_release" | "sale";
  quantity_change: number;
  /** Change of `reserved_quantity`: +q for `hold`, −q for `hold_release` and `sale`; 0 (or absent) otherwise. */
  reserved_change?: number;
  /** The writing transaction's time (`now()`): one deduction of an order writes all its lines at one. */
  tx_at: string;
}

export interface ItemObservation {
  item_id: string;
  /** Stock the runner created the item with. */
  initial: number;
  /** Stock read from `/api/inventory/{id}` after healing and settling; null when it could not be read. */
  current: number | null;
  /** Its quantity read from inventory's database at the end; null when not read. */
  db_quantity?: number | null;
  /** Reserved units (live holds) from the API and from the database; absent when not read. */
  reserved?: number | null;
  db_reserved?: number | null;
}

/** Inventory's account of an order (`inventory.order_accounts`), for the holds checks. */
export interface AccountRow {
  order_id: string;
  outcome: string;
  settled: "sold" | "expired" | "cancelled" | null;
  hold_expires_at: string | null;
  released: boolean;
}

/** The order id an order's answers agree on, or the first one named. */
export function orderIdOf(o: Pick<OrderRecord, "answers">): string | null {
  for (const a of o.answers) if (a.order_id) return a.order_id;
  return null;
}

/** Accepted: the system said 201 or 202 at least once, so it owes the order a final state. */
export function isAccepted(o: Pick<OrderRecord, "answers">): boolean {
  return o.answers.some((a) => a.status === 201 || a.status === 202);
}

/** A pay the system answered 200, 202 or 409 hold-expired: it acted on the hold. */
export function payAnswered(h: Pick<HoldRecord, "answers"> | null | undefined): boolean {
  return !!h && h.answers.some((a) => a.kind === "order" || a.kind === "hold_expired");
}

/** A cancel the system accepted (200 or 202): it owes the order the state `cancelled`. */
export function cancelAccepted(c: Pick<CancelRecord, "answers"> | null): boolean {
  return !!c && c.answers.some((a) => a.kind === "order" && (a.status === 200 || a.status === 202));
}

/** `linesLabel([{ item_id: "a", quantity: 2 }, { item_id: "b", quantity: 1 }])` → `"a × 2, b × 1"`. */
export function linesLabel(lines: readonly OrderLine[]): string {
  return lines.map((l) => `${l.item_id} × ${l.quantity}`).join(", ");
}

/** One webhook request as the run's receiver saw it. Times are ms since the run's start. */
export interface ReceivedAttempt {
  /** `webhook-id` header: the event id. */
  id: string;
  /** `webhook-timestamp` header (seconds). */
  timestamp: string;
  start_ms: number;
  /** When it answered, or when the sender hung up or the receiver went down first. */
  end_ms: number;
  /** SHA-256 of the body bytes, hex; empty when the body never arrived whole. */
  body_sha256: string;
  /** What it answered: 2xx or 5xx; 0 when no answer went out (the sender hung up, the receiver went down). */
  status: number;
  /** The reference library (`standardwebhooks`) accepted the signature, and so did a plain HMAC check of our own. */
  signature_ok: boolean;
  /** The body's order id, seq, type and order status; null when the body did not parse. */
  order_id: string | null;
  seq: number | null;
  type: string | null;
  order_status: string | null;
  /** Held back this long before answering (a slow receiver). */
  slow_ms?: number;
}

/** An event as `GET /api/events` lists it, reduced to what the webhook checks compare. */
export interface ListedEvent {
  id: string;
  type: string;
  order_id: string;
  seq: number;
  /** The order's status in the event's body. */
  status: string;
  /** When the change happened (the event's `created_at`, wall clock). */
  created_at?: string;
}

/** What the webhook checks read after healing and draining (`--webhooks`). */
export interface WebhookObservation {
  /** Every order event the orders role lists, in its order. */
  events: ListedEvent[];
  /** Every other event listed (`stock.low`): no order, so only delivery, body and overlap are judged. */
  other_events?: Array<{ id: string; type: string }>;
  /** Every request the receiver saw. */
  attempts: ReceivedAttempt[];
  /** Order id → the statuses of its history, in order; null when it could not be read. */
  histories: Record<string, string[] | null>;
  /** Nothing waited for delivery any more when the checks ran (the relay's backlog reached 0). */
  drained: boolean;
  /** When the webhook faults ended (receiver back, relays up), ms since the run's start. */
  healed_ms?: number;
  /** The run's start on the wall clock (ms since the epoch), to place events' `created_at` on the run's clock. */
  started_wall_ms?: number;
  drain_bound_ms: number;
}
