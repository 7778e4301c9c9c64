import type { Clock } from "../../src/platform/clock.ts";

interface Sleeper {
  at: number;
  resolve: () => void;
}

/**
 * A clock that moves only when a test says so. `sleep` resolves once `advance` passes its deadline
 * and rejects at once when its signal aborts, like the system clock does.
 */
export class ManualClock implements Clock {
  private t: number;
  private sleepers = new Set<Sleeper>();
  /** Every duration ever passed to `sleep`, in call order. */
  readonly sleeps: number[] = [];

  constructor(start = Date.UTC(2030, 0, 1)) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const sleeper: Sleeper = {
        at: this.t + ms,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.sleepers.delete(sleeper);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.sleepers.add(sleeper);
    });
  }

  /** Moves time forward and wakes every sleeper whose deadline has come. */
  advance(ms: number): void {
    this.t += ms;
    for (const s of [...this.sleepers]) {
      if (s.at <= this.t) {
        this.sleepers.delete(s);
        s.resolve();
      }
    }
  }

  /** How many sleeps are waiting right now. */
  get pending(): number {
    return this.sleepers.size;
  }

  /**
   * Resolves once at least `n` sleeps are waiting. Polls in 1 ms steps because the sleeper may sit
   * behind a real socket; the bound is a generous safety net, not a timing assertion.
   */
  async waitForSleepers(n = 1, maxTurns = 10_000): Promise<void> {
    for (let i = 0; i < maxTurns; i++) {
      if (this.sleepers.size >= n) return;
      await new Promise((r) => setTimeout(r, 1));
    }
    throw new Error(`expected ${n} pending sleep(s), have ${this.sleepers.size}`);
  }
}
