import { createHash } from "node:crypto";
import { AppError } from "../../../platform/errors.ts";
import { problemFor } from "../../../platform/problems.ts";
import type { OrderView } from "./order.model.ts";
import type { OrderRow } from "./order.repository.ts";
import type { OrderLine } from "../../inventory/index.ts";
import type { OrderStatus } from "./order.tables.ts";

/**
 * What an order request is answered with, and what makes two requests "the same": the status
 * code and stored body for each state, the request fingerprint, and the `Idempotency-Key` rules.
 * The service and the retry worker both write answers, so both read them from here.
 */

export class OrderNotCancellableError extends AppError {
  readonly code = "order_not_cancellable";
}

// The header's rules are the platform's, shared with inventory's admin writes.
export {
  IDEMPOTENCY_KEY_PATTERN,
  IdempotencyKeyInUseError,
  IdempotencyKeyReusedError,
  InvalidIdempotencyKeyError,
  MissingIdempotencyKeyError,
  parseIdempotencyKey,
} from "../../../platform/idempotency-key.ts";

/** A finished HTTP answer for an order request: what is sent now and replayed later, byte for byte. */
export interface OrderResponse {
  status: number;
  body: string;
  replayed: boolean;
  orderId: string | null;
}

/**
 * What makes two order requests the same. A one-line order hashes as the seed's one-item body
 * did, so keys stored before orders had lines still match their retries.
 */
export function fingerprint(lines: readonly OrderLine[]): string {
  const body = lines.length === 1 ? { item_id: lines[0]!.item_id, quantity: lines[0]!.quantity } : { lines: lines.map((l) => ({ item_id: l.item_id, quantity: l.quantity })) };
  return createHash("sha256").update(`POST /api/orders\n${JSON.stringify(body)}`).digest("base64url");
}

/** What makes two cancel requests for one order the same: the order and the reason. */
export function cancelFingerprint(orderId: string, reason: string | null): string {
  return createHash("sha256").update(`POST /api/orders/${orderId}/cancel\n${JSON.stringify({ reason })}`).digest("base64url");
}

const names = (ids: readonly string[]) => (ids.length <= 1 ? (ids[0] ?? "") : `${ids.slice(0, -1).join(", ")} and ${ids[ids.length - 1]}`);

/** What a person is told about an order in this state: the `message` beside the machine's `reason`. */
export function messageFor(order: Pick<OrderView, "status" | "reason" | "lines" | "rejected_lines">): string {
  switch (order.status) {
    case "pending":
      return "Order received; waiting for inventory.";
    case "confirmed":
      return "Order confirmed.";
    case "queued":
      return "Inventory is slow to answer; the order is queued and will be finished shortly.";
    case "rejected": {
      const failing = order.rejected_lines?.length ? order.rejected_lines : order.lines.map((l) => ({ item_id: l.item_id, reason: order.reason ?? "" }));
      const short = failing.filter((l) => l.reason === "insufficient_stock").map((l) => l.item_id);
      const unknown = failing.filter((l) => l.reason === "unknown_item").map((l) => l.item_id);
      const parts = [short.length ? `Not enough stock for ${names(short)}.` : "", unknown.length ? `There is no item ${names(unknown)}.` : ""].filter(Boolean);
      if (parts.length) return `${parts.join(" ")}${order.lines.length > 1 ? " Nothing was taken." : ""}`;
      return "The order was refused: it was cancelled and can no longer take stock.";
    }
    case "failed":
      return "The order could not be finished: inventory did not answer in time, and no stock was taken.";
    case "cancelling":
      return "Cancelling: the stock is being given back.";
    case "cancelled":
      return "Order cancelled; its stock was given back.";
  }
}

/** The view with its `message` written for its current state (views are often copied with a new state). */
export function withMessage(view: OrderView): OrderView {
  return { ...view, message: messageFor(view) };
}

/** An order's lines: as stored, or, for rows from before orders had lines, its one item. */
export function linesOf(r: Pick<OrderRow, "lines" | "item_id" | "quantity">): OrderLine[] {
  if (r.lines) return r.lines;
  return [{ item_id: r.item_id ?? "", quantity: r.quantity ?? 0 }];
}

/** The view's line fields: `lines`, and for a one-line order also `item_id` and `quantity`. */
export function lineFields(lines: readonly OrderLine[]): Pick<OrderView, "lines" | "item_id" | "quantity"> {
  const copy = lines.map((l) => ({ item_id: l.item_id, quantity: l.quantity }));
  return copy.length === 1 ? { lines: copy, item_id: copy[0]!.item_id, quantity: copy[0]!.quantity } : { lines: copy };
}

export function toView(r: OrderRow): OrderView {
  return withMessage({
    order_id: r.order_id,
    ...lineFields(linesOf(r)),
    status: r.status,
    reason: r.reason,
    ...(r.rejected_lines?.length ? { rejected_lines: r.rejected_lines } : {}),
    message: "",
    attempts: r.attempts,
    created_at: new Date(r.created_at).toISOString(),
    updated_at: new Date(r.updated_at).toISOString(),
  });
}

export function statusCodeFor(status: OrderStatus): number {
  switch (status) {
    case "confirmed":
      return 201;
    case "cancelled":
      return 200;
    case "rejected":
    case "failed":
      return 422;
    default:
      return 202;
  }
}

/** The body for an order in a given state: the order itself, or a problem carrying it for refusals. */
export function responseBodyFor(current: OrderView): string {
  const view = withMessage(current);
  if (view.status === "rejected" || view.status === "failed") {
    const code = view.reason === "insufficient_stock" || view.reason === "unknown_item" ? view.reason : "order_released";
    // RFC 9457 reserves `status` for the HTTP status, so the order's own state travels as `order_status`.
    const { status, ...order } = view;
    return JSON.stringify(problemFor(code, `Order ${view.order_id} was ${status}: ${view.reason ?? "no reason"}`, { ...order, order_status: status }));
  }
  return JSON.stringify(view);
}
