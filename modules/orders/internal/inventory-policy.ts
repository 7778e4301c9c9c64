import {
  CircuitState,
  EventEmitter,
  circuitBreaker,
  handleWhen,
  isBrokenCircuitError,
  isTaskCancelledError,
  wrap,
  type Event,
} from "cockatiel";
import { InventoryUnavailableError } from "../../inventory/index.ts";
import { systemClock, type Clock } from "../../../platform/clock.ts";
import { ClockTimeoutPolicy } from "../../../platform/resilience/clock-timeout.ts";
import { RollingWindowBreaker } from "../../../platform/resilience/rolling-window-breaker.ts";

export type BreakerState = "closed" | "open" | "half-open";
export type UnavailableKind = InventoryUnavailableError["kind"];

export interface BreakerStateChange {
  from: BreakerState;
  to: BreakerState;
}

export interface PolicySuccessEvent {
  /** Time the call took, on the policy's clock. */
  durationMs: number;
}

export interface PolicyFailureEvent {
  kind: UnavailableKind;
  error: InventoryUnavailableError;
  /** Time the call took, on the policy's clock; 0 for calls the open breaker refused. */
  durationMs: number;
}

export interface InventoryPolicyOptions {
  /** Per-call deadline. Default 3000. */
  timeoutMs?: number;
  /** Failure ratio over the window that opens the breaker; reaching it is enough. Default 0.5. */
  failureThreshold?: number;
  /** Rolling window the ratio is taken over. Default 10 000. */
  windowMs?: number;
  /** Calls the window must hold before the ratio can open the breaker. Default 10. */
  minimumCalls?: number;
  /** How long the breaker stays open before one probe may pass. Default 10 000. */
  halfOpenAfterMs?: number;
  clock?: Clock;
}

