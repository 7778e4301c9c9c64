import { sql, type Kysely } from "kysely";

/**
 * Low stock: an item may name a `low_stock_threshold` (0, the default, is off), and inventory
 * writes a `stock.low` event into its own outbox when the item's available quantity (`quantity`:
 * held units have already left it for `reserved_quantity`) becomes low, i.e. at or below a
 * positive threshold, having not been low before.
 *
 * - A trigger writes the event in the transaction of the change, so every path that moves stock
 *   (the batched deduct statement, a deduction decided alone, holds, payment and expiry, release,
 *   restock, adjust, setting the threshold) is covered without knowing about it, and a change
 *   that rolls back leaves no event. "Low" is a state: one event when it turns true, none while it
 *   stays true (further deductions), re-armed once it turns false again (restock above the
 *   threshold, or the threshold lowered below the stock). Setting a threshold at or above the
 *   current stock therefore emits one event, as does creating an item already at or below it.
 * - The trigger's `WHEN` clause reads only the row: an item without a threshold costs its
 *   updates one comparison, and nothing is queued for them.
 * - Event ids keep the order events' shape (`evt_` + 40 hex): a random uuid's 32 hex digits and
 *   `00000000`. Order events end in their seq, which starts at 1, so the two never meet.
 * - `xid` is the writing transaction: readers walk (xid, id) below the snapshot's xmin, as the
 *   orders outbox does, so a cursor never passes an event that commits later.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table inventory.inventory add column low_stock_threshold integer not null default 0 check (low_stock_threshold >= 0)`.execute(db);
  await sql`
    create table inventory.outbox_events (
      id bigint generated always as identity primary key,
      event_id text not null unique check (event_id ~ '^evt_[0-9a-f]{32}00000000$'),
      type text not null check (type in ('stock.low')),
      item_id text not null,
      data jsonb not null,
      xid xid8 not null default pg_current_xact_id(),
      created_at timestamptz not null default now()
    )`.execute(db);
  await sql`create index outbox_events_xid_idx on inventory.outbox_events (xid, id)`.execute(db);
  await sql`
    create function inventory.stock_low_event() returns trigger language plpgsql as $fn$
    begin
      insert into inventory.outbox_events (event_id, type, item_id, data)
      values ('evt_' || replace(gen_random_uuid()::text, '-', '') || '00000000', 'stock.low', new.item_id,
        jsonb_build_object('item_id', new.item_id, 'item_name', new.item_name, 'quantity', new.quantity,
          'reserved_quantity', new.reserved_quantity, 'available', new.quantity, 'low_stock_threshold', new.low_stock_threshold));
      return null;
    end
    $fn$`.execute(db);
  await sql`
    create trigger inventory_stock_low_on_update after update of quantity, low_stock_threshold on inventory.inventory
    for each row
    when (new.low_stock_threshold > 0 and new.quantity <= new.low_stock_threshold
          and (old.low_stock_threshold = 0 or old.quantity > old.low_stock_threshold))
    execute function inventory.stock_low_event()`.execute(db);
  await sql`
    create trigger inventory_stock_low_on_insert after insert on inventory.inventory
    for each row when (new.low_stock_threshold > 0 and new.quantity <= new.low_stock_threshold)
    execute function inventory.stock_low_event()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger inventory_stock_low_on_insert on inventory.inventory`.execute(db);
  await sql`drop trigger inventory_stock_low_on_update on inventory.inventory`.execute(db);
  await sql`drop function inventory.stock_low_event()`.execute(db);
  await sql`drop table inventory.outbox_events`.execute(db);
  await sql`alter table inventory.inventory drop column low_stock_threshold`.execute(db);
}
