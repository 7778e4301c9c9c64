import { describe, expect, test } from "bun:test";
import { ManualClock } from "../tests/support/manual-clock.ts";
import { ActivityHistory } from "./activity-history.ts";

describe("ActivityHistory", () => {
  test("counts orders and averages their durations per slot, oldest first, ending now", async () => {
    const clock = new ManualClock(1_000_000);
    const h = new ActivityHistory(5_000, 4, clock);
    h.recordOrder(100);
    h.recordOrder(300);
    await clock.advance(5_000);
    h.recordOrder(50);
    const s = h.samples();
    expect(s).toHaveLength(4);
    expect(s.map((x) => x.orders)).toEqual([0, 0, 2, 1]);
    expect(s.map((x) => x.avgMs)).toEqual([null, null, 200, 50]);
    expect(s[3]!.start).toBe(Math.floor(clock.now() / 5_000) * 5_000);
  });

  test("slots older than the range drop out, however long the history sat idle", async () => {
    const clock = new ManualClock(0);
    const h = new ActivityHistory(1_000, 3, clock);
    h.recordOrder(10);
    await clock.advance(2_000);
    expect(h.samples().map((x) => x.orders)).toEqual([1, 0, 0]);
    await clock.advance(1_000);
    expect(h.samples().map((x) => x.orders)).toEqual([0, 0, 0]);
    await clock.advance(60_000);
    h.recordOrder(20);
    expect(h.samples().map((x) => x.orders)).toEqual([0, 0, 1]);
  });

  test("a slot shows the worst breaker state seen in it; quiet slots carry the last one forward", async () => {
    const clock = new ManualClock(0);
    const h = new ActivityHistory(1_000, 5, clock);
    h.observeBreaker("closed");
    await clock.advance(1_000);
    h.observeBreaker("open");
    h.observeBreaker("half-open");
    await clock.advance(2_000);
    h.observeBreaker("closed");
    await clock.advance(1_000);
    // slots: t0 closed, t1 open (worst; half-open last), t2 quiet, t3 closed, t4 quiet
    expect(h.samples().map((x) => x.breaker)).toEqual(["closed", "open", "half-open", "closed", "closed"]);
  });

  test("the state in force before the visible range still colours its first slots", async () => {
    const clock = new ManualClock(0);
    const h = new ActivityHistory(1_000, 3, clock);
    h.observeBreaker("open");
    await clock.advance(10_000);
    expect(h.samples().map((x) => x.breaker)).toEqual(["open", "open", "open"]);
    // A write recycles the slot that remembered it; the state must survive that too.
    for (let i = 0; i < 3; i++) {
      h.recordOrder(5);
      await clock.advance(1_000);
    }
    h.recordOrder(5);
    expect(h.samples().map((x) => x.orders)).toEqual([1, 1, 1]);
    expect(h.samples().map((x) => x.breaker)).toEqual(["open", "open", "open"]);
  });

  test("before any sighting the breaker state is unknown", () => {
    const h = new ActivityHistory(1_000, 3, new ManualClock(0));
    expect(h.samples().map((x) => x.breaker)).toEqual([null, null, null]);
  });
});
