import { sql } from "kysely";
import type { Database } from "../../../platform/db.ts";
import { toView } from "./order.reply.ts";
import type { OrderRow } from "./order.repository.ts";
import type { OrderView } from "./order.model.ts";
import type { StockLowData } from "../../inventory/index.ts";

/**
 * The outbox and webhook SQL. Events are written by a trigger on `orders.order_history`
 * (migration 0006), never here.
 *
 * Readers walk the outbox in (xid, id) order and see only events whose transaction is older than
 * the oldest one still running (`xid < xmin` of the current snapshot). Identity values are handed
 * out before commit, so walking by id alone could pass an event that commits a moment later, and
 * a catch-up reader or the fan-out would miss it for good. A transaction still running has an xid
 * at or above xmin, and one that starts later gets a larger xid still: every event that can yet
 * appear sorts after every event already seen.
 *
 * Since migration 0008 the outbox also holds events imported from inventory's own outbox
 * (`stock.low`, see `stock-import.ts`): no order, no seq, `source_event_id` their id, `snapshot`
 * their `data` as inventory wrote it.
 */

export const EVENT_TYPES = ["order.created", "order.queued", "order.confirmed", "order.rejected", "order.failed", "order.cancelled", "order.reserved", "order.expired", "stock.low"] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface EventRow {
  id: string;
  event_id: string;
  type: EventType;
  /** Null for an imported (stock) event. */
  order_id: string | null;
  seq: number | null;
  snapshot: Record<string, unknown>;
  created_at: Date | string;
}

/** An event as it is sent and listed; the body of every attempt is this, serialised. */
export type EventView =
  | {
      id: string;
      type: Exclude<EventType, "stock.low">;
      created_at: string;
      /** The order as the API showed it at this change, and its place in the order's events. */
      data: OrderView & { seq: number };
    }
  | {
      id: string;
      type: "stock.low";
      created_at: string;
      /** The item right after the change that made it low, as inventory wrote it. */
      data: StockLowData;
    };

export function eventView(r: EventRow): EventView {
  const created_at = new Date(r.created_at).toISOString();
  if (r.type === "stock.low") return { id: r.event_id, type: r.type, created_at, data: r.snapshot as unknown as StockLowData };
  const order = toView(r.snapshot as unknown as OrderRow);
  return { id: r.event_id, type: r.type, created_at, data: { ...order, seq: r.seq ?? 0 } };
}

export const VISIBLE = sql`e.xid < pg_snapshot_xmin(pg_current_snapshot())`;

/**
 * `evt_` + the order id's 32 hex digits + the seq in 8: the event's name is its place. Imported
 * events keep their module's id, of the same shape with seq 0 (`…00000000`), which no order
 * event has (seqs start at 1).
 */
export const EVENT_ID_PATTERN = "^evt_[0-9a-f]{40}$";

/** The order and seq an event id names; null when it names none. */
function eventKey(eventId: string): { orderId: string; seq: number } | null {
  if (!new RegExp(EVENT_ID_PATTERN).test(eventId)) return null;
  const h = eventId.slice(4);
  return { orderId: `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`, seq: parseInt(h.slice(32), 16) };
}
export const byEventId = (eventId: string) => {
  const k = eventKey(eventId);
  if (!k) return sql`false`;
  return k.seq === 0 ? sql`source_event_id = ${eventId}` : sql`order_id = ${k.orderId}::uuid and seq = ${k.seq}`;
};

export async function listEvents(database: Database, q: { after: string | null; types: readonly string[] | null; limit: number }): Promise<EventRow[] | null> {
  const db = database.db;
  let after = { xid: "0", id: "0" };
  if (q.after !== null) {
    const r = await sql<{ xid: string; id: string }>`select xid::text as xid, id::text as id from orders.outbox_events where ${byEventId(q.after)}`.execute(db);
    if (!r.rows[0]) return null;
    after = r.rows[0];
  }
  const types = q.types ?? null;
  const { rows } = await sql<EventRow>`
    select e.id::text as id, e.event_id, e.type, e.order_id::text as order_id, e.seq, e.snapshot, e.created_at
    from orders.outbox_events e
    where (e.xid, e.id) > (${after.xid}::xid8, ${after.id}::bigint) and ${VISIBLE}
      and (${types}::text[] is null or e.type = any(${types}::text[]))
    order by e.xid, e.id limit ${q.limit}`.execute(db);
  return rows;
}
