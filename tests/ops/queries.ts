import { join } from "node:path";
import { metricsRead, type Catalog } from "./catalog.ts";
import { filesUnder, OPS, readYaml, ROOT } from "./support.ts";

/** One PromQL expression found in the ops files, and where. */
export interface Query {
  source: string;
  expr: string;
  /** Grafana legend format, for dashboard targets. */
  legend?: string;
}

export const DASHBOARD_DIR = "ops/grafana/dashboards";
export const ALERTS = join(OPS, "prometheus/alerts.yml");

export async function dashboardFiles(): Promise<string[]> {
  return filesUnder(DASHBOARD_DIR, "*.json");
}

/** Every panel target of every dashboard (rows' nested panels included). */
export async function dashboardQueries(): Promise<Query[]> {
  const queries: Query[] = [];
  for (const file of await dashboardFiles()) {
    const dashboard = await Bun.file(join(ROOT, file)).json();
    const panels = (dashboard.panels ?? []).flatMap((p: any) => [p, ...(p.panels ?? [])]);
    for (const panel of panels) {
      for (const t of panel.targets ?? []) {
        queries.push({ source: `${file}: "${panel.title}" ${t.refId}`, expr: t.expr, legend: t.legendFormat });
      }
    }
  }
  return queries;
}

/** Every alert and recording rule expression of ops/prometheus/alerts.yml. */
export async function ruleQueries(): Promise<Query[]> {
  const rules = await readYaml<{ groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[] }>(ALERTS);
  return rules.groups.flatMap((g) => g.rules.map((r) => ({ source: `alerts.yml: ${r.alert ?? r.record}`, expr: String(r.expr) })));
}

/**
 * The machine-readable list of metrics the dashboards and alert rules read, sorted. The app's
 * registry must export each of them (see ops/metrics-catalog.json).
 */
export async function referencedMetricNames(catalog: Catalog): Promise<string[]> {
  const names = new Set<string>();
  for (const q of [...(await dashboardQueries()), ...(await ruleQueries())]) for (const n of metricsRead(catalog, q.expr)) names.add(n);
  return [...names].sort();
}
