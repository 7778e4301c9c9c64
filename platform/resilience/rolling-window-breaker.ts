import { CircuitState, type IBreaker } from "cockatiel";
import type { Clock } from "../clock.ts";

export interface RollingWindowBreakerOptions {
  /** Failure ratio in (0, 1] that opens the circuit; reached counts, so 0.5 trips at exactly half. */
  threshold: number;
  /** Length of the rolling window in milliseconds. */
  windowMs: number;
  /** Calls the window must hold before any ratio is trusted. */
  minimumCalls: number;
  clock: Clock;
  /** Granularity of the window; the oldest bucket drops out whole. */
  buckets?: number;
}

/** Epoch of a bucket that never counted; finite so the state survives JSON. */
const NEVER = Number.MIN_SAFE_INTEGER;

interface Bucket {
  /** `floor(now / bucketMs)` of the period this bucket counts; identifies stale buckets. */
  epoch: number;
  successes: number;
  failures: number;
}

export interface RollingWindowBreakerState {
  buckets: Bucket[];
}

/**
 * A cockatiel `IBreaker` that opens when at least `threshold` of the calls in the last `windowMs`
 * failed, once the window holds `minimumCalls` calls.
 *
 * Written instead of bending cockatiel's `SamplingBreaker`, which differs from what the product
 * needs in four ways: it trips only when failures *exceed* the threshold; its minimum is a rate
 * (by default 5 failures a second) rather than a count; after an idle spell it advances one bucket
 * per call, so failures older than the window still count; and it reads `Date.now()`, which tests
 * cannot drive. Here each bucket remembers which period it counts, so anything older than the
 * window is ignored however long the breaker sat idle, and time comes from the injected clock.
 */
export class RollingWindowBreaker implements IBreaker {
  private readonly threshold: number;
  private readonly minimumCalls: number;
  private readonly bucketMs: number;
  private readonly clock: Clock;
  private buckets: Bucket[];

  constructor(opts: RollingWindowBreakerOptions) {
    const count = opts.buckets ?? 10;
    if (!(opts.threshold > 0 && opts.threshold <= 1)) {
      throw new RangeError(`threshold must be in (0, 1], got ${opts.threshold}`);
    }
    if (!Number.isSafeInteger(opts.minimumCalls) || opts.minimumCalls < 1) {
      throw new RangeError(`minimumCalls must be a positive integer, got ${opts.minimumCalls}`);
    }
    if (!Number.isSafeInteger(count) || count < 1) {
      throw new RangeError(`buckets must be a positive integer, got ${count}`);
    }
    if (!(opts.windowMs >= count)) {
      throw new RangeError(`windowMs must be at least one millisecond per bucket, got ${opts.windowMs}`);
    }
    this.threshold = opts.threshold;
    this.minimumCalls = opts.minimumCalls;
    this.bucketMs = opts.windowMs / count;
    this.clock = opts.clock;
    this.buckets = Array.from({ length: count }, () => ({ epoch: NEVER, successes: 0, failures: 0 }));
  }

  /** Serializable for cockatiel's `toJSON()` / `initialState`. */
  get state(): RollingWindowBreakerState {
    return { buckets: this.buckets.map((b) => ({ ...b })) };
  }

  set state(value: unknown) {
    const buckets = (value as RollingWindowBreakerState | undefined)?.buckets;
    if (Array.isArray(buckets) && buckets.length === this.buckets.length) {
      this.buckets = buckets.map((b) => ({ ...b }));
    }
  }

  success(state: CircuitState): void {
    // A probe that succeeded closes the circuit: the failures that opened it are history.
    if (state === CircuitState.HalfOpen) this.reset();
    this.current().successes++;
  }

  failure(state: CircuitState): boolean {
    this.current().failures++;
    if (state !== CircuitState.Closed) return true;
    const { successes, failures } = this.totals();
    const total = successes + failures;
    if (total < this.minimumCalls) return false;
    // The tolerance keeps 0.3 * 10 and friends from missing an exact hit by a rounding error.
    return failures >= this.threshold * total - 1e-9;
  }

  /** Calls and failures the window holds right now. */
  totals(): { successes: number; failures: number } {
    const oldest = this.epochNow() - this.buckets.length + 1;
    let successes = 0;
    let failures = 0;
    for (const b of this.buckets) {
      if (b.epoch < oldest) continue;
      successes += b.successes;
      failures += b.failures;
    }
    return { successes, failures };
  }

  private epochNow(): number {
    return Math.floor(this.clock.now() / this.bucketMs);
  }

  private current(): Bucket {
    const epoch = this.epochNow();
    const slot = ((epoch % this.buckets.length) + this.buckets.length) % this.buckets.length;
    let bucket = this.buckets[slot]!;
    if (bucket.epoch !== epoch) {
      bucket = { epoch, successes: 0, failures: 0 };
      this.buckets[slot] = bucket;
    }
    return bucket;
  }

  private reset(): void {
    for (const b of this.buckets) {
      b.epoch = NEVER;
      b.successes = 0;
      b.failures = 0;
    }
  }
}
