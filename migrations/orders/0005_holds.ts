import { sql, type Kysely } from "kysely";

/**
 * Orders that hold stock while the customer pays.
 *
 * - `hold_s`: the hold the order asked for (null: a sale), kept so a queued order makes the same
 *   hold when inventory answers; `hold_expires_at`: the deadline inventory recorded.
 * - `paid_at`: when the customer paid; set once, by the first `pay`, and carried to inventory,
 *   which sells the hold if that moment is before the deadline.
 * - States `reserved` (held until the deadline) and `expired` (the deadline passed unpaid).
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    alter table orders.orders
      add column hold_s integer check (hold_s between 60 and 86400),
      add column hold_expires_at timestamptz,
      add column paid_at timestamptz,
      drop constraint orders_status_check,
      add constraint orders_status_check
        check (status in ('pending', 'confirmed', 'rejected', 'queued', 'failed', 'cancelling', 'cancelled', 'reserved', 'expired'))`.execute(db);
  // The expiry sweep reads live holds by deadline; they stay few.
  await sql`create index orders_reserved_idx on orders.orders (hold_expires_at) where status = 'reserved'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from orders.orders where hold_s is not null or status in ('reserved', 'expired')`.execute(db);
  if (Number(rows[0]?.n ?? 0) > 0) throw new Error("orders with holds exist; 0005_holds cannot be undone");
  await sql`drop index orders.orders_reserved_idx`.execute(db);
  await sql`
    alter table orders.orders
      drop column hold_s,
      drop column hold_expires_at,
      drop column paid_at,
      drop constraint orders_status_check,
      add constraint orders_status_check
        check (status in ('pending', 'confirmed', 'rejected', 'queued', 'failed', 'cancelling', 'cancelled'))`.execute(db);
}
