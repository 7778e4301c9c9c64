import type { Random } from "../platform/clock.ts";
import type { Answer, AnswerKind, Attempt, CancelAnswer, CancelAnswerKind, CancelLane, Lane, OrderLine, PayAnswer, PayAnswerKind, PayLane } from "./types.ts";

/**
 * A careful client, the kind the API is designed for: one Idempotency-Key per logical order,
 * kept across every retry; retries on 409 (still in flight), 429, 5xx and transport failures with
 * capped, jittered exponential backoff; stops at the first definitive answer. A cancel gets the
 * same care under its own key; for it a 409 is an answer when it says "not cancellable". Every
 * request is recorded, whatever happened to it.
 */

export interface CarefulClientOptions {
  /** Base URL of the orders API, e.g. `http://127.0.0.1:3000`. */
  baseUrl: string;
  /** Per-request deadline; the server's own inventory timeout is 3 s, so this is generous. */
  timeoutMs: number;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  /** ms since the run started: the clock every `at_ms` uses. */
  elapsed: () => number;
  sleep?: (ms: number) => Promise<void>;
  fetch?: typeof fetch;
  /** Stops retrying (the run is being aborted). */
  signal?: AbortSignal;
}

export interface OrderRequest {
  key: string;
  lines: readonly OrderLine[];
  /** `one_item`: the seed's `{item_id, quantity}` body, for a one-line order. */
  form?: "lines" | "one_item";
  /** Reserve for this many seconds instead of selling. */
  hold_s?: number | null;
}

export interface SendResult {
  attempts: Attempt[];
  /** Null when every attempt failed or the run was aborted. */
  answer: Answer | null;
}

export interface CancelRequest {
  order_id: string;
  key: string;
  reason?: string;
}

export interface CancelSendResult {
  attempts: Array<Attempt<CancelLane>>;
  /** Null when every attempt failed or the run was aborted. */
  answer: CancelAnswer | null;
}

const RETRYABLE = (status: number) => status === 0 || status === 409 || status === 429 || status >= 500;

/** The body an order is sent with: `{"lines": [...]}`, or the seed's one-item form for a one-line order. */
export function orderBody(req: Pick<OrderRequest, "lines" | "form" | "hold_s">): string {
  const first = req.lines[0];
  const hold = req.hold_s ? { hold_s: req.hold_s } : {};
  if (req.form === "one_item" && req.lines.length === 1 && first) return JSON.stringify({ item_id: first.item_id, quantity: first.quantity, ...hold });
  return JSON.stringify({ lines: req.lines.map((l) => ({ item_id: l.item_id, quantity: l.quantity })), ...hold });
}

/** Full jitter over a capped exponential: `backoffMs(3, 100, 3000, () => 0.5)` → 400. */
export function backoffMs(retry: number, baseMs: number, capMs: number, random: Random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(retry, 20));
  return Math.max(1, Math.round(random() * ceiling));
}

/** Names a failed fetch the way the report groups them. */
export function transportErrorKind(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string } | null;
  if (e?.name === "TimeoutError" || e?.name === "AbortError") return "timeout";
  const text = `${e?.code ?? ""} ${e?.message ?? ""}`.toLowerCase();
  if (text.includes("reset") || text.includes("socket") || text.includes("closed")) return "reset";
  if (text.includes("refused")) return "refused";
  return "transport";
}

