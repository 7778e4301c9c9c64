/**
 * Group commit for a hot statement: concurrent callers share one statement, and so one commit.
 *
 * An item submitted while fewer than `maxInFlight` batches are running goes out at once, alone:
 * no timer, so nothing waits at low load. Items that arrive while the limit is reached queue up
 * and leave together when a batch finishes, so the batch size follows the load by itself.
 *
 * A batch that fails is retried item by item through `runOne`: one refused row (a CHECK, a
 * conflict) then fails only its own caller, and every caller sees exactly the error a lone
 * statement would have given it. Items with the same `keyOf` never share a batch, so a batch
 * statement never sees two rows for one key.
 */
export interface GroupCommitOptions<I, O> {
  /** Runs two or more items in one statement; one result per item, in order. */
  runBatch(items: readonly I[]): Promise<O[]>;
  /** Runs one item alone: a batch of one, and each item of a batch that failed. */
  runOne(item: I): Promise<O>;
  keyOf?(item: I): string;
  /** At most this many items per statement; 1 turns batching off. */
  maxBatch: number;
  /** Statements of this kind running at once. */
  maxInFlight: number;
  /**
   * Gather what the current turn of the event loop submits before sending anything. For a
   * database that runs statements synchronously in this thread (PGlite): its statements end
   * before the next request is even read, so without this no two items would ever meet.
   */
  gatherTurn?: boolean;
  /** Told the size of every statement sent (1: an item alone). */
  onBatch?(size: number): void;
}

interface Waiting<I, O> {
  item: I;
  resolve(value: O): void;
  reject(reason: unknown): void;
}

export class GroupCommit<I, O> {
  private queue: Waiting<I, O>[] = [];
  private inFlight = 0;
  private batches = 0;
  private batchedItems = 0;
  private gathering = false;

  constructor(private readonly opts: GroupCommitOptions<I, O>) {
    if (!(opts.maxBatch >= 1 && opts.maxInFlight >= 1)) throw new RangeError("maxBatch and maxInFlight must be at least 1");
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.opts.gatherTurn) this.pump();
      else if (!this.gathering) {
        this.gathering = true;
        setImmediate(() => {
          this.gathering = false;
          this.pump();
        });
      }
    });
  }

  /** Statements run so far and the items they carried, for tests (metrics hear each statement through `onBatch`). */
  stats(): { batches: number; items: number } {
    return { batches: this.batches, items: this.batchedItems };
  }

  private pump() {
    while (this.inFlight < this.opts.maxInFlight && this.queue.length > 0) {
      const batch = this.take();
      this.inFlight++;
      this.batches++;
      this.batchedItems += batch.length;
      this.opts.onBatch?.(batch.length);
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  /** The oldest waiting items, up to `maxBatch`, at most one per key; the rest keep their places. */
  private take(): Waiting<I, O>[] {
    const { maxBatch, keyOf } = this.opts;
    if (!keyOf) return this.queue.splice(0, maxBatch);
    const batch: Waiting<I, O>[] = [];
    const rest: Waiting<I, O>[] = [];
    const keys = new Set<string>();
    for (const w of this.queue) {
      const key = keyOf(w.item);
      if (batch.length < maxBatch && !keys.has(key)) {
        keys.add(key);
        batch.push(w);
      } else {
        rest.push(w);
      }
    }
    this.queue = rest;
    return batch;
  }

  private async run(batch: Waiting<I, O>[]): Promise<void> {
    if (batch.length > 1) {
      let results: O[] | null = null;
      try {
        results = await this.opts.runBatch(batch.map((w) => w.item));
      } catch {
        // Each item goes again on its own below. A failed statement committed nothing, unless its
        // connection died after the commit: then each lone retry meets its own rows (a claim
        // finds its key taken by its own order, a transition finds the order already moved).
      }
      if (results) {
        if (results.length !== batch.length) {
          const err = new Error(`group commit: ${results.length} results for ${batch.length} items`);
          for (const w of batch) w.reject(err);
        } else {
          batch.forEach((w, i) => w.resolve(results[i] as O));
        }
        return;
      }
    }
    await Promise.all(
      batch.map(async (w) => {
        try {
          w.resolve(await this.opts.runOne(w.item));
        } catch (err) {
          w.reject(err);
        }
      }),
    );
  }
}

export type GroupCommitLimits = Pick<GroupCommitOptions<unknown, unknown>, "maxBatch" | "maxInFlight" | "gatherTurn">;

/** Limits for a writer's statements, and who hears each statement's size (metrics). */
export interface GroupCommitSettings extends GroupCommitLimits {
  onBatch?(statement: string, size: number): void;
}

/** The options for one statement of a writer. */
export function statementLimits(
  settings: GroupCommitSettings,
  statement: string,
): Pick<GroupCommitOptions<unknown, unknown>, "maxBatch" | "maxInFlight" | "gatherTurn" | "onBatch"> {
  const { onBatch, ...limits } = settings;
  return { ...limits, ...(onBatch && { onBatch: (size: number) => onBatch(statement, size) }) };
}

/**
 * Limits for a database. PGlite runs statements one at a time, synchronously, in this thread:
 * one in flight, and each statement carries what the current turn of the event loop gathered.
 * PostgreSQL: `maxInFlight` batches at once. On two cores one or two did best (fewer, larger
 * statements leave PostgreSQL more CPU; see docs/benchmarks.md); more than one keeps one slow
 * statement (a row lock, a long fsync) from holding up every order behind it.
 */
export function groupCommitLimits(kind: "postgres" | "pglite", opts: { maxBatch?: number; maxInFlight?: number } = {}): GroupCommitLimits {
  const maxBatch = opts.maxBatch ?? 64;
  return kind === "pglite" ? { maxBatch, maxInFlight: 1, gatherTurn: true } : { maxBatch, maxInFlight: opts.maxInFlight ?? 2 };
}
