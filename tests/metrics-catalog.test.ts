import { describe, expect, test } from "bun:test";
import catalog from "../ops/metrics-catalog.json" with { type: "json" };
import { createMetrics } from "../platform/metrics.ts";

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
    }
    expect(missing).toEqual([]);
  });
});
