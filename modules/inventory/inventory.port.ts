/**
 * What the orders module may know about inventory. Adapters: `in-process` (same binary) and
 * `http-client` (split mode). Both pass `tests/inventory-port.contract.ts`.
 *
 * Failures come in two kinds, and the difference is the whole point:
 * - an *answer* (`DeductResult` with `outcome: "rejected"`) is final: never retried, never a
 *   breaker failure;
 * - a *transport* failure (`InventoryUnavailableError`: timeout, reset, 5xx) leaves the outcome
 *   unknown. The caller may retry with the same `order_id`; inventory deducts at most once.
 */
export interface InventoryItem {
  item_id: string;
  item_name: string;
  quantity: number;
  reserved_quantity: number;
  /** At or below this available quantity the item is low: a `stock.low` event; 0 = off. */
  low_stock_threshold: number;
  updated_at: string;
}

/** One line of an order: an item and how many of it. An order names each item at most once. */
export interface OrderLine {
  item_id: string;
  quantity: number;
}

export interface DeductRequest {
  order_id: string;
  /** 1–50 lines, each item at most once; applied all together or not at all. */
  lines: OrderLine[];
  /**
   * Reserve the lines for this many seconds (60–86,400) instead of selling them: they leave the
   * available quantity for `reserved_quantity` until paid (`pay`) or expired (`expire`). The
   * deadline counts from the moment inventory makes the hold.
   */
  hold_s?: number;
}

export type LineRejectionReason = "unknown_item" | "insufficient_stock";
export type RejectionReason = LineRejectionReason | "released";

/** A line that stopped the order, and why. */
export interface LineRejection {
  item_id: string;
  reason: LineRejectionReason;
}

/** An applied line and the item's stock right after it (null when replayed: the stock has moved on since). */
export interface AppliedLine extends OrderLine {
  remaining: number | null;
}

export type DeductResult =
  | {
      outcome: "applied";
      order_id: string;
      lines: AppliedLine[];
      /** When the lines were reserved rather than sold: the hold's deadline (ISO 8601). */
      hold_expires_at?: string;
      replayed: boolean;
    }
  | {
      outcome: "rejected";
      order_id: string;
      lines: OrderLine[];
      /** `released` when the order's account was closed; otherwise the first failing line's reason. */
      reason: RejectionReason;
      /** Every failing line, in the order sent (empty for `released`). */
      rejected_lines: LineRejection[];
      replayed: boolean;
    };

export interface ReleaseResult {
  order_id: string;
  /** True when a standing deduction was undone (stock restored) by this or an earlier release. */
  restored: boolean;
  /** Units restored over all lines (0 when nothing stood). */
  quantity: number;
  /** The lines restored, in item order (empty when nothing stood). */
  lines: OrderLine[];
}

/**
 * How a hold ended, or stands: `paid` (sold), `expired` (deadline passed, stock back),
 * `released` (the order was cancelled), `held` (still live: its deadline has not passed), or
 * `not_held` (the order holds nothing: it was sold outright, refused, or never deducted).
 */
export type HoldOutcome = "paid" | "expired" | "released" | "held" | "not_held";

export interface HoldResult {
  order_id: string;
  outcome: HoldOutcome;
  hold_expires_at: string | null;
}

/** One change of an item's stock in the ledger. */
export interface Movement {
  id: number;
  type: string;
  quantity_change: number;
  reserved_change: number;
  order_id: string | null;
  reason: string | null;
  created_at: string;
}

/** A page of an item's ledger, newest first; `next_before` continues to older movements. */
export interface MovementPage {
  item_id: string;
  movements: Movement[];
  next_before: number | null;
}

/** What a `stock.low` event carries: the item as it stood right after the change that made it low. */
export interface StockLowData {
  item_id: string;
  item_name: string;
  quantity: number;
  reserved_quantity: number;
  /** The quantity that can still be ordered (`quantity`: held units have left it). */
  available: number;
  low_stock_threshold: number;
}

/** An event inventory wrote in the transaction of a stock change. */
export interface StockEvent {
  /** `evt_` + 32 hex + `00000000`: never the id of an order event. */
  id: string;
  type: "stock.low";
  created_at: string;
  data: StockLowData;
}

/** A page of stock events in the order they became visible; pass `next_after` as `after` for the next. */
export interface StockEventPage {
  events: StockEvent[];
  /** An opaque cursor: the position after the last event (the `after` given when the page is empty). */
  next_after: string | null;
}

