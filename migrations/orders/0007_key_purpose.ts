import { sql, type Kysely } from "kysely";

/**
 * Which idempotency keys created their order. A state change stores its answer on the order's
 * own key only; the keys of later requests on the order (a cancel, a payment) keep their own
 * answers. Keys from before this migration are told apart as the code did until now: a key
 * claimed with its order shares the order's `created_at`.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table orders.idempotency_keys add column for_create boolean not null default true`.execute(db);
  await sql`
    update orders.idempotency_keys k set for_create = false
    where k.created_at <> (select o.created_at from orders.orders o where o.order_id = k.order_id)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table orders.idempotency_keys drop column for_create`.execute(db);
}
