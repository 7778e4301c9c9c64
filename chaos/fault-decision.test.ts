import { describe, expect, test } from "bun:test";
import { validateChaosConfig, type ChaosConfig } from "./chaos.config.ts";
import { drawDecision } from "./fault-decision.ts";

const config = (body: Record<string, unknown>): ChaosConfig => {
  const r = validateChaosConfig(body, { defaultSeed: 1 });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  if (!r.config) throw new Error("the body switches every fault off");
  return r.config;
};
/** Feeds exact numbers, so each branch is hit on purpose rather than by luck of a seed. */
const feed = (...xs: number[]) => {
  let i = 0;
  return () => {
    if (i >= xs.length) throw new Error("drew more than four numbers");
    return xs[i++]!;
  };
};

describe("drawDecision", () => {
  const c = config({ latency_min_ms: 100, latency_max_ms: 200, latency_rate: 0.5, hang_rate: 0.1, crash_rate: 0.2, partial_failure_rate: 0.3, hang_ms: 5_000 });

  test("partitions one draw between hang, crash and partial failure by their rates", () => {
    expect(drawDecision(c, feed(0.9, 0, 0.05, 0), false)).toEqual({ latencyMs: 0, hang: true, hangMs: 5_000 });
    expect(drawDecision(c, feed(0.9, 0, 0.15, 0), false)).toEqual({ latencyMs: 0, crash: 500 });
    expect(drawDecision(c, feed(0.9, 0, 0.35, 0.5), false)).toEqual({ latencyMs: 0, partial: 503 });
    expect(drawDecision(c, feed(0.9, 0, 0.65, 0), false)).toBeNull();
  });

  test("mix picks 500, 503 or reset in thirds", () => {
    expect(drawDecision(c, feed(0.9, 0, 0.15, 0.1), false)?.crash).toBe(500);
    expect(drawDecision(c, feed(0.9, 0, 0.15, 0.5), false)?.crash).toBe(503);
    expect(drawDecision(c, feed(0.9, 0, 0.15, 0.9), false)?.crash).toBe("reset");
  });

  test("latency is drawn on its own and spans its whole range", () => {
    expect(drawDecision(c, feed(0.4, 0, 0.99, 0), false)).toEqual({ latencyMs: 100 });
    expect(drawDecision(c, feed(0.4, 0.999999, 0.99, 0), false)).toEqual({ latencyMs: 200 });
    expect(drawDecision(c, feed(0.4, 0.5, 0.15, 0.9), false)).toEqual({ latencyMs: 150, crash: "reset" });
  });

  test("as weights, a chosen request always gets one exclusive fault", () => {
    // Rates 0.1 / 0.2 / 0.3 become 1/6, 2/6, 3/6 of the unit interval.
    expect(drawDecision(c, feed(0.9, 0, 0.16, 0), true)?.hang).toBe(true);
    expect(drawDecision(c, feed(0.9, 0, 0.4, 0), true)?.crash).toBe(500);
    expect(drawDecision(c, feed(0.9, 0, 0.99, 0), true)?.partial).toBe(500);
  });

  test("rates sent past 1 fault every request, in the ratio sent (crash 0.8 : partial 0.6)", () => {
    const over = config({ crash_rate: 0.8, partial_failure_rate: 0.6, crash_mode: 503 });
    // Crash takes 0.8 / 1.4 = 0.571… of the unit interval, partial failure the rest.
    expect(drawDecision(over, feed(0.9, 0, 0.57, 0), false)).toEqual({ latencyMs: 0, crash: 503 });
    expect(drawDecision(over, feed(0.9, 0, 0.58, 0), false)).toEqual({ latencyMs: 0, partial: 503 });
    expect(drawDecision(over, feed(0.9, 0, 0.999999, 0), false)).toEqual({ latencyMs: 0, partial: 503 });
  });

  test("always draws exactly four numbers, whatever it decides", () => {
    const off = config({ crash_rate: 0.1 });
    for (const cfg of [c, off]) {
      for (const u of [0, 0.05, 0.15, 0.35, 0.65, 0.99]) {
        let draws = 0;
        drawDecision(cfg, () => (draws++, u), false);
        expect(draws).toBe(4);
      }
    }
  });
});
