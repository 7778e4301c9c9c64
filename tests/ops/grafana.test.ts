import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkExpression, loadCatalog } from "./catalog.ts";
import { legendLabels, promqlRefs, withoutGrafanaVariables } from "./promql.ts";
import { dashboardFiles, dashboardQueries, DASHBOARD_DIR, referencedMetricNames, ruleQueries } from "./queries.ts";
import { OPS, readYaml, ROOT, run, tool } from "./support.ts";

const promtool = tool("promtool", "PROMTOOL");
type Any = any;

async function dashboards(): Promise<{ file: string; json: Any }[]> {
  const out = [];
  for (const file of await dashboardFiles()) out.push({ file, json: JSON.parse(await Bun.file(join(ROOT, file)).text()) });
  return out;
}

describe("Grafana dashboards", () => {
  test("the four dashboards parse, with unique uids and titles", async () => {
    const all = await dashboards();
    expect(all.map((d) => d.file.split("/").at(-1)).sort()).toEqual(["chaos.json", "inventory.json", "orders.json", "resilience.json"]);
    expect(new Set(all.map((d) => d.json.uid)).size).toBe(all.length);
    expect(new Set(all.map((d) => d.json.title)).size).toBe(all.length);
    for (const { json } of all) {
      expect(json.uid).toMatch(/^[a-z0-9-]{1,40}$/);
      expect(json.schemaVersion).toBeGreaterThanOrEqual(36);
      expect(json.panels.length).toBeGreaterThan(3);
    }
  });

  test("panels have unique ids and lie on the 24-column grid without overlapping", async () => {
    for (const { file, json } of await dashboards()) {
      const ids = json.panels.map((p: Any) => p.id);
      expect({ file, unique: new Set(ids).size }).toEqual({ file, unique: ids.length });
      const cells = new Set<string>();
      for (const p of json.panels) {
        const { x, y, w, h } = p.gridPos;
        expect({ file, panel: p.title, fits: x >= 0 && w > 0 && h > 0 && x + w <= 24 }).toEqual({ file, panel: p.title, fits: true });
        for (let i = x; i < x + w; i++) {
          for (let j = y; j < y + h; j++) {
            expect({ file, panel: p.title, overlaps: cells.has(`${i},${j}`) }).toEqual({ file, panel: p.title, overlaps: false });
            cells.add(`${i},${j}`);
          }
        }
      }
    }
  });

  test("every panel and query uses the provisioned Prometheus data source", async () => {
    const provisioned = await readYaml<Any>(join(OPS, "grafana/provisioning/datasources/prometheus.yaml"));
    const ds = provisioned.datasources[0];
    expect(ds.type).toBe("prometheus");
    for (const { file, json } of await dashboards()) {
      for (const p of json.panels) {
        expect({ file, panel: p.title, ds: p.datasource }).toEqual({ file, panel: p.title, ds: { type: "prometheus", uid: ds.uid } });
        const refIds = p.targets.map((t: Any) => t.refId);
        expect(new Set(refIds).size).toBe(refIds.length);
        for (const t of p.targets) expect(t.datasource).toEqual({ type: "prometheus", uid: ds.uid });
      }
    }
  });

  test("queries read only catalogued metrics, labels and label values", async () => {
    const catalog = await loadCatalog();
    const queries = await dashboardQueries();
    expect(queries.length).toBeGreaterThan(20);
    const problems = queries.flatMap((q) => checkExpression(catalog, q.expr).map((p) => `${q.source}: ${p}`));
    expect(problems).toEqual([]);
  });

  test("legends name only labels the query's result carries", async () => {
    const catalog = await loadCatalog();
    for (const q of await dashboardQueries()) {
      if (!q.legend) continue;
      const refs = promqlRefs(q.expr);
      // An aggregation keeps only its grouping labels; a plain selector keeps all of its own.
      const carried = refs.groupingLabels.length > 0
        ? refs.groupingLabels
        : [...catalog.targetLabels, ...refs.selectors.flatMap((s) => catalog.metrics.find((m) => m.name === s.metric)?.labels ?? [])];
      for (const l of legendLabels(q.legend)) expect({ query: q.source, label: l, carried: carried.includes(l) }).toEqual({ query: q.source, label: l, carried: true });
    }
  });

  describe.skipIf(promtool.skip)("PromQL syntax (promtool)", () => {
    test("every dashboard query parses", async () => {
      const queries = await dashboardQueries();
      const rules = queries.map((q, i) => `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(withoutGrafanaVariables(q.expr))}\n`);
      const dir = mkdtempSync(join(tmpdir(), "valerix-dashboards-"));
      writeFileSync(join(dir, "queries.yml"), `groups:\n  - name: dashboards\n    rules:\n${rules.join("")}`);
      const r = await run([promtool.need(), "check", "rules", join(dir, "queries.yml")]);
      expect({ code: r.code, out: r.stdout + r.stderr }).toEqual({ code: 0, out: expect.stringContaining(`SUCCESS: ${queries.length} rules found`) });
    });
  });

  test("provisioning: the data source and the dashboard folder match the compose mounts", async () => {
    const provider = (await readYaml<Any>(join(OPS, "grafana/provisioning/dashboards/valerix.yaml"))).providers[0];
    const compose = await readYaml<Any>(join(OPS, "compose.yaml"));
    const grafana = compose.services.grafana;
    const mount = (source: string) => grafana.volumes.find((v: string) => v.startsWith(`${source}:`))?.split(":")[1];
    expect(mount(`./${DASHBOARD_DIR.replace(/^ops\//, "")}`)).toBe(provider.options.path);
    expect(mount("./grafana/provisioning")).toBe("/etc/grafana/provisioning");
    const ds = (await readYaml<Any>(join(OPS, "grafana/provisioning/datasources/prometheus.yaml"))).datasources[0];
    const url = new URL(ds.url);
    expect(compose.services[url.hostname]).toBeDefined();
    expect(compose.services[url.hostname].ports[0]).toEndWith(`:${url.port}`);
  });
});

describe("ops/metrics-catalog.json", () => {
  test("every catalogued metric is on a dashboard or in an alert, and nothing else is", async () => {
    const catalog = await loadCatalog();
    const used = await referencedMetricNames(catalog);
    expect(used).toEqual([...catalog.metrics.map((m) => m.name), ...catalog.external.map((m) => m.name)].sort());
    expect((await ruleQueries()).length).toBeGreaterThan(0);
  });

  test("names follow Prometheus conventions: counters end in _total, units are base units", async () => {
    const catalog = await loadCatalog();
    const names = catalog.metrics.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
    for (const m of catalog.metrics) {
      expect(m.name).toMatch(/^[a-z_][a-z0-9_]*$/);
      if (m.type === "counter") expect(m.name).toEndWith("_total");
      else expect(m.name).not.toEndWith("_total");
      expect(m.name).not.toMatch(/_(milliseconds|ms|kilobytes|mb)(_|$)/);
      // Histograms carry their unit: base units, or what they count (orders per statement).
      if (m.type === "histogram") expect(m.name).toMatch(/_(seconds|bytes|orders)$/);
      for (const l of m.labels) expect(catalog.targetLabels).not.toContain(l);
      for (const l of Object.keys(m.labelValues ?? {})) expect(m.labels).toContain(l);
      expect(m.help.length).toBeGreaterThan(10);
    }
  });
});
