/** Small, exact statistics for the report: nearest-rank percentiles over every sample, no sketches. */

export interface LatencySummary {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

/** Nearest-rank percentile of sorted values: `percentile([1, 2, 3, 4], 50)` → 2. */
export function percentile(sorted: ArrayLike<number>, p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/** `summarize([120, 80, 3000])` → `{ count: 3, p50: 120, p95: 3000, p99: 3000, max: 3000, mean: 1067 }` (ms, rounded). */
export function summarize(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (n: number | null) => (n === null ? null : Math.round(n));
  const mean = sorted.length ? sorted.reduce((s, v) => s + v, 0) / sorted.length : null;
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.length ? sorted[sorted.length - 1]! : null),
    mean: round(mean),
  };
}

/** Counts values by a key: `tally(["a", "b", "a"], (x) => x)` → `{ a: 2, b: 1 }`, keys sorted. */
export function tally<T>(values: Iterable<T>, key: (v: T) => string): Record<string, number> {
  const m = new Map<string, number>();
  for (const v of values) {
    const k = key(v);
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return Object.fromEntries([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
