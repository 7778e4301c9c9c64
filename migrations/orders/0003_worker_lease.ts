import { sql, type Kysely } from "kysely";

/**
 * The retry worker's lease on an order. A delivery works an order only after claiming it
 * (`lease_id`, a fresh token, until `leased_until`), and every transition the worker makes
 * carries that token: a worker whose lease ran out and was taken over can no longer move the
 * order, so two deliveries of one order can never both act (one confirming while the other
 * releases). Both columns are null while no worker holds the order; the order path never
 * touches them, and adding nullable columns rewrites no rows.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table orders.orders add column lease_id uuid, add column leased_until timestamptz`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table orders.orders drop column lease_id, drop column leased_until`.execute(db);
}
