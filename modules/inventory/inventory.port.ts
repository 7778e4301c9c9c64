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
  | { outcome: "applied"; order_id: string; lines: AppliedLine[]; replayed: boolean }
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
  /** `await inventory.get("ps5")` → the item, or null. */
  get(itemId: string, ctx?: CallContext): Promise<InventoryItem | null>;
  /** `await inventory.list()` → every item, ordered by `item_id`. */
  list(ctx?: CallContext): Promise<InventoryItem[]>;
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
