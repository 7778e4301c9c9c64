import { mixSeed, mulberry32 } from "../platform/prng.ts";
import { sendOrder, type CarefulClientOptions } from "./careful-client.ts";
import { runCancel } from "./load-driver.ts";
import type { SystemApi } from "./system-api.ts";
import { FINAL_STATUSES, orderIdOf, type OrderRecord } from "./types.ts";

/**
 * After healing: a careful client that never got an answer asks again with the same key (the
 * system either replays what it decided or takes the order now), and so does a cancel; the runner
 * polls every order until it is final or the bound passes; then the cancels planned for after the
 * heal go out, and their orders are polled again.
 */

/** Resends every unanswered order with its own key. Returns how many needed it. */
export async function reconcile(records: OrderRecord[], client: CarefulClientOptions, seed: number, concurrency: number): Promise<number> {
  const todo = records.filter((r) => r.answers.length === 0);
  let i = 0;
  const worker = async () => {
    while (i < todo.length) {
      const r = todo[i++]!;
      r.reconciled = true;
      const res = await sendOrder(client, { key: r.key, lines: r.lines, form: r.form }, "reconcile", mulberry32(mixSeed(seed, 1_000_000 + r.index)));
      r.attempts.push(...res.attempts);
      if (res.answer) {
        r.answers.push(res.answer);
        r.answered_ms ??= res.answer.at_ms;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, todo.length)) }, worker));
  return todo.length;
}

/**
 * After healing, the cancels still owed. `resend`: every cancel sent during the load that never
 * got an answer goes again with its key (with whatever repeats it still owes), and a cancel whose
 * order had no id until the post-heal resend goes now. `after_heal`: the cancels planned for once
 * the orders have settled — mostly of confirmed orders (200), some of refused ones (409).
 * Returns how many went out.
 */
export async function cancelAfterHeal(records: OrderRecord[], client: CarefulClientOptions, seed: number, concurrency: number, which: "resend" | "after_heal"): Promise<number> {
  const todo: Array<[OrderRecord, "cancel" | "cancel_reconcile"]> = [];
  for (const r of records) {
    const c = r.cancel;
    if (!c || orderIdOf(r) === null) continue;
    if (which === "after_heal") {
      if (c.moment === "after_heal" && c.sent_ms === null) todo.push([r, "cancel"]);
    } else if (c.sent_ms === null) {
      if (c.moment !== "after_heal") todo.push([r, "cancel"]);
    } else if (!c.answers.some((a) => a.key === c.key && a.lane !== "cancel_replay")) {
      todo.push([r, "cancel_reconcile"]);
    }
  }
  let i = 0;
  const worker = async () => {
    while (i < todo.length) {
      const [r, lane] = todo[i++]!;
      await runCancel(r, client, seed, lane);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, todo.length)) }, worker));
  return todo.length;
}

export interface AwaitFinalOptions {
  /** Give up on orders still unfinished this long after `healedAt`. */
  boundMs: number;
  concurrency: number;
  pollMs: number;
  /** ms since the run started, same clock as the records. */
  elapsed: () => number;
  healedAt: number;
  onRound?: (left: number, elapsedSinceHealMs: number) => void;
  signal?: AbortSignal;
}

/**
 * Reads every order that has an id once, then keeps reading the unfinished ones until all are
 * final or the bound passes. Leaves each record's `final` set; returns how many are still open.
 */
export async function awaitFinal(records: OrderRecord[], api: SystemApi, o: AwaitFinalOptions): Promise<number> {
  let pending = records.filter((r) => orderIdOf(r) !== null);
  const deadline = o.healedAt + o.boundMs;
  for (;;) {
    let i = 0;
    const batch = pending;
    const worker = async () => {
      while (i < batch.length) {
        const r = batch[i++]!;
        const id = orderIdOf(r)!;
        let seen;
        try {
          seen = await api.order(id);
        } catch {
          seen = { status: "unreadable" as const, reason: null, server_attempts: 0, created_at: null, updated_at: null, history: [] };
        }
        const isFinal = FINAL_STATUSES.has(seen.status);
        const prior = r.final?.final_seen_ms ?? null;
        r.final = { ...seen, final_seen_ms: isFinal ? (prior ?? Math.max(0, Math.round(o.elapsed() - o.healedAt))) : null };
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, batch.length)) }, worker));
    pending = pending.filter((r) => !FINAL_STATUSES.has(r.final?.status ?? ""));
    // A missing order will not appear by waiting; keep polling only what can still move.
    const movable = pending.filter((r) => r.final?.status !== "missing");
    o.onRound?.(movable.length, o.elapsed() - o.healedAt);
    if (movable.length === 0 || o.elapsed() >= deadline || o.signal?.aborted) {
      return records.filter((r) => orderIdOf(r) !== null && !FINAL_STATUSES.has(r.final?.status ?? "")).length;
    }
    await Bun.sleep(Math.min(o.pollMs, Math.max(0, deadline - o.elapsed())));
    pending = movable;
  }
}
