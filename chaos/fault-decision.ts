import type { Random } from "../platform/clock.ts";
import type { ChaosConfig } from "./chaos.config.ts";

export type CrashKind = 500 | 503 | "reset";

/** What to do to one request. `latencyMs` applies first; at most one of hang, crash, partial follows. */
export interface FaultDecision {
  latencyMs: number;
  /** Fail before the handler runs: a 500/503 answer or a reset connection. */
  crash?: CrashKind;
  /** Let the handler commit, then lose its answer this way. */
  partial?: CrashKind;
  /** Never answer: wait until the caller gives up, at most `hangMs`. */
  hang?: boolean;
  hangMs?: number;
}

const crashOf = (config: ChaosConfig, u: number): CrashKind => {
  if (config.crash_mode !== "mix") return config.crash_mode;
  return u < 1 / 3 ? 500 : u < 2 / 3 ? 503 : "reset";
};

/**
 * Turns four numbers from `next` into a decision, or null for "leave this request alone".
 * Always four draws — latency yes/no, latency amount, which exclusive fault, crash kind for `mix` —
 * so one request's outcome never shifts the stream for the next.
 * With `asWeights` (every_nth: the request is already chosen) the exclusive rates only say which
 * fault it gets. `drawDecision(config, mulberry32(42), false)` → `{ latencyMs: 310, crash: 503 }`.
 */
export function drawDecision(config: ChaosConfig, next: Random, asWeights: boolean): FaultDecision | null {
  const uLatency = next();
  const uAmount = next();
  const uFault = next();
  const uKind = next();
  const latencyMs =
    config.latency_rate > 0 && uLatency < config.latency_rate
      ? config.latency_min_ms + Math.floor(uAmount * (config.latency_max_ms - config.latency_min_ms + 1))
      : 0;
  let h = config.hang_rate;
  let c = config.crash_rate;
  let p = config.partial_failure_rate;
  if (asWeights) {
    const total = h + c + p;
    if (total > 0) [h, c, p] = [h / total, c / total, p / total];
  }
  const d: FaultDecision = { latencyMs };
  if (uFault < h) {
    d.hang = true;
    d.hangMs = config.hang_ms;
  } else if (uFault < h + c) d.crash = crashOf(config, uKind);
  else if (uFault < h + c + p) d.partial = crashOf(config, uKind);
  return d.latencyMs > 0 || d.hang || d.crash !== undefined || d.partial !== undefined ? d : null;
}
