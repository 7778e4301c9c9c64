/**
 * Progress on the terminal. On a TTY: one bar redrawn in place (at most every 100 ms). Elsewhere
 * (CI logs, pipes): plain lines, one per 10 % or every 10 s, so a log stays readable.
 */

export interface ProgressCounts {
  done: number;
  total: number;
  /** Logical orders by their first definitive answer (`201`, `202`, `422`, …, `none`). */
  answers: Record<string, number>;
  /** Orders that needed more than one request. */
  retried: number;
}

export interface ProgressSink {
  write(text: string): void;
  isTTY: boolean;
  columns?: number;
}

/** `renderBar({ done: 500, total: 2000, answers: { "201": 400, "202": 100 }, retried: 30 }, 12.5, 40)` → one line. */
export function renderBar(c: ProgressCounts, elapsedS: number, width: number): string {
  const frac = c.total ? c.done / c.total : 1;
  const rate = elapsedS > 0 ? c.done / elapsedS : 0;
  const eta = rate > 0 ? Math.ceil((c.total - c.done) / rate) : null;
  const codes = Object.entries(c.answers)
    .map(([k, v]) => `${k}:${v}`)
    .join(" ");
  const stats = ` ${String(c.done).padStart(String(c.total).length)}/${c.total} ${codes} retried:${c.retried} ${rate.toFixed(0)}/s${eta === null ? "" : ` eta ${eta}s`}`;
  const barWidth = Math.max(10, Math.min(40, width - stats.length - 3));
  const filled = Math.round(frac * barWidth);
  return `[${"█".repeat(filled)}${"░".repeat(barWidth - filled)}]${stats}`;
}

export class Progress {
  private lastDraw = 0;
  private lastPlainPct = -1;
  private lastPlainAt = 0;
  private barShown = false;
  private started = performance.now();

  constructor(private readonly sink: ProgressSink, private readonly enabled = true) {}

  /** Starts the clock the rate and ETA are measured on (the load, not the start-up). */
  begin(): void {
    this.started = performance.now();
  }

  /** A phase line ("starting inventory role…"); clears the bar first on a TTY. */
  phase(text: string): void {
    if (!this.enabled) return;
    this.clearBar();
    this.sink.write(`${text}\n`);
  }

  update(c: ProgressCounts, force = false): void {
    if (!this.enabled) return;
    const now = performance.now();
    const elapsedS = (now - this.started) / 1000;
    if (this.sink.isTTY) {
      if (!force && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      this.sink.write(`\r\x1b[2K${renderBar(c, elapsedS, this.sink.columns ?? 100)}`);
      this.barShown = true;
      return;
    }
    const pct = c.total ? Math.floor((c.done / c.total) * 10) * 10 : 100;
    if (force || pct > this.lastPlainPct || now - this.lastPlainAt > 10_000) {
      this.lastPlainPct = pct;
      this.lastPlainAt = now;
      this.sink.write(`${renderBar(c, elapsedS, 100)}\n`);
    }
  }

  /** Ends the bar's line so the next output starts clean. */
  finish(): void {
    this.clearBar(true);
  }

  private clearBar(keep = false) {
    if (this.sink.isTTY && this.barShown) {
      this.sink.write(keep ? "\n" : "\r\x1b[2K");
      this.barShown = false;
    }
  }
}
