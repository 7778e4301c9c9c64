import { systemClock, type Clock } from "../platform/clock.ts";
import type { BreakerState } from "./view-deps.ts";

export interface ActivitySample {
  /** Start of the slot, epoch milliseconds. */
  start: number;
  /** Finished order requests in the slot (replays and conflicts included: they are traffic too). */
  orders: number;
  /** Mean duration of those requests; null when there were none. */
  avgMs: number | null;
  /** The worst breaker state seen in the slot, carried forward through quiet slots; null before the first sighting. */
  breaker: BreakerState | null;
}

const SEVERITY: Record<BreakerState, number> = { closed: 0, "half-open": 1, open: 2 };

interface Slot {
  index: number;
  orders: number;
  sumMs: number;
  /** Worst state seen in the slot: what its bar shows. */
  worst: BreakerState | null;
  /** Latest state seen in the slot: what quiet slots after it inherit. */
  last: BreakerState | null;
}

/**
 * The last few minutes of order traffic in fixed slots (default 36 × 5 s), for the sparklines.
 * Filled by events rather than a timer, so there is nothing to start or stop: a slot that saw no
 * event simply reads as quiet. Each slot remembers which period it counts, like the latency window.
 */
export class ActivityHistory {
  private readonly slots: Slot[];
  /** The newest slot already recycled that saw the breaker, so its state can carry into the visible range. */
  private retired: { index: number; state: BreakerState } | null = null;

  constructor(
    readonly slotMs = 5_000,
    readonly slotCount = 36,
    private readonly clock: Clock = systemClock,
  ) {
    this.slots = Array.from({ length: slotCount }, () => ({ index: -1, orders: 0, sumMs: 0, worst: null, last: null }));
  }

  private slot(): Slot {
    const index = Math.floor(this.clock.now() / this.slotMs);
    const s = this.slots[index % this.slotCount]!;
    if (s.index !== index) {
      if (s.last && (!this.retired || s.index > this.retired.index)) this.retired = { index: s.index, state: s.last };
      s.index = index;
      s.orders = 0;
      s.sumMs = 0;
      s.worst = null;
      s.last = null;
    }
    return s;
  }

  /** `history.recordOrder(812)`: one finished order request. */
  recordOrder(durationMs: number): void {
    const s = this.slot();
    s.orders++;
    s.sumMs += durationMs;
  }

  /** `history.observeBreaker("open")`: the breaker's state right now. */
  observeBreaker(state: BreakerState): void {
    const s = this.slot();
    if (s.worst === null || SEVERITY[state] > SEVERITY[s.worst]) s.worst = state;
    s.last = state;
  }

  /** Oldest first, always `slotCount` long, ending with the current slot. */
  samples(): ActivitySample[] {
    const now = Math.floor(this.clock.now() / this.slotMs);
    const first = now - this.slotCount + 1;
    const byIndex = new Map(this.slots.filter((s) => s.index >= first && s.index <= now).map((s) => [s.index, s]));
    // The state in force when the visible range begins: the newest sighting before it.
    let before = this.retired && this.retired.index < first ? this.retired : null;
    for (const s of this.slots) {
      if (s.last && s.index < first && (!before || s.index > before.index)) before = { index: s.index, state: s.last };
    }
    let carried: BreakerState | null = before?.state ?? null;
    const out: ActivitySample[] = [];
    for (let i = first; i <= now; i++) {
      const s = byIndex.get(i);
      out.push({ start: i * this.slotMs, orders: s?.orders ?? 0, avgMs: s && s.orders ? s.sumMs / s.orders : null, breaker: s?.worst ?? carried });
      if (s?.last) carried = s.last;
    }
    return out;
  }
}
