import { openDatabase } from "../platform/db.ts";
import type { LedgerSource } from "./ledger.ts";
import type { LedgerRow } from "./types.ts";

/**
 * `stock.low` against the ledger. Inventory writes one `stock.low` each time an item's available
 * quantity becomes at or below its (positive) threshold, having been above it (or the item not
 * existing yet): a trigger in the transaction of the change. Replaying an item's movements in
 * ledger order gives those crossings exactly: movements of one item are written in the order of
 * its row's updates (each under the row lock), and the movements one update writes all move
 * the same way (a statement's deductions, a release's give-backs), so a crossing inside one
 * update is one crossing whether counted per movement or per update.
 *
 * Assumes each item's threshold did not change during the run (the runner sets it at creation):
 * changing it is itself a way to become low, which the ledger does not record.
 */

export interface StockLowEventRow {
  event_id: string;
  item_id: string;
  /** `data.available` and `data.low_stock_threshold` as the event carries them. */
  available: number;
  low_stock_threshold: number;
}

const EVENTS_SQL = `
select event_id, item_id, (data->>'available')::int as available, (data->>'low_stock_threshold')::int as low_stock_threshold
from inventory.outbox_events where type = 'stock.low' and item_id = any($1::text[]) order by xid, id`;

/** `await readStockLowEvents({ databaseUrl }, ["chaos-a1-1"])` → inventory's stock.low events of those items, in the order they were written. */
export async function readStockLowEvents(source: LedgerSource, itemIds: string[]): Promise<StockLowEventRow[]> {
  const database = await openDatabase("databaseUrl" in source ? { databaseUrl: source.databaseUrl, dataDir: "", poolSize: 2 } : { dataDir: source.dataDir });
  try {
    const rows = await database.query<StockLowEventRow>("chaos_stock_low", EVENTS_SQL, [itemIds]);
    return rows.map((r) => ({ event_id: r.event_id, item_id: r.item_id, available: Number(r.available), low_stock_threshold: Number(r.low_stock_threshold) }));
  } finally {
    await database.close();
  }
}

/** How many times each item's available quantity became at or below its threshold, replaying the ledger in order. */
export function stockLowCrossings(ledger: readonly LedgerRow[], thresholds: Readonly<Record<string, number>>): Record<string, number> {
  const available = new Map<string, number>();
  const low = new Map<string, boolean>();
  const crossings: Record<string, number> = {};
  for (const [item, t] of Object.entries(thresholds)) if (t > 0) crossings[item] = 0;
  for (const m of ledger) {
    const t = thresholds[m.item_id] ?? 0;
    if (t <= 0) continue;
    const now = (available.get(m.item_id) ?? 0) + m.quantity_change;
    available.set(m.item_id, now);
    const isLow = now <= t;
    if (isLow && !low.get(m.item_id)) crossings[m.item_id]!++;
    low.set(m.item_id, isLow);
  }
  return crossings;
}

export interface StockLowVerdict {
  name: "stock_low_matches_ledger";
  title: string;
  status: "pass" | "fail" | "skipped";
  /** Items examined. */
  checked: number;
  breach_count: number;
  breaches: Array<{ subject: string; detail: string }>;
  note?: string;
}

export const STOCK_LOW_TITLE = "Every crossing of an item's low-stock threshold in the ledger has exactly one stock.low event, and no event is without one";

/**
 * `stockLowMatchesLedger({ ledger, thresholds: { "chaos-a1-1": 80 }, events })`: for every item
 * with a positive threshold, the stock.low events equal the ledger's crossings in number (one
 * per crossing, none extra); each event says the item was at or below the threshold it had; no
 * event names an item without a threshold, and no event id repeats. `ledger` null (unreachable)
 * or `events` null: skipped, never passed.
 */
export function stockLowMatchesLedger(input: {
  ledger: readonly LedgerRow[] | null;
  /** Each run item's `low_stock_threshold` (0 or absent: off). */
  thresholds: Readonly<Record<string, number>>;
  events: readonly StockLowEventRow[] | null;
  maxBreaches?: number;
}): StockLowVerdict {
  const max = input.maxBreaches ?? 100;
  const base = { name: "stock_low_matches_ledger" as const, title: STOCK_LOW_TITLE };
  if (input.ledger === null || input.events === null) {
    return { ...base, status: "skipped", checked: 0, breach_count: 0, breaches: [], note: input.ledger === null ? "inventory's ledger was not read" : "inventory's stock events were not read" };
  }
  const breaches: Array<{ subject: string; detail: string }> = [];
  let count = 0;
  const add = (subject: string, detail: string) => {
    count++;
    if (breaches.length < max) breaches.push({ subject, detail });
  };
  const crossings = stockLowCrossings(input.ledger, input.thresholds);
  const byItem = new Map<string, StockLowEventRow[]>();
  const seen = new Set<string>();
  for (const e of input.events) {
    if (seen.has(e.event_id)) add(e.item_id, `event ${e.event_id} appears twice`);
    seen.add(e.event_id);
    byItem.set(e.item_id, [...(byItem.get(e.item_id) ?? []), e]);
  }
  for (const [item, list] of byItem) {
    if (!(item in crossings)) add(item, `${list.length} stock.low event(s) for an item without a threshold`);
  }
  for (const [item, expected] of Object.entries(crossings)) {
    const t = input.thresholds[item]!;
    const list = byItem.get(item) ?? [];
    if (list.length !== expected) {
      add(item, `${list.length} stock.low event(s) for ${expected} crossing(s) of its threshold ${t} in the ledger${list.length > expected ? " (extra events)" : " (missing events)"}`);
    }
    for (const e of list) {
      if (e.low_stock_threshold !== t) add(item, `event ${e.event_id} carries threshold ${e.low_stock_threshold}, the item has ${t}`);
      else if (e.available > t) add(item, `event ${e.event_id} says ${e.available} available, above the threshold ${t}`);
    }
  }
  return { ...base, status: count === 0 ? "pass" : "fail", checked: Object.keys(crossings).length, breach_count: count, breaches };
}
