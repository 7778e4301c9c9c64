import { createHash } from "node:crypto";
import { AppError } from "../../../platform/errors.ts";
import { problemFor } from "../../../platform/problems.ts";
import { ORDER_LIMITS, type OrderView } from "./order.model.ts";
import type { OrderRow } from "./order.repository.ts";
import type { OrderStatus } from "./order.tables.ts";

/**
 * What an order request is answered with, and what makes two requests "the same": the status
 * code and stored body for each state, the request fingerprint, and the `Idempotency-Key` rules.
 * The service and the retry worker both write answers, so both read them from here.
 */

export class IdempotencyKeyReusedError extends AppError {
  readonly code = "idempotency_key_reused";
}
export class IdempotencyKeyInUseError extends AppError {
  readonly code = "idempotency_key_in_use";
}
export class MissingIdempotencyKeyError extends AppError {
  readonly code = "missing_idempotency_key";
}
export class InvalidIdempotencyKeyError extends AppError {
  readonly code = "invalid_idempotency_key";
}

/** A finished HTTP answer for an order request: what is sent now and replayed later, byte for byte. */
export interface OrderResponse {
  status: number;
  body: string;
  replayed: boolean;
  orderId: string | null;
}

const KEY_MAX = ORDER_LIMITS.idempotencyKeyMax;
/** Printable ASCII, no space at either end, at most `KEY_MAX` characters; the API description shows the same pattern. */
export const IDEMPOTENCY_KEY_PATTERN = `^[\\x21-\\x7e](?:[\\x20-\\x7e]{0,${KEY_MAX - 2}}[\\x21-\\x7e])?$`;
const KEY_PATTERN = new RegExp(IDEMPOTENCY_KEY_PATTERN);

/**
 * Parses an `Idempotency-Key` header. The IETF draft makes it a structured-field string
 * (`"abc"`); a bare token is accepted too, as most clients send one.
 */
export function parseIdempotencyKey(header: string | null | undefined): string {
  if (header === null || header === undefined || header.trim() === "") {
    throw new MissingIdempotencyKeyError(`Send an Idempotency-Key header: 1–${KEY_MAX} printable ASCII characters, unique per logical order.`);
  }
  let key = header.trim();
  if (key.length >= 2 && key.startsWith('"') && key.endsWith('"')) key = key.slice(1, -1);
  if (!KEY_PATTERN.test(key)) {
    throw new InvalidIdempotencyKeyError(`The Idempotency-Key must be 1–${KEY_MAX} printable ASCII characters.`);
  }
  return key;
}

export function fingerprint(itemId: string, quantity: number): string {
  return createHash("sha256").update(`POST /api/orders\n${JSON.stringify({ item_id: itemId, quantity })}`).digest("base64url");
}

/** What a person is told about an order in this state: the `message` beside the machine's `reason`. */
export function messageFor(order: { status: OrderStatus; reason: string | null; item_id: string }): string {
  switch (order.status) {
    case "pending":
      return "Order received; waiting for inventory.";
    case "confirmed":
      return "Order confirmed.";
    case "queued":
      return "Inventory is slow to answer; the order is queued and will be finished shortly.";
    case "rejected":
      if (order.reason === "insufficient_stock") return `Not enough stock for ${order.item_id}.`;
      if (order.reason === "unknown_item") return `There is no item ${order.item_id}.`;
      return "The order was refused: it was cancelled and can no longer take stock.";
    case "failed":
      return "The order could not be finished: inventory did not answer in time, and no stock was taken.";
  }
}

/** The view with its `message` written for its current state (views are often copied with a new state). */
export function withMessage(view: OrderView): OrderView {
  return { ...view, message: messageFor(view) };
}

export function toView(r: OrderRow): OrderView {
  return withMessage({
    order_id: r.order_id,
    item_id: r.item_id,
    quantity: r.quantity,
    status: r.status,
    reason: r.reason,
    message: "",
    attempts: r.attempts,
    created_at: new Date(r.created_at).toISOString(),
    updated_at: new Date(r.updated_at).toISOString(),
  });
}

export function statusCodeFor(status: OrderStatus): number {
  return status === "confirmed" ? 201 : status === "rejected" || status === "failed" ? 422 : 202;
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
