import { openDatabase } from "../platform/db.ts";
import type { LedgerRow } from "./types.ts";

/**
 * Reads inventory's movements straight from its table — the ground truth the invariants compare
 * the answers with. PostgreSQL is read while the system runs; an embedded (PGlite) data folder
 * only once its process has stopped, since PGlite allows one process at a time.
 */

export type LedgerSource = { databaseUrl: string } | { dataDir: string };

const LEDGER_SQL = `
select order_id::text as order_id, item_id, type, quantity_change, 'applied' as outcome
from inventory.movements
where item_id = any($1::text[]) or order_id = any($2::uuid[])
order by id`;

/** `await readLedger({ databaseUrl }, { itemIds: ["chaos-a1-1"], orderIds: ["0b6f…"] })` → the rows of those items and orders. */
export async function readLedger(source: LedgerSource, filter: { itemIds: string[]; orderIds: string[] }): Promise<LedgerRow[]> {
  const database = await openDatabase("databaseUrl" in source ? { databaseUrl: source.databaseUrl, dataDir: "", poolSize: 2 } : { dataDir: source.dataDir });
  try {
    const rows = await database.query<LedgerRow>("chaos_ledger", LEDGER_SQL, [filter.itemIds, filter.orderIds]);
    return rows.map((r) => ({
      order_id: r.order_id,
      item_id: r.item_id,
      type: r.type,
      quantity_change: Number(r.quantity_change),
      outcome: r.outcome,
    }));
  } finally {
    await database.close();
  }
}
