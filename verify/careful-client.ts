import type { Random } from "../platform/clock.ts";
import type { Answer, AnswerKind, Attempt, Lane } from "./types.ts";

/**
 * A careful client, the kind the API is designed for: one Idempotency-Key per logical order,
 * kept across every retry; retries on 409 (still in flight), 429, 5xx and transport failures with
 * capped, jittered exponential backoff; stops at the first definitive answer. Every request is
 * recorded, whatever happened to it.
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
  item_id: string;
  quantity: number;
}

export interface SendResult {
  attempts: Attempt[];
  /** Null when every attempt failed or the run was aborted. */
  answer: Answer | null;
}

const RETRYABLE = (status: number) => status === 0 || status === 409 || status === 429 || status >= 500;

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
export function readAnswer(status: number, body: string): { kind: AnswerKind; order_id: string | null; order_status: string | null } {
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
    return { kind: orderId ? "order" : "client_error", order_id: orderId, order_status: s };
  }
  if (status === 422) {
    const type = typeof parsed?.type === "string" ? parsed.type : "";
    if (type.endsWith("/idempotency-key-reused")) return { kind: "key_reused", order_id: null, order_status: null };
    const s = typeof parsed?.order_status === "string" ? parsed.order_status : null;
    return { kind: orderId ? "order" : "client_error", order_id: orderId, order_status: s };
  }
  return { kind: "client_error", order_id: orderId, order_status: null };
}

function retryAfterMs(res: Response): number | null {
  const h = res.headers.get("retry-after");
  if (!h) return null;
  const s = Number(h);
  return Number.isFinite(s) && s >= 0 ? s * 1000 : null;
}

/**
 * Sends one logical order until it gets a definitive answer or runs out of attempts.
 * `await sendOrder(opts, { key: "run-7", item_id: "ps5", quantity: 1 }, "main", rng)` →
 * `{ answer: { status: 202, order_id: "…", … }, attempts: [{ status: 503, … }, { status: 202, … }] }`.
 */
export async function sendOrder(opts: CarefulClientOptions, req: OrderRequest, lane: Lane, random: Random): Promise<SendResult> {
  const doFetch = opts.fetch ?? fetch;
  const sleep = opts.sleep ?? ((ms: number) => Bun.sleep(ms));
  const attempts: Attempt[] = [];
  const body = JSON.stringify({ item_id: req.item_id, quantity: req.quantity });
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