export interface InventoryPolicy {
  /**
   * Runs one call to inventory under the timeout and the circuit breaker.
   * `await policy.execute((signal) => inventory.deduct(req, { signal }))` → the port's answer
   * (a `rejected` outcome is an answer, not a failure); on timeout, transport failure, 5xx or an
   * open breaker it rejects with `InventoryUnavailableError` of that `kind`. Any other error passes
   * through untouched and does not count against the breaker.
   */
  execute<T>(fn: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T>;
  /**
   * The breaker's state. Like cockatiel, "open" turns into "half-open" when the next call arrives
   * after the cool-down, not on a timer; `isOpen()` tells whether that call would be let through.
   */
  readonly state: BreakerState;
  /** True when a call made now would fail fast with `breaker_open`. `if (policy.isOpen()) queue(order)`. */
  isOpen(): boolean;
  /** `policy.onStateChange(({ from, to }) => gauge.set(…))`; returns `{ dispose() }`. */
  readonly onStateChange: Event<BreakerStateChange>;
  /** A call returned an answer. */
  readonly onSuccess: Event<PolicySuccessEvent>;
  /** A call surfaced `InventoryUnavailableError`, including calls the open breaker refused. */
  readonly onFailure: Event<PolicyFailureEvent>;
}

const toBreakerState = (s: CircuitState): BreakerState =>
  s === CircuitState.Closed ? "closed" : s === CircuitState.HalfOpen ? "half-open" : "open";

/** The failures that say "inventory may be down": they count against the breaker. */
const isTransient = (e: unknown): boolean => e instanceof InventoryUnavailableError || isTaskCancelledError(e);

/**
 * Orders' `CallPolicy` toward inventory (it lives with orders because it knows inventory's
 * failure type; the generic parts, `RollingWindowBreaker` and `ClockTimeoutPolicy`, are platform).
 * The policy in front of every call from orders to inventory: a 3 s timeout inside a circuit
 * breaker that opens at 50 % failures over 10 s (at least 10 calls), and after 10 s lets a single
 * probe through while everybody else keeps failing fast.
 *
 * cockatiel runs the state machine; two things are kept here because cockatiel cannot be told:
 * - time: its cool-down compares `Date.now()`. It is given a zero cool-down and this gate keeps the
 *   breaker shut until the injected clock says the cool-down is over.
 * - the single probe: in half-open, cockatiel parks other callers until the probe decides. Here they
 *   are refused at once, so no request waits up to a timeout on a service believed to be down.
 * Both checks and cockatiel's own open → half-open switch run synchronously in `execute`, before
 * the first await, so two calls arriving together cannot both become the probe.
 */
export function createInventoryPolicy(opts: InventoryPolicyOptions = {}): InventoryPolicy {
  const clock = opts.clock ?? systemClock;
  const timeoutMs = opts.timeoutMs ?? 3000;
  const halfOpenAfterMs = opts.halfOpenAfterMs ?? 10_000;
  if (!(halfOpenAfterMs >= 0)) throw new RangeError(`halfOpenAfterMs must be >= 0, got ${halfOpenAfterMs}`);

  const breaker = circuitBreaker(handleWhen(isTransient), {
    halfOpenAfter: 0,
    breaker: new RollingWindowBreaker({
      threshold: opts.failureThreshold ?? 0.5,
      windowMs: opts.windowMs ?? 10_000,
      minimumCalls: opts.minimumCalls ?? 10,
      clock,
    }),
  });
  const timeout = new ClockTimeoutPolicy(timeoutMs, clock);
  const policy = wrap(breaker, timeout);

  const stateEmitter = new EventEmitter<BreakerStateChange>();
  const successEmitter = new EventEmitter<PolicySuccessEvent>();
  const failureEmitter = new EventEmitter<PolicyFailureEvent>();

  let openedAt = 0;
  let last: BreakerState = toBreakerState(breaker.state);
  breaker.onStateChange((s) => {
    if (s === CircuitState.Open || s === CircuitState.Isolated) openedAt = clock.now();
    const to = toBreakerState(s);
    if (to === last) return;
    const from = last;
    last = to;
    stateEmitter.emit({ from, to });
  });

  const isOpen = (): boolean => {
    switch (breaker.state) {
      case CircuitState.Closed:
        return false;
      case CircuitState.Open:
        return clock.now() - openedAt < halfOpenAfterMs;
      default:
        // Half-open means the one probe is in flight; isolated means held open by hand.
        return true;
    }
  };

  const report = (error: InventoryUnavailableError, started: number): InventoryUnavailableError => {
    failureEmitter.emit({ kind: error.kind, error, durationMs: clock.now() - started });
    return error;
  };

  const toUnavailable = (err: unknown): InventoryUnavailableError | undefined => {
    if (err instanceof InventoryUnavailableError) return err;
    if (isTaskCancelledError(err)) {
      return new InventoryUnavailableError(`inventory did not answer within ${timeoutMs} ms`, err, "timeout");
    }
    if (isBrokenCircuitError(err)) return new InventoryUnavailableError("inventory circuit breaker is open", err, "breaker_open");
    return undefined;
  };

  return {
    execute<T>(fn: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
      const started = clock.now();
      if (isOpen()) {
        return Promise.reject(report(new InventoryUnavailableError("inventory circuit breaker is open", undefined, "breaker_open"), started));
      }
      // Not async on purpose: cockatiel must flip open → half-open in this same tick (see above).
      return policy.execute(({ signal: inner }) => fn(inner), signal).then(
        (value) => {
          successEmitter.emit({ durationMs: clock.now() - started });
          return value;
        },
        (err: unknown) => {
          const unavailable = toUnavailable(err);
          throw unavailable ? report(unavailable, started) : err;
        },
      );
    },
    get state() {
      return toBreakerState(breaker.state);
    },
    isOpen,
    onStateChange: stateEmitter.addListener,
    onSuccess: successEmitter.addListener,
    onFailure: failureEmitter.addListener,
  };
}
