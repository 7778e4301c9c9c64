/**
 * The data a verification run gathers, shared by the load driver, the settle phase, the
 * invariant checker and the report. Times are milliseconds since the run's start (`at_ms`) on the
 * runner's monotonic clock, so a report never depends on the machine's wall clock.
 */

export type OrderStatus = "pending" | "confirmed" | "rejected" | "queued" | "failed" | "cancelling" | "cancelled";
/** Settled: nothing works on the order any more (a confirmed one may still be cancelled by a client). */
export const FINAL_STATUSES: ReadonlySet<string> = new Set(["confirmed", "rejected", "failed", "cancelled"]);

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

/** When a cancel is sent, relative to its order's answer. */
export type CancelMoment = "immediate" | "delayed" | "after_heal";

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
  type: "create" | "deduct" | "release" | "restock" | "adjust";
  quantity_change: number;
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

/** A cancel the system accepted (200 or 202): it owes the order the state `cancelled`. */
export function cancelAccepted(c: Pick<CancelRecord, "answers"> | null): boolean {
  return !!c && c.answers.some((a) => a.kind === "order" && (a.status === 200 || a.status === 202));
}

/** `linesLabel([{ item_id: "a", quantity: 2 }, { item_id: "b", quantity: 1 }])` → `"a × 2, b × 1"`. */
export function linesLabel(lines: readonly OrderLine[]): string {
  return lines.map((l) => `${l.item_id} × ${l.quantity}`).join(", ");
}
