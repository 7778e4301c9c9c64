import { percentile as nearestRank } from "../verify/stats.ts";

export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of an ascending array (the chaos report's definition); 0 for no samples. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  return nearestRank(sorted, p) ?? 0;
}

/** p50/p95/p99/max/mean in the unit of the samples, rounded to 0.01. */
export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const r = (v: number) => Math.round(v * 100) / 100;
  return {
    p50: r(percentile(sorted, 50)),
    p95: r(percentile(sorted, 95)),
    p99: r(percentile(sorted, 99)),
    max: r(sorted.length ? sorted[sorted.length - 1]! : 0),
    mean: r(sorted.length ? sum / sorted.length : 0),
  };
}
