// Shared by load.js and chaos.js: a careful client for the Valerix order API, the same rules the
// runner's client follows (verify/careful-client.ts): one Idempotency-Key per logical order,
// kept across retries; retry on 409, 429, 5xx and transport errors with capped, jittered backoff;
// stop at the first definitive answer (201, 202, 422). Cancels get the same care with their own
// key; a 409 ends them only when it says the order is not cancellable (rejected or failed).
import http from "k6/http";
import { sleep } from "k6";
import { Counter, Rate, Trend } from "k6/metrics";

export const answered = new Rate("order_answered");
export const unexpected = new Counter("order_unexpected_answers");
export const requestsPerOrder = new Trend("order_requests");
export const orderDuration = new Trend("order_duration", true);
export const byFirstAnswer = {
  201: new Counter("order_answer_201"),
  202: new Counter("order_answer_202"),
  422: new Counter("order_answer_422"),
};

export const cancelUnexpected = new Counter("cancel_unexpected_answers");
export const cancelByAnswer = {
  200: new Counter("cancel_answer_200"),
  202: new Counter("cancel_answer_202"),
  409: new Counter("cancel_answer_409"),
};

export function env(name, fallback) {
  const v = __ENV[name];
  return v === undefined || v === "" ? fallback : v;
}

export function baseUrl(name, fallback) {
  return env(name, fallback).replace(/\/+$/, "");
}

export function adminHeaders(token) {
  const h = { "content-type": "application/json", accept: "application/json" };
  if (token) h.authorization = "Bearer " + token;
  return h;
}

function retryable(status) {
  return status === 0 || status === 409 || status === 429 || status >= 500;
}

function backoffSeconds(retry) {
  const capMs = 2000;
  const ceiling = Math.min(capMs, 100 * Math.pow(2, Math.min(retry, 20)));
  return Math.max(1, Math.round(Math.random() * ceiling)) / 1000;
}

function parse(res) {
  try {
    return res.json();
  } catch (e) {
    return null;
  }
}

/**
 * The lines of order `n`: 1 to `maxLines` distinct, neighbouring items of `items`, listed forwards
 * for even `n` and backwards for odd, so overlapping orders name the same items in both orders;
 * the same `n` always gives the same lines.
 * `linesFor(["a", "b", "c"], 1, 3)` → `[{ item_id: "c", quantity: 2 }, { item_id: "b", quantity: 3 }]`.
 */
export function linesFor(items, n, maxLines) {
  const count = 1 + ((n * 7) % Math.min(maxLines, items.length));
  const start = (n * 5) % items.length;
  const lines = [];
  for (let i = 0; i < count; i++) {
    const at = (start + (n % 2 === 0 ? i : items.length - i)) % items.length;
    lines.push({ item_id: items[at], quantity: 1 + ((n + i) % 3) });
  }
  return lines;
}

/**
 * Places one logical order of `lines`. Returns { status, order_id, order_status, requests } for a
 * definitive answer, or { status: null, requests } when every attempt failed. `record: false`
 * keeps the order metrics out of it (teardown's catch-up resends are not load). `oneItem` sends a
 * one-line order in the seed's `{item_id, quantity}` body.
 */
export function placeOrder(ordersUrl, key, lines, maxAttempts, record, oneItem) {
  const metrics = record !== false;
  const body = JSON.stringify(oneItem && lines.length === 1 ? { item_id: lines[0].item_id, quantity: lines[0].quantity } : { lines: lines });
  const started = Date.now();
  for (let n = 0; n < maxAttempts; n++) {
    const res = http.post(ordersUrl + "/api/orders", body, {
      headers: { "content-type": "application/json", "idempotency-key": key, "x-request-id": key + ".k" + (n + 1) },
      tags: { name: "POST /api/orders" },
      timeout: "15s",
    });
    if (!retryable(res.status)) {
      const b = parse(res) || {};
      const isOrder = typeof b.order_id === "string";
      if (metrics) {
        orderDuration.add(Date.now() - started);
        requestsPerOrder.add(n + 1);
        answered.add(true);
        if (byFirstAnswer[res.status] && isOrder) byFirstAnswer[res.status].add(1);
      }
      if (!isOrder) unexpected.add(1, { status: String(res.status) });
      return {
        status: res.status,
        order_id: isOrder ? b.order_id : null,
        order_status: typeof b.status === "string" ? b.status : typeof b.order_status === "string" ? b.order_status : null,
        requests: n + 1,
      };
    }
    const after = Number(res.headers["Retry-After"]);
    sleep(Math.max(Number.isFinite(after) ? after : 0, backoffSeconds(n)));
  }
  if (metrics) {
    answered.add(false);
    requestsPerOrder.add(maxAttempts);
  }
  return { status: null, order_id: null, order_status: null, requests: maxAttempts };
}

/**
 * Cancels an order under its own key. Returns { status, order_status, requests }: 200 `cancelled`,
 * 202 `cancelling` (finished from the retry queue), 409 not cancellable (rejected or failed), or
 * { status: null } when every attempt failed. `record: false` keeps the metrics out of it.
 */
export function cancelOrder(ordersUrl, orderId, key, maxAttempts, record) {
  const metrics = record !== false;
  for (let n = 0; n < maxAttempts; n++) {
    const res = http.post(ordersUrl + "/api/orders/" + orderId + "/cancel", JSON.stringify({ reason: "k6 cancel" }), {
      headers: { "content-type": "application/json", "idempotency-key": key, "x-request-id": key + ".c" + (n + 1) },
      tags: { name: "POST /api/orders/:id/cancel" },
      timeout: "15s",
    });
    const b = parse(res) || {};
    const notCancellable = res.status === 409 && typeof b.type === "string" && b.type.endsWith("/order-not-cancellable");
    if (notCancellable || !retryable(res.status)) {
      const orderStatus = typeof b.order_status === "string" ? b.order_status : typeof b.status === "string" ? b.status : null;
      const consistent =
        (res.status === 200 && orderStatus === "cancelled") ||
        (res.status === 202 && orderStatus === "cancelling") ||
        (notCancellable && (orderStatus === "rejected" || orderStatus === "failed"));
      if (metrics && consistent) cancelByAnswer[res.status].add(1);
      if (!consistent) cancelUnexpected.add(1, { status: String(res.status) });
      return { status: res.status, order_status: orderStatus, requests: n + 1 };
    }
    const after = Number(res.headers["Retry-After"]);
    sleep(Math.max(Number.isFinite(after) ? after : 0, backoffSeconds(n)));
  }
  return { status: null, order_status: null, requests: maxAttempts };
}

/** The order as the server holds it, or null when it cannot be read. */
export function readOrder(ordersUrl, orderId) {
  const res = http.get(ordersUrl + "/api/orders/" + orderId, { tags: { name: "GET /api/orders/:id" }, timeout: "10s" });
  if (res.status === 404) return { status: "missing" };
  if (res.status !== 200) return null;
  return parse(res);
}

export const FINAL = { confirmed: true, rejected: true, failed: true, cancelled: true };
