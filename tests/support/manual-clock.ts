import type { Clock } from "../../platform/clock.ts";

interface Sleeper {
  due: number;
  seq: number;
  wake: () => void;
}

/**
 * A clock that moves only when told to, so timeout and breaker tests run without real sleeps.
 * `await clock.advance(3000)` wakes every sleeper due by then, in order, letting each one's
 * continuations run before time moves on.
 */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private sleepers: Sleeper[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  /** Every duration ever passed to `sleep`, in call order. */
  readonly sleeps: number[] = [];

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const sleeper: Sleeper = {
        due: this.t + Math.max(0, ms),
        seq: this.seq++,
        wake: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.sleepers.push(sleeper);
    });
  }

  /** Sleepers not yet woken or cancelled. */
  get pendingSleeps(): number {
    return this.sleepers.length;
  }

  /**
   * Resolves once at least `n` sleeps are waiting. Polls in 1 ms steps because the sleeper may sit
   * behind a real socket; the bound is a generous safety net, not a timing assertion.
   */
  async waitForSleepers(n = 1, maxTurns = 10_000): Promise<void> {
    for (let i = 0; i < maxTurns; i++) {
      if (this.sleepers.length >= n) return;
      await new Promise((r) => setTimeout(r, 1));
    }
    throw new Error(`expected ${n} pending sleep(s), have ${this.sleepers.length}`);
  }

  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    // Work already started may be a few continuations away from asking to sleep.
    await settle();
    for (;;) {
      const next = this.sleepers
        .filter((s) => s.due <= target)
        .sort((a, b) => a.due - b.due || a.seq - b.seq)[0];
      if (!next) break;
      this.sleepers = this.sleepers.filter((s) => s !== next);
      this.t = next.due;
      next.wake();
      await settle();
    }
    this.t = target;
    await settle();
  }
}

/** Lets every queued promise continuation run. */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
