import { join } from "node:path";
import { promqlRefs, type Matcher } from "./promql.ts";
import { OPS } from "./support.ts";

/**
 * ops/metrics-catalog.json, and the check every dashboard query and alert expression must
 * pass: each metric it names is catalogued, each label it matches or groups by exists on
 * what it reads, and each literal label value it matches is one the label takes.
 */
export interface CatalogMetric {
  name: string;
  type: "counter" | "gauge" | "histogram" | "summary";
  labels: string[];
  labelValues?: Record<string, string[]>;
  help: string;
}

export interface Catalog {
  targetLabels: string[];
  targetLabelValues: Record<string, string[]>;
  metrics: CatalogMetric[];
  external: CatalogMetric[];
}

export const CATALOG_PATH = join(OPS, "metrics-catalog.json");

export async function loadCatalog(): Promise<Catalog> {
  return (await Bun.file(CATALOG_PATH).json()) as Catalog;
}

const HISTOGRAM_SERIES = ["_bucket", "_sum", "_count"] as const;

/** The catalogued metric a series name belongs to (histograms expose three series). */
export function resolveSeries(catalog: Catalog, series: string): { metric: CatalogMetric; extraLabels: string[] } | undefined {
  for (const metric of [...catalog.metrics, ...catalog.external]) {
    if (metric.name === series) return { metric, extraLabels: [] };
    if (metric.type === "histogram") {
      for (const suffix of HISTOGRAM_SERIES) {
        if (series === metric.name + suffix) return { metric, extraLabels: suffix === "_bucket" ? ["le"] : [] };
      }
    }
  }
  return undefined;
}

function literalValues(m: Matcher): string[] | undefined {
  if (m.op === "=") return [m.value];
  // A plain alternation such as "ready|in_flight" names its values; other regexes do not.
  if (m.op === "=~" && /^[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*$/.test(m.value)) return m.value.split("|");
  return undefined;
}

/** Problems with one PromQL expression; empty when it reads only catalogued things. */
export function checkExpression(catalog: Catalog, expr: string): string[] {
  const problems: string[] = [];
  const refs = promqlRefs(expr);
  const available = new Set<string>(catalog.targetLabels);
  if (refs.selectors.length === 0) problems.push("reads no metric");
  for (const sel of refs.selectors) {
    if (sel.metric === null) {
      problems.push("a selector without a metric name");
      continue;
    }
    const resolved = resolveSeries(catalog, sel.metric);
    if (!resolved) {
      problems.push(`unknown metric ${sel.metric}`);
      continue;
    }
    const labels = [...resolved.metric.labels, ...resolved.extraLabels, ...catalog.targetLabels];
    for (const l of labels) available.add(l);
    for (const m of sel.matchers) {
      if (!labels.includes(m.label)) {
        problems.push(`${sel.metric} has no label ${m.label}`);
        continue;
      }
      const allowed = resolved.metric.labelValues?.[m.label] ?? catalog.targetLabelValues[m.label];
      const values = literalValues(m);
      if (allowed && values) {
        for (const v of values) if (!allowed.includes(v)) problems.push(`${sel.metric}{${m.label}} never takes the value "${v}"`);
      }
    }
  }
  for (const l of refs.groupingLabels) {
    if (!available.has(l)) problems.push(`groups by ${l}, a label none of its metrics has`);
  }
  return problems;
}

/** Catalogued metric names an expression reads (histogram series folded into their metric). */
export function metricsRead(catalog: Catalog, expr: string): string[] {
  return promqlRefs(expr)
    .selectors.map((s) => (s.metric ? resolveSeries(catalog, s.metric)?.metric.name : undefined))
    .filter((n): n is string => !!n);
}
