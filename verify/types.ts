/**
 * The data a verification run gathers, shared by the load driver, the settle phase, the
 * invariant checker and the report. Times are milliseconds since the run's start (`at_ms`) on the
 * runner's monotonic clock, so a report never depends on the machine's wall clock.
 */

export type OrderStatus = "pending" | "confirmed" | "rejected" | "queued" | "failed";
export const FINAL_STATUSES: ReadonlySet<string> = new Set(["confirmed", "rejected", "failed"]);

/** Which sender made an attempt: the order's own client, its deliberate twin, or the post-heal catch-up. */
export type Lane = "main" | "duplicate" | "reconcile";

/** How a definitive answer reads. Anything but `order` means the API and the client disagree. */
export type AnswerKind = "order" | "key_reused" | "client_error";

/** One HTTP request of the careful client, kept whatever happened. */
export interface Attempt {
  lane: Lane;
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
  item_id: string;
  quantity: number;
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
  final: FinalObservation | null;
}

/** An inventory movement as stored in `inventory.inventory_transactions`. */
export interface LedgerRow {
  order_id: string | null;
  item_id: string;
  type: "deduct" | "release" | "restock" | "create";
  quantity_change: number;
  outcome: string;
}

export interface ItemObservation {
  item_id: string;
  /** Stock the runner created the item with. */
  initial: number;
  /** Stock read after healing and settling; null when it could not be read. */
  current: number | null;
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