/** Reads what an answer says about the order: its id, its state, and whether it is an order answer at all. */
export function readAnswer(status: number, body: string): { kind: AnswerKind; order_id: string | null; order_status: string | null; hold_expires_at?: string } {
  let parsed: Record<string, unknown> | null = null;
  try {
    const v = JSON.parse(body) as unknown;
    if (v && typeof v === "object" && !Array.isArray(v)) parsed = v as Record<string, unknown>;
  } catch {
    parsed = null;
  }
  const orderId = typeof parsed?.order_id === "string" ? parsed.order_id : null;
  if (status === 201 || status === 202) {
    const s = typeof parsed?.status === "string" ? parsed.status : null;
    const hold = typeof parsed?.hold_expires_at === "string" ? { hold_expires_at: parsed.hold_expires_at } : {};
    return { kind: orderId ? "order" : "client_error", order_id: orderId, order_status: s, ...hold };
  }
  if (status === 422) {
    const type = typeof parsed?.type === "string" ? parsed.type : "";
    if (type.endsWith("/idempotency-key-reused")) return { kind: "key_reused", order_id: null, order_status: null };
    const s = typeof parsed?.order_status === "string" ? parsed.order_status : null;
    return { kind: orderId ? "order" : "client_error", order_id: orderId, order_status: s };
  }
  return { kind: "client_error", order_id: orderId, order_status: null };
}

const problemType = (p: Record<string, unknown> | null) => (typeof p?.type === "string" ? p.type : "");

function parseObject(body: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(body) as unknown;
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * Reads a cancel answer: 200/202 carry the order and its state; a 409 is either "not cancellable"
 * (an answer) or "still in flight" (retry); anything else is outside the contract.
 */
export function readCancelAnswer(status: number, body: string): { kind: CancelAnswerKind; order_status: string | null; retry: boolean } {
  const parsed = parseObject(body);
  if (status === 200 || status === 202) {
    const s = typeof parsed?.status === "string" ? parsed.status : null;
    return { kind: typeof parsed?.order_id === "string" ? "order" : "client_error", order_status: s, retry: false };
  }
  if (status === 409) {
    if (problemType(parsed).endsWith("/order-not-cancellable")) {
      return { kind: "not_cancellable", order_status: typeof parsed?.order_status === "string" ? parsed.order_status : null, retry: false };
    }
    // idempotency-key-in-use: the same key is still being worked on.
    return { kind: "client_error", order_status: null, retry: true };
  }
  if (status === 0 || status === 429 || status >= 500) return { kind: "client_error", order_status: null, retry: true };
  if (status === 422 && problemType(parsed).endsWith("/idempotency-key-reused")) return { kind: "key_reused", order_status: null, retry: false };
  if (status === 404) return { kind: "not_found", order_status: null, retry: false };
  return { kind: "client_error", order_status: null, retry: false };
}

/**
 * Reads a pay answer: 200/202 carry the order (`confirmed`; `reserved` with `paid_at`); a 409 is
 * `hold-expired` or `order-not-payable` (answers) or "still in flight" (retry).
 */
export function readPayAnswer(status: number, body: string): { kind: PayAnswerKind; order_status: string | null; paid_at: string | null; hold_expires_at: string | null; retry: boolean } {
  const parsed = parseObject(body);
  const str = (k: string) => (typeof parsed?.[k] === "string" ? (parsed[k] as string) : null);
  const base = { paid_at: str("paid_at"), hold_expires_at: str("hold_expires_at") };
  if (status === 200 || status === 202) return { kind: str("order_id") ? "order" : "client_error", order_status: str("status"), ...base, retry: false };
  if (status === 409) {
    const type = problemType(parsed);
    if (type.endsWith("/hold-expired")) return { kind: "hold_expired", order_status: str("order_status"), ...base, retry: false };
    if (type.endsWith("/order-not-payable")) return { kind: "not_payable", order_status: str("order_status"), ...base, retry: false };
    return { kind: "client_error", order_status: null, ...base, retry: true };
  }
  if (status === 0 || status === 429 || status >= 500) return { kind: "client_error", order_status: null, ...base, retry: true };
  if (status === 422 && problemType(parsed).endsWith("/idempotency-key-reused")) return { kind: "key_reused", order_status: null, ...base, retry: false };
  if (status === 404) return { kind: "not_found", order_status: null, ...base, retry: false };
  return { kind: "client_error", order_status: null, ...base, retry: false };
}

function retryAfterMs(res: Response): number | null {
  const h = res.headers.get("retry-after");
  if (!h) return null;
  const s = Number(h);
  return Number.isFinite(s) && s >= 0 ? s * 1000 : null;
}

/**
 * Sends one logical order until it gets a definitive answer or runs out of attempts.
 * `await sendOrder(opts, { key: "run-7", lines: [{ item_id: "ps5", quantity: 1 }] }, "main", rng)` →
 * `{ answer: { status: 202, order_id: "…", … }, attempts: [{ status: 503, … }, { status: 202, … }] }`.
 */
export async function sendOrder(opts: CarefulClientOptions, req: OrderRequest, lane: Lane, random: Random): Promise<SendResult> {
  const doFetch = opts.fetch ?? fetch;
  const sleep = opts.sleep ?? ((ms: number) => Bun.sleep(ms));
  const attempts: Attempt[] = [];
  const body = orderBody(req);
  for (let n = 0; n < opts.maxAttempts; n++) {
    if (opts.signal?.aborted) break;
    const at = opts.elapsed();
    const signal = opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)]) : AbortSignal.timeout(opts.timeoutMs);
    let waitHint: number | null = null;
    try {
      const res = await doFetch(`${opts.baseUrl}/api/orders`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "idempotency-key": req.key,
          // One id per request, derived from the key, so server logs and chaos events point back here.
          "x-request-id": `${req.key}.${lane[0]}${n + 1}`,
        },
        body,
        signal,
      });
      const text = await res.text();
      const done = opts.elapsed();
      const read = readAnswer(res.status, text);
      const attempt: Attempt = { lane, at_ms: Math.round(at), duration_ms: Math.round(done - at), status: res.status };
      if (res.headers.get("idempotent-replayed") === "true") attempt.replayed = true;
      if (read.order_id) attempt.order_id = read.order_id;
      waitHint = retryAfterMs(res);
      if (waitHint !== null) attempt.retry_after_s = waitHint / 1000;
      attempts.push(attempt);
      if (!RETRYABLE(res.status)) {
        return { attempts, answer: { lane, status: res.status, ...read, at_ms: Math.round(done) } };
      }
    } catch (err) {
      const done = opts.elapsed();
      attempts.push({ lane, at_ms: Math.round(at), duration_ms: Math.round(done - at), status: 0, error: transportErrorKind(err) });
    }
    if (n + 1 < opts.maxAttempts) {
      const wait = Math.max(waitHint ?? 0, backoffMs(n, opts.backoffBaseMs, opts.backoffCapMs, random));
      await sleep(Math.min(wait, opts.backoffCapMs * 2));
    }
  }
  return { attempts, answer: null };
}

