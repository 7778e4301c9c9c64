import { sql } from "kysely";
import type { Database } from "../../../platform/db.ts";
import { InvalidRequestError } from "../../../platform/errors.ts";
import type { StockEvent, StockEventPage, StockLowData } from "../inventory.port.ts";

/**
 * Inventory's outbox (migration 0004): `stock.low` events, written by a trigger on
 * `inventory.inventory`, never here. Read in (xid, id) order below the snapshot's xmin, as the
 * orders outbox is (see `modules/orders/internal/outbox.repository.ts` for why): identity values
 * are drawn before commit, so a reader walking ids alone could pass an event that commits later.
 */

/** `<xid>.<id>`: where a reader stands. Opaque to callers; it names no event, so none needs to survive. */
export const STOCK_CURSOR_PATTERN = "^[0-9]{1,20}\\.[0-9]{1,20}$";

function parseCursor(after: string | null): { xid: string; id: string } {
  if (after === null) return { xid: "0", id: "0" };
  if (!new RegExp(STOCK_CURSOR_PATTERN).test(after)) throw new InvalidRequestError(`"${after}" is not a stock event cursor.`, { field: "after" });
  const [xid, id] = after.split(".") as [string, string];
  return { xid, id };
}

/**
 * A page of events after `after`. A cursor naming a transaction this database has not reached
 * yet comes from another database (inventory moved, or restored from a backup): it would skip
 * every event written here until the counter caught up, so reading starts over instead. Event ids
 * are random and the importer skips ids it has, so starting over sends nothing twice.
 */
export async function listStockEvents(database: Database, after: string | null, limit: number): Promise<StockEventPage> {
  const from = parseCursor(after);
  const { rows } = await sql<{ id: string; xid: string; event_id: string; type: "stock.low"; data: StockLowData; created_at: Date | string }>`
    with cur as (
      select case when ${from.xid}::xid8 >= pg_snapshot_xmax(pg_current_snapshot()) then '0'::xid8 else ${from.xid}::xid8 end as xid,
             case when ${from.xid}::xid8 >= pg_snapshot_xmax(pg_current_snapshot()) then 0::bigint else ${from.id}::bigint end as id
    )
    select e.id::text as id, e.xid::text as xid, e.event_id, e.type, e.data, e.created_at
    from inventory.outbox_events e, cur
    where (e.xid, e.id) > (cur.xid, cur.id) and e.xid < pg_snapshot_xmin(pg_current_snapshot())
    order by e.xid, e.id limit ${limit}`.execute(database.db);
  const events: StockEvent[] = rows.map((r) => ({ id: r.event_id, type: r.type, created_at: new Date(r.created_at).toISOString(), data: r.data }));
  const last = rows.at(-1);
  return { events, next_after: last ? `${last.xid}.${last.id}` : after };
}