export interface InventoryHealth {
  ok: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

/** Per-call context that crosses the port: the request id for logs, and cancellation. */
export interface CallContext {
  requestId?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface InventoryPort {
  /**
   * Deducts every line of one order in one transaction or none, at most once per `order_id`.
   * `await inventory.deduct({ order_id, lines: [{ item_id: "ps5", quantity: 1 }] })` →
   * `{ outcome: "applied", lines: [{ item_id: "ps5", quantity: 1, remaining: 999 }], … }`;
   * a repeat returns the first outcome, lines included, with `replayed: true`.
   */
  deduct(req: DeductRequest, ctx?: CallContext): Promise<DeductResult>;
  /**
   * Closes an order's account for good: restores a standing deduction and blocks any later one.
   * `await inventory.release("0b6f…")` → `{ restored: true, quantity: 1, lines: [{ item_id: "ps5", quantity: 1 }] }`. Idempotent.
   */
  release(orderId: string, ctx?: CallContext): Promise<ReleaseResult>;
  /**
   * Turns a live hold into a sale, if it was paid before its deadline: `paidAt` is when the
   * customer paid (ISO 8601). Paid too late, the hold expires now instead. Payment and expiry
   * decide on the order's account under one lock, so exactly one of them wins.
   * `await inventory.pay("0b6f…", "2026-01-05T10:00:59Z")` → `{ outcome: "paid", … }`. Idempotent.
   */
  pay(orderId: string, paidAt: string, ctx?: CallContext): Promise<HoldResult>;
  /**
   * Releases a hold whose deadline has passed (stock back, the account closed); a live hold
   * answers `held`, a paid one `paid`. `await inventory.expire("0b6f…")` → `{ outcome: "expired" }`. Idempotent.
   */
  expire(orderId: string, ctx?: CallContext): Promise<HoldResult>;
  /**
   * An item's ledger, newest first. `await inventory.movements("ps5", { limit: 20 })` →
   * `{ item_id: "ps5", movements: [{ type: "deduct", quantity_change: -1, … }], next_before: 981 }`; null for an unknown item.
   */
  movements(itemId: string, page?: { limit?: number; before?: number }, ctx?: CallContext): Promise<MovementPage | null>;
  /** `await inventory.get("ps5")` → the item, or null. */
  get(itemId: string, ctx?: CallContext): Promise<InventoryItem | null>;
  /** `await inventory.list()` → every item, ordered by `item_id`. */
  list(ctx?: CallContext): Promise<InventoryItem[]>;
  /**
   * Inventory's own events (`stock.low`), oldest first, after an opaque cursor (null: from the
   * start). An event is listed once every change committed before it is visible too, so a
   * cursor never skips one. `await inventory.stockEvents(null, 100)` →
   * `{ events: [{ id: "evt_…00000000", type: "stock.low", data: { item_id: "ps5", available: 5, … } }], next_after: "812:4" }`.
   */
  stockEvents(after: string | null, limit: number, ctx?: CallContext): Promise<StockEventPage>;
  /** `await inventory.health()` → `{ ok: true, checks: { database: { ok: true } } }`. */
  health(ctx?: CallContext): Promise<InventoryHealth>;
}

export type UnavailableKind = "timeout" | "transport" | "server_error" | "breaker_open" | "misconfigured";

/** The outcome of a call is unknown: timeout, reset connection, 5xx, open breaker. Retry with the same order id. */
export class InventoryUnavailableError extends Error {
  readonly code: string = "inventory_unavailable";
  constructor(message: string, readonly cause_?: unknown, readonly kind: UnavailableKind = "transport") {
    super(message);
    this.name = "InventoryUnavailableError";
  }
}

/**
 * Inventory refused the caller itself, not the request: a missing or wrong service token
 * (401/403) or no such route at `INVENTORY_URL` (404/405, or another status the contract does
 * not have). Nothing happened at inventory, and nothing will until an operator fixes the
 * configuration, so it is kept apart from an outage: logged as an error saying what to fix,
 * counted, and shown by health checks. It is still an `InventoryUnavailableError` for the order
 * flow, which must keep the order safely queued until the fix lands.
 */
export class InventoryMisconfiguredError extends InventoryUnavailableError {
  override readonly code = "inventory_misconfigured";
  constructor(message: string, readonly status: number) {
    super(message, undefined, "misconfigured");
    this.name = "InventoryMisconfiguredError";
  }
}
