import { describe, expect, test } from "bun:test";
import { stockLowCrossings, stockLowMatchesLedger, type StockLowEventRow } from "./stock-events.ts";
import type { LedgerRow } from "./types.ts";

const at = "2026-01-05 10:00:00+00";
const mv = (item_id: string, type: LedgerRow["type"], quantity_change: number): LedgerRow => ({ order_id: null, item_id, type, quantity_change, reserved_change: 0, tx_at: at });
let n = 0;
const ev = (item_id: string, available: number, low_stock_threshold: number): StockLowEventRow => ({ event_id: `evt_${String(++n).padStart(32, "0")}00000000`, item_id, available, low_stock_threshold });

// a: 10 → 6 → 5 (cross) → 3 → 7 (re-armed) → 4 (cross) → 4 (sale moves nothing available)
const ledger: LedgerRow[] = [
  mv("a", "create", 10),
  mv("b", "create", 2),
  mv("a", "deduct", -4),
  mv("a", "deduct", -1),
  mv("a", "hold", -2),
  mv("a", "hold_release", 4),
  mv("a", "adjust", -3),
  mv("a", "sale", 0),
  mv("c", "create", 9),
  mv("c", "deduct", -9),
];

describe("stock.low against the ledger", () => {
  test("crossings: from above to at-or-below, once until the stock is above again; created low counts; no threshold, none", () => {
    expect(stockLowCrossings(ledger, { a: 5, b: 3 })).toEqual({ a: 2, b: 1 });
    expect(stockLowCrossings(ledger, { a: 0, c: 1 })).toEqual({ c: 1 });
  });

  test("one event per crossing passes", () => {
    const v = stockLowMatchesLedger({ ledger, thresholds: { a: 5, b: 3, c: 0 }, events: [ev("b", 2, 3), ev("a", 5, 5), ev("a", 4, 5)] });
    expect(v).toMatchObject({ name: "stock_low_matches_ledger", status: "pass", checked: 2, breach_count: 0 });
  });

  test("breaches: a missing event, an extra one, one for an item without a threshold, a repeated id, one above its threshold", () => {
    const extra = ev("a", 3, 5);
    const v = stockLowMatchesLedger({
      ledger,
      thresholds: { a: 5, b: 3 },
      events: [ev("a", 5, 5), ev("a", 4, 5), extra, extra, ev("c", 0, 1), ev("b", 4, 3)],
    });
    expect(v.status).toBe("fail");
    const details = v.breaches.map((b) => `${b.subject}: ${b.detail}`);
    expect(details).toContainEqual(expect.stringContaining("a: 4 stock.low event(s) for 2 crossing(s)"));
    expect(details).toContainEqual(expect.stringContaining(`event ${extra.event_id} appears twice`));
    expect(details).toContainEqual(expect.stringContaining("c: 1 stock.low event(s) for an item without a threshold"));
    expect(details).toContainEqual(expect.stringContaining("says 4 available, above the threshold 3"));
    const missing = stockLowMatchesLedger({ ledger, thresholds: { a: 5 }, events: [ev("a", 5, 5)] });
    expect(missing).toMatchObject({ status: "fail", breach_count: 1 });
    expect(missing.breaches[0]!.detail).toContain("missing events");
  });

  test("without the ledger or the events it is skipped, never passed", () => {
    expect(stockLowMatchesLedger({ ledger: null, thresholds: { a: 5 }, events: [] }).status).toBe("skipped");
    expect(stockLowMatchesLedger({ ledger, thresholds: { a: 5 }, events: null }).status).toBe("skipped");
  });
});
