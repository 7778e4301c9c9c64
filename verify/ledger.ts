import { openDatabase } from "../platform/db.ts";
import type { LedgerRow } from "./types.ts";

/**
 * Reads inventory's movements and quantities straight from its tables — the ground truth the
 * invariants compare the answers with. PostgreSQL is read while the system runs; an embedded
 * (PGlite) data folder only once its process has stopped, since PGlite allows one process at a time.
 */

export type LedgerSource = { databaseUrl: string } | { dataDir: string };

export interface LedgerRead {
  rows: LedgerRow[];
  /** `inventory.inventory.quantity` of each of the run's items found. */
  quantities: Record<string, number>;
}

// `created_at` defaults to now(), the transaction's start: the rows one transaction wrote share it.
const LEDGER_SQL = `
select order_id::text as order_id, item_id, type, quantity_change, created_at::text as tx_at
from inventory.movements
where item_id = any($1::text[]) or order_id = any($2::uuid[])
order by id`;

const QUANTITY_SQL = `select item_id, quantity from inventory.inventory where item_id = any($1::text[])`;

/** `await readLedger({ databaseUrl }, { itemIds: ["chaos-a1-1"], orderIds: ["0b6f…"] })` → the movements of those items and orders, and the items' quantities. */
export async function readLedger(source: LedgerSource, filter: { itemIds: string[]; orderIds: string[] }): Promise<LedgerRead> {
  const database = await openDatabase("databaseUrl" in source ? { databaseUrl: source.databaseUrl, dataDir: "", poolSize: 2 } : { dataDir: source.dataDir });
  try {
    const rows = await database.query<LedgerRow>("chaos_ledger", LEDGER_SQL, [filter.itemIds, filter.orderIds]);
    const items = await database.query<{ item_id: string; quantity: number }>("chaos_quantities", QUANTITY_SQL, [filter.itemIds]);
    return {
      rows: rows.map((r) => ({
        order_id: r.order_id,
        item_id: r.item_id,
        type: r.type,
        quantity_change: Number(r.quantity_change),
        tx_at: String(r.tx_at),
      })),
      quantities: Object.fromEntries(items.map((i) => [i.item_id, Number(i.quantity)])),
    };
  } finally {
    await database.close();
  }
}
