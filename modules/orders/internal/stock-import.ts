import { sql } from "kysely";
import type { Database } from "../../../platform/db.ts";
import { InventoryMisconfiguredError, InventoryUnavailableError, type InventoryPort } from "../../inventory/index.ts";

/**
 * Brings inventory's own events (`stock.low`) into the orders outbox, where the relay, the
 * catch-up list and redelivery already handle every event. Inventory writes them in its own
 * database, in the transaction of the stock change; in split mode that database may be another
 * one, so they cross through `InventoryPort.stockEvents`, read after a cursor kept in
 * `orders.webhook_relay_state.stock_cursor`.
 *
 * At least once, each event once: the rows and the advanced cursor commit together, the insert
 * skips ids already imported (`source_event_id` is unique), and the cursor only moves from the
 * value this import read. Two relays importing the same page at once insert it once (the second
 * waits on the unique index, then skips) and only one of them moves the cursor; a crash between
 * the read and the commit reads the page again next round.
 */

/** Events read per round; a full page means more wait, and the relay comes back at once. */
export const STOCK_IMPORT_BATCH = 500;

export interface StockImportResult {
  /** Events read from inventory this round. */
  read: number;
  /** Of those, new to the orders outbox. */
  imported: number;
  /** The page was full: more may wait. */
  more: boolean;
}

export async function importStockEvents(database: Database, inventory: InventoryPort, o: { limit?: number; signal?: AbortSignal } = {}): Promise<StockImportResult> {
  const limit = o.limit ?? STOCK_IMPORT_BATCH;
  const state = await sql<{ stock_cursor: string | null }>`select stock_cursor from orders.webhook_relay_state where id = 1`.execute(database.db);
  const cursor = state.rows[0]?.stock_cursor ?? null;
  const page = await inventory.stockEvents(cursor, limit, { signal: o.signal });
  if (page.events.length === 0 && page.next_after === cursor) return { read: 0, imported: 0, more: false };
  const imported = await database.db.transaction().execute(async (trx) => {
    // Compare and set: a relay that lost the race to another imports nothing and moves nothing.
    const moved = await sql`
      update orders.webhook_relay_state set stock_cursor = ${page.next_after}
      where id = 1 and stock_cursor is not distinct from ${cursor} returning id`.execute(trx);
    if (moved.rows.length === 0 || page.events.length === 0) return 0;
    const e = page.events;
    const r = await sql`
      insert into orders.outbox_events (type, source_event_id, snapshot, created_at)
      select t.type, t.id, t.data, t.created_at
      from unnest(${e.map((x) => x.type)}::text[], ${e.map((x) => x.id)}::text[], ${e.map((x) => JSON.stringify(x.data))}::jsonb[], ${e.map((x) => x.created_at)}::timestamptz[])
        with ordinality as t(type, id, data, created_at, n)
      order by t.n
      on conflict (source_event_id) do nothing
      returning id`.execute(trx);
    return r.rows.length;
  });
  return { read: page.events.length, imported, more: page.events.length === limit };
}

/**
 * The relay's side of the import: runs it at most every `everyMs` (or at once while pages come
 * back full), and keeps inventory's absence from the relay's own work. A failed import (an
 * unreachable inventory: `InventoryUnavailableError`) is reported at most once every
 * `logEveryMs` (a minute) and tried again next time; order events keep flowing meanwhile.
 */
export class StockEventImporter {
  private last = -Infinity;
  private more = false;
  private running: Promise<boolean> | null = null;
  private lastReported = -Infinity;

  constructor(
    private readonly o: {
      database: Database;
      inventory: InventoryPort;
      now: () => number;
      everyMs: number;
      timeoutMs: number;
      logEveryMs?: number;
      onError?: ((err: unknown, context: string) => void) | undefined;
    },
  ) {}

  /**
   * Starts an import in the background if one is due (at once while pages come back full) and
   * none is running. The relay's round never waits for it: a hanging inventory holds this import
   * only, never the order events' delivery.
   */
  kick(): void {
    if (this.running) return;
    const run = this.maybeImport();
    this.running = run;
    void run.finally(() => {
      if (this.running === run) this.running = null;
    });
  }

  /** Resolves once no import is running. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Imports if due (or when `force`); resolves to whether more events wait. Never rejects. */
  async maybeImport(force = false): Promise<boolean> {
    const now = this.o.now();
    if (!force && !this.more && now - this.last < this.o.everyMs) return false;
    this.last = now;
    try {
      const r = await importStockEvents(this.o.database, this.o.inventory, { signal: AbortSignal.timeout(this.o.timeoutMs) });
      this.more = r.more;
      return r.more;
    } catch (err) {
      this.more = false;
      const every = this.o.logEveryMs ?? 60_000;
      if (now - this.lastReported >= every) {
        this.lastReported = now;
        const what =
          err instanceof InventoryMisconfiguredError
            ? "inventory refused the call (see INVENTORY_URL and INVENTORY_TOKEN); stock events wait there and order events keep going"
            : err instanceof InventoryUnavailableError
              ? "inventory not reached; stock events wait there and order events keep going"
              : "failed";
        this.o.onError?.(err, `webhook relay: importing stock events: ${what}`);
      }
      return false;
    }
  }
}
