import { systemClock, type Clock } from "./clock.ts";

export type HealthStatus = "optimal" | "warning" | "critical";

/**
 * Rolling average of order-request durations over the last `windowMs` (30 s), in one-second
 * buckets so recording and reading are O(1) whatever the traffic.
 */
export class ResponseTimeWindow {
  private readonly buckets: Array<{ second: number; sumMs: number; count: number }>;

  constructor(
    private readonly windowMs = 30_000,
    private readonly clock: Clock = systemClock,
  ) {
    this.buckets = Array.from({ length: Math.ceil(windowMs / 1000) }, () => ({ second: -1, sumMs: 0, count: 0 }));
  }

  record(durationMs: number): void {
    const second = Math.floor(this.clock.now() / 1000);
    const b = this.buckets[second % this.buckets.length]!;
    if (b.second !== second) {
      b.second = second;
      b.sumMs = 0;
      b.count = 0;
    }
    b.sumMs += durationMs;
    b.count++;
  }

  snapshot(): { averageMs: number | null; count: number; status: HealthStatus } {
    const now = Math.floor(this.clock.now() / 1000);
    const oldest = now - this.buckets.length + 1;
    let sum = 0;
    let count = 0;
    for (const b of this.buckets) {
      if (b.second >= oldest && b.second <= now) {
        sum += b.sumMs;
        count += b.count;
      }
    }
    const averageMs = count ? sum / count : null;
    return { averageMs, count, status: classify(averageMs) };
  }
}

/** Under 500 ms optimal, 500–1000 ms warning, over 1000 ms critical; no traffic is optimal. */
export function classify(averageMs: number | null): HealthStatus {
  if (averageMs === null || averageMs < 500) return "optimal";
  return averageMs <= 1000 ? "warning" : "critical";
}
