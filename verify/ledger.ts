import { openDatabase } from "../platform/db.ts";
import type { AccountRow, LedgerRow } from "./types.ts";

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
  /** `inventory.inventory.reserved_quantity` of each of the run's items found. */
  reserved: Record<string, number>;
  /** Inventory's account of each of the run's orders it knows. */
  accounts: AccountRow[];
}

// `created_at` defaults to now(), the transaction's start: the rows one transaction wrote share it.
const LEDGER_SQL = `
select order_id::text as order_id, item_id, type, quantity_change, reserved_change, created_at::text as tx_at
from inventory.movements
where item_id = any($1::text[]) or order_id = any($2::uuid[])
order by id`;

const QUANTITY_SQL = `select item_id, quantity, reserved_quantity from inventory.inventory where item_id = any($1::text[])`;

const ACCOUNTS_SQL = `
select order_id::text as order_id, outcome, settled, hold_expires_at::text as hold_expires_at, released_at is not null as released
from inventory.order_accounts where order_id = any($1::uuid[])`;

/** `await readLedger({ databaseUrl }, { itemIds: ["chaos-a1-1"], orderIds: ["0b6f…"] })` → the movements of those items and orders, and the items' quantities. */
export async function readLedger(source: LedgerSource, filter: { itemIds: string[]; orderIds: string[] }): Promise<LedgerRead> {
  const database = await openDatabase("databaseUrl" in source ? { databaseUrl: source.databaseUrl, dataDir: "", poolSize: 2 } : { dataDir: source.dataDir });
  try {
    const rows = await database.query<LedgerRow>("chaos_ledger", LEDGER_SQL, [filter.itemIds, filter.orderIds]);
    const items = await database.query<{ item_id: string; quantity: number; reserved_quantity: number }>("chaos_quantities", QUANTITY_SQL, [filter.itemIds]);
    const accounts = await database.query<AccountRow>("chaos_accounts", ACCOUNTS_SQL, [filter.orderIds]);
    return {
      rows: rows.map((r) => ({
        order_id: r.order_id,
        item_id: r.item_id,
        type: r.type,
        quantity_change: Number(r.quantity_change),
        reserved_change: Number(r.reserved_change ?? 0),
        tx_at: String(r.tx_at),
      })),
      quantities: Object.fromEntries(items.map((i) => [i.item_id, Number(i.quantity)])),
      reserved: Object.fromEntries(items.map((i) => [i.item_id, Number(i.reserved_quantity)])),
      accounts: accounts.map((a) => ({
        order_id: a.order_id,
        outcome: a.outcome,
        settled: a.settled,
        hold_expires_at: a.hold_expires_at,
        released: a.released === true || String(a.released) === "true",
      })),
    };
  } finally {
    await database.close();
  }
}
