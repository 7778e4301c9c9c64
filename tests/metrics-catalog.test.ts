import { describe, expect, test } from "bun:test";
import catalog from "../ops/metrics-catalog.json" with { type: "json" };
import { BREAKER_STATES, createMetrics } from "../platform/metrics.ts";
import { ORDER_STATUSES, type RetryResult } from "../modules/orders/index.ts";
import { MOVEMENT_TYPES } from "../modules/inventory/index.ts";

/** The dashboards and alert rules are checked against ops/metrics-catalog.json; this holds the code to it. */
describe("metrics catalog", () => {
  test("every catalogued metric is registered by the app, with the catalogued type and labels", async () => {
    const registry = createMetrics().registry;
    const exported = await registry.getMetricsAsJSON();
    const byName = new Map(exported.map((m) => [m.name, m]));
    const missing: string[] = [];
    for (const m of catalog.metrics as Array<{ name: string; type: string; labels?: string[] }>) {
      const found = byName.get(m.name);
      if (!found) {
        missing.push(m.name);
        continue;
      }
      expect(`${m.name}:${String(found.type)}`).toBe(`${m.name}:${m.type}`);
      // prom-client keeps a metric's declared label names on the metric object.
      const declared = (registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] } | undefined)?.labelNames ?? [];
      expect(`${m.name}:${[...declared].sort().join(",")}`).toBe(`${m.name}:${[...(m.labels ?? [])].sort().join(",")}`);
    }
    expect(missing).toEqual([]);
  });

  test("every metric the app registers is catalogued, so a dashboard can rely on the catalogue", async () => {
    const registry = createMetrics().registry;
    const catalogued = new Set((catalog.metrics as Array<{ name: string }>).map((m) => m.name));
    const uncatalogued = (await registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => !catalogued.has(n));
    // prom-client's default process and Node.js metrics are documented by prom-client itself.
    expect(uncatalogued.filter((n) => !n.startsWith("process_") && !n.startsWith("nodejs_"))).toEqual([]);
  });

  test("a label's catalogued values are the values the code may emit", () => {
    const byName = new Map((catalog.metrics as Array<{ name: string; labelValues?: Record<string, string[]> }>).map((m) => [m.name, m]));
    const results: Record<RetryResult, true> = {
      confirmed: true,
      rejected: true,
      failed: true,
      cancelled: true,
      retry: true,
      breaker_open: true,
      misconfigured: true,
      busy: true,
      already_final: true,
      missing: true,
      dead_letter: true,
    };
    expect([...byName.get("order_retries_total")!.labelValues!.result!].sort()).toEqual(Object.keys(results).sort());
    expect([...byName.get("orders_by_state")!.labelValues!.status!].sort()).toEqual([...ORDER_STATUSES].sort());
    expect([...byName.get("inventory_transactions_total")!.labelValues!.type!].sort()).toEqual([...MOVEMENT_TYPES].sort());
    const states = Object.keys(BREAKER_STATES).sort();
    expect([...byName.get("circuit_breaker_current_state")!.labelValues!.state!].sort()).toEqual(states);
    expect([...byName.get("circuit_breaker_transitions_total")!.labelValues!.from!].sort()).toEqual(states);
    expect([...byName.get("circuit_breaker_transitions_total")!.labelValues!.to!].sort()).toEqual(states);
  });
});
