import { describe, expect, test } from "bun:test";
import { createMetrics } from "./metrics.ts";
import { ManualClock } from "../tests/support/manual-clock.ts";

describe("gauges refreshed on scrape", () => {
  test("a refresh runs when scraped, not before, at most once per interval, shared by concurrent scrapes", async () => {
    const metrics = createMetrics();
    let runs = 0;
    let fail = false;
    metrics.refreshOnScrape(async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 20));
      if (fail) throw new Error("database away");
      metrics.ordersPending.set(runs);
    }, 200);
    await new Promise((r) => setTimeout(r, 50));
    expect(runs).toBe(0);
    const [a, b] = await Promise.all([metrics.scrape(), metrics.scrape()]);
    expect(runs).toBe(1);
    expect(a).toContain("orders_pending 1");
    expect(b).toContain("orders_pending 1");
    expect(await metrics.scrape()).toContain("orders_pending 1");
    expect(runs).toBe(1);
    await new Promise((r) => setTimeout(r, 220));
    fail = true;
    // A failed refresh answers the scrape with the last values.
    expect(await metrics.scrape()).toContain("orders_pending 1");
    expect(runs).toBe(2);
  });

  test("the interval runs on the injected clock", async () => {
    const clock = new ManualClock(0);
    const metrics = createMetrics({ clock });
    let runs = 0;
    metrics.refreshOnScrape(async () => {
      runs++;
    }, 5_000);
    await metrics.scrape();
    expect(runs).toBe(1);
    await clock.advance(4_999);
    await metrics.scrape();
    expect(runs).toBe(1);
    await clock.advance(1);
    await metrics.scrape();
    expect(runs).toBe(2);
  });
});

describe("build and breaker gauges", () => {
  test("valerix_build_info is 1 with the version given, and absent without one", async () => {
    expect(await createMetrics({ version: "1.2.3" }).scrape()).toContain('valerix_build_info{version="1.2.3"} 1');
    expect(await createMetrics().scrape()).not.toContain("valerix_build_info{");
  });

  test("the breaker is one coded gauge and one series per state, 1 for the current state only", async () => {
    const metrics = createMetrics();
    metrics.setBreakerState("closed");
    let text = await metrics.scrape();
    expect(text).toContain("circuit_breaker_state 0");
    expect(text).toContain('circuit_breaker_current_state{state="closed"} 1');
    expect(text).toContain('circuit_breaker_current_state{state="open"} 0');
    expect(text).toContain('circuit_breaker_current_state{state="half-open"} 0');
    metrics.setBreakerState("half-open");
    text = await metrics.scrape();
    expect(text).toContain("circuit_breaker_state 2");
    expect(text).toContain('circuit_breaker_current_state{state="closed"} 0');
    expect(text).toContain('circuit_breaker_current_state{state="half-open"} 1');
  });
});
