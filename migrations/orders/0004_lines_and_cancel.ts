import { sql, type Kysely } from "kysely";

/**
 * Orders of several lines, and cancellation.
 *
 * - `lines`: every line of the order as sent (`[{item_id, quantity}]`). A one-line order also
 *   keeps `item_id` and `quantity`, which seed clients read; an order of several lines has them
 *   null. Rows from before keep their one item in those columns and no `lines`.
 * - `rejected_lines`: the lines inventory refused, when it refused the order.
 * - States `cancelling` (asked, inventory's release not yet done) and `cancelled`.
 * - History rows say who asked for a change and why (`actor`, `note`), for cancellations.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    alter table orders.orders
      add column lines jsonb,
      add column rejected_lines jsonb,
      alter column item_id drop not null,
      alter column quantity drop not null,
      drop constraint orders_status_check,
      add constraint orders_status_check
        check (status in ('pending', 'confirmed', 'rejected', 'queued', 'failed', 'cancelling', 'cancelled')),
      add constraint orders_lines_check check (lines is not null or (item_id is not null and quantity is not null))`.execute(db);
  await sql`drop index orders.orders_unfinished_idx`.execute(db);
  await sql`create index orders_unfinished_idx on orders.orders (updated_at) where status in ('pending', 'queued', 'cancelling')`.execute(db);
  await sql`alter table orders.order_history add column actor text, add column note text`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  // The old shape has no room for several lines or the new states: refuse rather than lose them.
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from orders.orders where item_id is null or status in ('cancelling', 'cancelled')`.execute(db);
  if (Number(rows[0]?.n ?? 0) > 0) throw new Error("orders of several lines or cancelled orders exist; 0004_lines_and_cancel cannot be undone");
  await sql`alter table orders.order_history drop column actor, drop column note`.execute(db);
  await sql`drop index orders.orders_unfinished_idx`.execute(db);
  await sql`create index orders_unfinished_idx on orders.orders (updated_at) where status in ('pending', 'queued')`.execute(db);
  await sql`
    alter table orders.orders
      drop constraint orders_lines_check,
      drop constraint orders_status_check,
      add constraint orders_status_check check (status in ('pending', 'confirmed', 'rejected', 'queued', 'failed')),
      alter column item_id set not null,
      alter column quantity set not null,
      drop column lines,
      drop column rejected_lines`.execute(db);
}