/**
 * Sends one cancel until it gets a definitive answer (200, 202, 409 not cancellable, another 4xx)
 * or runs out of attempts; retries, with the same key, what the order path retries, and a 409
 * only while the key is still in flight.
 * `await sendCancel(opts, { order_id: "0b6f…", key: "run-7-cancel" }, "cancel", rng)` →
 * `{ answer: { status: 202, order_status: "cancelling", … }, attempts: [{ status: 202, … }] }`.
 */
export async function sendCancel(opts: CarefulClientOptions, req: CancelRequest, lane: CancelLane, random: Random): Promise<CancelSendResult> {
  const tag = lane === "cancel" ? "c" : lane === "cancel_replay" ? "r" : lane === "cancel_second" ? "s" : "x";
  return sendOnOrder(opts, lane, random, {
    path: `/api/orders/${encodeURIComponent(req.order_id)}/cancel`,
    headers: (n) => ({ "content-type": "application/json", "idempotency-key": req.key, "x-request-id": `${req.key}.${tag}${n + 1}` }),
    body: JSON.stringify(req.reason ? { reason: req.reason } : {}),
    answer: (status, text, replayed, atMs) => {
      const read = readCancelAnswer(status, text);
      return read.retry ? null : { lane, key: req.key, status, kind: read.kind, order_status: read.order_status, replayed, at_ms: atMs };
    },
  });
}

