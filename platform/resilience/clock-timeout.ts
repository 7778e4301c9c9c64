import {
  EventEmitter,
  TaskCancelledError,
  type IDefaultPolicyContext,
  type IFailureEvent,
  type IPolicy,
  type ISuccessEvent,
} from "cockatiel";
import type { Clock } from "../clock.ts";

// Disarming the deadline timer is routine; `abort()` without a reason would build a DOMException
// (with a stack trace) for every call, only for the timer to throw it away.
const DISARMED = Symbol("timeout disarmed");

/**
 * A cockatiel timeout policy that keeps time with the injected clock.
 *
 * On the deadline it aborts the signal it handed to the work and stops waiting at once, rejecting
 * with cockatiel's `TaskCancelledError`; the work itself may still finish (a deduction may still
 * commit), which is why callers treat a timeout as "outcome unknown".
 *
 * Why not cockatiel's own `timeout()`: it arms a real `setTimeout`, so tests would have to sleep;
 * and its aggressive strategy reports a caller's own cancellation as a timeout, which would count
 * a shutdown against the inventory service. Here a cancelled caller gets its own abort reason back.
 */
export class ClockTimeoutPolicy implements IPolicy<IDefaultPolicyContext> {
  declare readonly _altReturn: never;
  private readonly successEmitter = new EventEmitter<ISuccessEvent>();
  private readonly failureEmitter = new EventEmitter<IFailureEvent>();
  private readonly timeoutEmitter = new EventEmitter<void>();

  readonly onSuccess = this.successEmitter.addListener;
  readonly onFailure = this.failureEmitter.addListener;
  /** Fires when the deadline passes, before the caller sees the rejection. */
  readonly onTimeout = this.timeoutEmitter.addListener;

  constructor(
    readonly durationMs: number,
    private readonly clock: Clock,
  ) {
    if (!(durationMs > 0)) throw new RangeError(`timeout must be positive, got ${durationMs}`);
  }

  async execute<T>(fn: (context: IDefaultPolicyContext) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> {
    // A caller that already gave up gets its reason back without the work ever starting.
    if (signal?.aborted) throw signal.reason;
    const started = this.clock.now();
    const inner = new AbortController();
    const timer = new AbortController();
    const forwardAbort = () => inner.abort(signal!.reason);
    signal?.addEventListener("abort", forwardAbort, { once: true });

    // Rejected sleeps are the timer being disarmed after the work settled: nothing to report.
    this.clock.sleep(this.durationMs, timer.signal).then(
      () => {
        if (inner.signal.aborted) return;
        this.timeoutEmitter.emit();
        inner.abort(new TaskCancelledError(`Operation timed out after ${this.durationMs}ms`));
      },
      () => {},
    );
    const abandoned = new Promise<never>((_, reject) => {
      inner.signal.addEventListener("abort", () => reject(inner.signal.reason), { once: true });
    });

    try {
      const work = Promise.resolve().then(() => fn({ signal: inner.signal }));
      // race() subscribes to both, so abandoned work that rejects later is not an unhandled rejection.
      const value = await Promise.race([work, abandoned]);
      this.successEmitter.emit({ duration: this.clock.now() - started });
      return value;
    } catch (error) {
      this.failureEmitter.emit({ duration: this.clock.now() - started, handled: true, reason: { error } });
      throw error;
    } finally {
      timer.abort(DISARMED);
      signal?.removeEventListener("abort", forwardAbort);
    }
  }
}
