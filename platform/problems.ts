import { AppError } from "./errors.ts";
import { databaseError } from "./db-errors.ts";

/**
 * RFC 9457 problem details, in one place. Every error a client sees is
 * `application/problem+json` with a stable `type`; no stack trace ever leaves the process.
 * The catalog lives on the floor so that domain code can name a code (and the type checker can
 * refuse a misspelt one) without reaching up into the HTTP layer, which only turns a problem
 * into a `Response` (`src/http/problem.ts`).
 */
export const PROBLEM_BASE = "https://valerix.dev/problems/";

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
}

/** Error code → HTTP status and a short, stable title. */
const CATALOG = {
  invalid_request: { status: 400, title: "The request is not valid" },
  malformed_json: { status: 400, title: "The request body is not valid JSON" },
  json_too_deep: { status: 400, title: "The JSON body is nested too deeply" },
  invalid_characters: { status: 400, title: "The body contains characters that cannot be stored" },
  invalid_chaos_config: { status: 400, title: "Invalid chaos experiment" },
  invalid_query: { status: 400, title: "Invalid query" },
  duplicate_line_item: { status: 400, title: "An order names the same item on two lines" },
  missing_idempotency_key: { status: 400, title: "An Idempotency-Key header is required" },
  invalid_idempotency_key: { status: 400, title: "The Idempotency-Key header is malformed" },
  unauthorized: { status: 401, title: "Authentication is required" },
  forbidden: { status: 403, title: "This action is not allowed" },
  cross_site_request: { status: 403, title: "Cross-site requests may not change anything" },
  cors_not_allowed: { status: 403, title: "This cross-origin request is not allowed" },
  inventory_writes_closed: { status: 403, title: "Inventory writes are closed: no INVENTORY_TOKEN or ADMIN_TOKEN is configured" },
  admin_closed: { status: 403, title: "The admin API is closed: no ADMIN_TOKEN is configured" },
  not_found: { status: 404, title: "Not found" },
  method_not_allowed: { status: 405, title: "Method not allowed" },
  conflict: { status: 409, title: "Conflict" },
  item_exists: { status: 409, title: "An item with this id already exists" },
  idempotency_key_in_use: { status: 409, title: "A request with this Idempotency-Key is still being processed" },
  order_not_cancellable: { status: 409, title: "This order cannot be cancelled" },
  stock_below_zero: { status: 409, title: "The change would take stock below zero" },
  payload_too_large: { status: 413, title: "The request body is too large" },
  unsupported_media_type: { status: 415, title: "Unsupported media type" },
  idempotency_key_reused: { status: 422, title: "This Idempotency-Key was used with a different request" },
  unknown_item: { status: 422, title: "The item does not exist" },
  insufficient_stock: { status: 422, title: "Not enough stock for this order" },
  order_released: { status: 422, title: "This order was cancelled and can no longer deduct stock" },
  stock_limit: { status: 422, title: "The stock level would exceed its limit" },
  rate_limited: { status: 429, title: "Too many requests" },
  internal_error: { status: 500, title: "Internal server error" },
  inventory_unavailable: { status: 503, title: "Inventory is unavailable" },
  database_unavailable: { status: 503, title: "The database is unavailable" },
  shutting_down: { status: 503, title: "The server is shutting down" },
} as const satisfies Record<string, { status: number; title: string }>;

/** Every code a problem may carry: `problemFor("insufficent_stock")` does not type-check. */
export type ProblemCode = keyof typeof CATALOG;

/** True when `code` names a problem in the catalog (for codes that arrive untyped, e.g. on a foreign error). */
export function isProblemCode(code: string): code is ProblemCode {
  return Object.hasOwn(CATALOG, code);
}

export function problemFor(code: ProblemCode, detail?: string, extensions: Record<string, unknown> = {}): Problem {
  // Codes are typed, but a value can still arrive from outside the type system: it stays a 500.
  const type: ProblemCode = isProblemCode(code) ? code : "internal_error";
  const entry = CATALOG[type];
  return {
    type: PROBLEM_BASE + type.replaceAll("_", "-"),
    title: entry.title,
    status: entry.status,
    ...(detail ? { detail } : {}),
    ...extensions,
  };
}

/** The status an error code maps to; used by tests and the UI to stay in step with this table. */
export function statusOf(code: string): number {
  return CATALOG[isProblemCode(code) ? code : "internal_error"].status;
}

export function errorToProblem(err: unknown): Problem {
  // A driver's connection failure that reached here unwrapped is still an outage, not a bug.
  err = databaseError(err);
  if (err instanceof AppError) return problemFor(err.code, err.message, err.extensions);
  return problemFor("internal_error", "An unexpected error occurred; it has been logged.");
}