/**
 * One action on an order (a cancel, a payment) sent until it gets a definitive answer or runs out
 * of attempts: each attempt recorded, retried with the same key on a transport error or whatever
 * `answer` declines (null), waiting the backoff or the server's Retry-After, whichever is longer.
 */
async function sendOnOrder<L extends string, A>(
  opts: CarefulClientOptions,
  lane: L,
  random: Random,
  req: { path: string; headers: (n: number) => Record<string, string>; body?: string; answer: (status: number, text: string, replayed: boolean, atMs: number) => A | null },
): Promise<{ attempts: Array<Attempt<L>>; answer: A | null }> {
  const doFetch = opts.fetch ?? fetch;
  const sleep = opts.sleep ?? ((ms: number) => Bun.sleep(ms));
  const attempts: Array<Attempt<L>> = [];
  for (let n = 0; n < opts.maxAttempts; n++) {
    if (opts.signal?.aborted) break;
    const at = opts.elapsed();
    const signal = opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)]) : AbortSignal.timeout(opts.timeoutMs);
    let waitHint: number | null = null;
    try {
      const res = await doFetch(`${opts.baseUrl}${req.path}`, {
        method: "POST",
        headers: req.headers(n),
        ...(req.body !== undefined ? { body: req.body } : {}),
        signal,
      });
      const text = await res.text();
      const done = opts.elapsed();
      const replayed = res.headers.get("idempotent-replayed") === "true";
      const attempt: Attempt<L> = { lane, at_ms: Math.round(at), duration_ms: Math.round(done - at), status: res.status };
      if (replayed) attempt.replayed = true;
      attempts.push(attempt);
      const answer = req.answer(res.status, text, replayed, Math.round(done));
      if (answer !== null) return { attempts, answer };
      waitHint = retryAfterMs(res);
    } catch (err) {
      const done = opts.elapsed();
      attempts.push({ lane, at_ms: Math.round(at), duration_ms: Math.round(done - at), status: 0, error: transportErrorKind(err) });
    }
    if (n + 1 < opts.maxAttempts) {
      const wait = Math.max(waitHint ?? 0, backoffMs(n, opts.backoffBaseMs, opts.backoffCapMs, random));
      await sleep(Math.min(wait, opts.backoffCapMs * 2));
    }
  }
  return { attempts, answer: null };
}

export interface PaySendResult {
  attempts: Array<Attempt<PayLane>>;
  /** Null when every attempt failed or the run was aborted. */
  answer: PayAnswer | null;
}

/**
 * Pays for a reserved order until a definitive answer (200, 202, 409 hold-expired or not payable,
 * another 4xx) or out of attempts: the same care as a cancel, under the pay's own key.
 * `await sendPay(opts, { order_id: "0b6f…", key: "run-7-pay" }, "pay", rng)` →
 * `{ answer: { status: 200, order_status: "confirmed", paid_at: "…", … }, attempts: [{ status: 200, … }] }`.
 */
export async function sendPay(opts: CarefulClientOptions, req: { order_id: string; key: string }, lane: PayLane, random: Random): Promise<PaySendResult> {
  const tag = lane === "pay" ? "p" : lane === "pay_replay" ? "r" : "s";
  return sendOnOrder(opts, lane, random, {
    path: `/api/orders/${encodeURIComponent(req.order_id)}/pay`,
    headers: (n) => ({ "idempotency-key": req.key, "x-request-id": `${req.key}.${tag}${n + 1}` }),
    answer: (status, text, replayed, atMs): PayAnswer | null => {
      const read = readPayAnswer(status, text);
      if (read.retry) return null;
      const { retry: _retry, ...rest } = read;
      return { lane, key: req.key, status, ...rest, replayed, at_ms: atMs };
    },
  });
}
