import { describe, expect, test } from "bun:test";
import { CircuitState } from "cockatiel";
import { ManualClock } from "../../tests/support/manual-clock.ts";
import { RollingWindowBreaker } from "./rolling-window-breaker.ts";

const make = (clock: ManualClock, over: Partial<ConstructorParameters<typeof RollingWindowBreaker>[0]> = {}) =>
  new RollingWindowBreaker({ threshold: 0.5, windowMs: 10_000, minimumCalls: 10, clock, ...over });

describe("RollingWindowBreaker", () => {
  test("reaching the threshold is enough, for thresholds that do not add up exactly in floating point", () => {
    for (const [threshold, failures] of [
      [0.5, 5],
      [0.3, 3],
      [0.7, 7],
      [0.1, 1],
    ] as const) {
      const b = make(new ManualClock(), { threshold });
      for (let i = 0; i < 10 - failures; i++) b.success(CircuitState.Closed);
      const verdicts = Array.from({ length: failures }, () => b.failure(CircuitState.Closed));
      expect(verdicts.slice(0, -1).every((v) => !v)).toBe(true);
      expect(verdicts.at(-1)).toBe(true);
    }
  });

  test("a window left idle far longer than its length counts nothing from before", async () => {
    const clock = new ManualClock();
    const b = make(clock);
    for (let i = 0; i < 9; i++) b.failure(CircuitState.Closed);
    expect(b.totals()).toEqual({ successes: 0, failures: 9 });
    await clock.advance(10 * 60_000);
    expect(b.totals()).toEqual({ successes: 0, failures: 0 });
    // One call after the idle spell must not resurrect the buckets it did not land in.
    expect(b.failure(CircuitState.Closed)).toBe(false);
    expect(b.totals()).toEqual({ successes: 0, failures: 1 });
  });

  test("buckets age out one at a time", async () => {
    const clock = new ManualClock(0);
    const b = make(clock);
    b.failure(CircuitState.Closed); // bucket [0, 1000)
    await clock.advance(5000);
    b.success(CircuitState.Closed); // bucket [5000, 6000)
    await clock.advance(4999);
    expect(b.totals()).toEqual({ successes: 1, failures: 1 });
    await clock.advance(1);
    expect(b.totals()).toEqual({ successes: 1, failures: 0 });
  });

  test("a failure while not closed always opens; a half-open success starts from a clean window", () => {
    const b = make(new ManualClock());
    expect(b.failure(CircuitState.HalfOpen)).toBe(true);
    for (let i = 0; i < 5; i++) b.failure(CircuitState.Closed);
    b.success(CircuitState.HalfOpen);
    expect(b.totals()).toEqual({ successes: 1, failures: 0 });
  });

  test("its state survives a JSON round trip, as cockatiel's toJSON() needs", () => {
    const clock = new ManualClock();
    const a = make(clock);
    for (let i = 0; i < 4; i++) a.failure(CircuitState.Closed);
    a.success(CircuitState.Closed);
    const b = make(clock);
    b.state = JSON.parse(JSON.stringify(a.state));
    expect(b.totals()).toEqual({ successes: 1, failures: 4 });
  });
});
