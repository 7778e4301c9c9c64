import type { Database } from "../../../platform/db.ts";
import { ledgerSlice, ledgerWatermark, type DriftedItem } from "./ledger.repository.ts";

export type { DriftedItem } from "./ledger.repository.ts";

/** One reconciliation: when it ran, how, what it cost, and every item whose quantity ≠ Σ movements. */
export interface LedgerCheck {
  checked_at: string;
  /** `full`: every movement summed; `incremental`: the checkpoint plus the movements after it. */
  mode: "full" | "incremental";
  /** Movements read by this check. */
  movements_read: number;
  duration_ms: number;
  drifted: DriftedItem[];
}

export interface ReconcilerSettings {
  /** Every how many checks one sums the whole ledger again (the first always does). */
  fullEvery: number;
  /** How long the watermark may wait for the ledger's writers (ms); they wait as long for it. */
  lockTimeoutMs: number;
}

/**
 * Drift is an alarm, never a fix. For every item, `quantity` must equal the sum of its movements;
 * this checks it and tells its listeners (a gauge, `/health/deep`), and changes nothing: a
 * drifted count is evidence of a bug or of a hand edit, and "correcting" it would erase both.
 *
 * Cost model. The first check sums the whole ledger: one pass, O(movements). It leaves a
 * checkpoint, the sum per item of every movement up to a watermark id, and each later check reads
 * only the movements after it (a primary-key range) plus every item's quantity, so its cost
 * follows the orders since the last check, not the ledger's age. A plain "max id seen" would be
 * a wrong checkpoint: identity ids are drawn at insert, not at commit, so a movement with a
 * smaller id can commit after a larger one was seen, and would never be counted. The watermark
 * is taken under a brief `SHARE` lock instead (`ledgerWatermark`), which waits for the writers in
 * flight. Every `fullEvery` checks the whole ledger is summed again, which also catches an edit
 * of the movements themselves, the one thing a checkpoint cannot see.
 */
export class LedgerReconciler {
  private lastCheck: LedgerCheck | null = null;
  private checkpoint: { upTo: number; sums: Map<string, number> } | null = null;
  private checks = 0;
  private running: Promise<LedgerCheck> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private readonly checkListeners = new Set<(c: LedgerCheck) => void>();
  private readonly errorListeners = new Set<(err: unknown) => void>();
  private readonly settings: ReconcilerSettings;

  constructor(
    private readonly database: Database,
    settings: Partial<ReconcilerSettings> = {},
    private readonly now: () => number = () => performance.now(),
  ) {
    this.settings = { fullEvery: 60, lockTimeoutMs: 50, ...settings };
    if (!Number.isInteger(this.settings.fullEvery) || this.settings.fullEvery < 1) throw new RangeError(`fullEvery must be a whole number ≥ 1, got ${this.settings.fullEvery}`);
    if (!(this.settings.lockTimeoutMs >= 1)) throw new RangeError(`lockTimeoutMs must be ≥ 1, got ${this.settings.lockTimeoutMs}`);
  }

  /** The last finished check, or null before the first. */
  get last(): LedgerCheck | null {
    return this.lastCheck;
  }

  /** `reconciler.onCheck((c) => gauge.set(c.drifted.length))`: after every check; returns an unsubscribe. */
  onCheck(listener: (c: LedgerCheck) => void): () => void {
    this.checkListeners.add(listener);
    return () => this.checkListeners.delete(listener);
  }

  /** A check that could not run (the database away); the last result stands. Returns an unsubscribe. */
  onError(listener: (err: unknown) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  /** Checks now; a call while a check runs shares it. `await reconciler.check()` → `{ drifted: [] }`. */
  check(opts: { full?: boolean } = {}): Promise<LedgerCheck> {
    this.running ??= this.run(opts.full ?? false).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Checks now and then every `intervalMs` (after each check ends), until `stop()`. */
  start(intervalMs: number): void {
    if (!Number.isInteger(intervalMs) || intervalMs < 1) throw new RangeError(`intervalMs must be a positive whole number, got ${intervalMs}`);
    if (this.timer || this.stopped) return;
    const tick = () => {
      this.check()
        .catch((err) => {
          for (const l of this.errorListeners) l(err);
        })
        .finally(() => {
          if (this.stopped) return;
          this.timer = setTimeout(tick, intervalMs);
          this.timer.unref?.();
        });
    };
    this.timer = setTimeout(tick, 0);
    this.timer.unref?.();
  }

  /** No further checks; resolves once a running one has finished, so the database may close. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => {});
  }

  private async run(forceFull: boolean): Promise<LedgerCheck> {
    const started = this.now();
    const full = forceFull || this.checkpoint === null || this.checks % this.settings.fullEvery === 0;
    const base = full ? { upTo: 0, sums: new Map<string, number>() } : this.checkpoint!;
    // Taken before the snapshot below, so that snapshot sees every movement up to it.
    const watermark = Math.max(base.upTo, (await ledgerWatermark(this.database, this.settings.lockTimeoutMs)) ?? base.upTo);
    const slice = await ledgerSlice(this.database, base.upTo, watermark);
    const drifted: DriftedItem[] = [];
    for (const [itemId, quantity] of slice.quantities) {
      const ledger = (base.sums.get(itemId) ?? 0) + (slice.since.get(itemId) ?? 0);
      if (ledger !== quantity) drifted.push({ item_id: itemId, quantity, ledger });
    }
    drifted.sort((a, b) => (a.item_id < b.item_id ? -1 : a.item_id > b.item_id ? 1 : 0));
    const sums = new Map(base.sums);
    for (const [itemId, n] of slice.settled) sums.set(itemId, (sums.get(itemId) ?? 0) + n);
    this.checkpoint = { upTo: watermark, sums };
    this.checks++;
    const check: LedgerCheck = {
      checked_at: new Date().toISOString(),
      mode: full ? "full" : "incremental",
      movements_read: slice.read,
      duration_ms: Math.round((this.now() - started) * 10) / 10,
      drifted,
    };
    this.lastCheck = check;
    for (const l of this.checkListeners) l(check);
    return check;
  }
}
