import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { Database } from "../../platform/db.ts";
import { BACKENDS, openTestDatabase } from "../../tests/support/system.ts";
import { migrateModuleTo } from "../index.ts";

/**
 * Orders written before the outbox keep their history and start their events where the
 * migration finds them: the first change after it is seq 1. Down removes every outbox and
 * webhook table and the trigger; up again works.
 */
for (const backend of BACKENDS) {
  describe(`orders migration 0006_outbox on ${backend}`, () => {
    let database: Database;
    let close: () => Promise<void>;
    const old = randomUUID();
    const events = async (id: string) =>
      (await sql<{ type: string; seq: number }>`select type, seq from orders.outbox_events where order_id = ${id} order by seq`.execute(database.db)).rows.map((r) => `${r.seq}:${r.type}`);

    beforeAll(async () => {
      ({ database, close } = await openTestDatabase(backend, []));
      await migrateModuleTo(database.db, "orders", "0005_holds");
      await sql`insert into orders.orders (order_id, item_id, quantity, status) values (${old}, 'ps5', 1, 'queued')`.execute(database.db);
      await sql`insert into orders.order_history (order_id, status) values (${old}, 'pending'), (${old}, 'queued')`.execute(database.db);
      expect(await migrateModuleTo(database.db, "orders", "0006_outbox")).toEqual(["0006_outbox"]);
    });
    afterAll(() => close());

    test("an order from before has no events for its past; its next change is event 1", async () => {
      expect(await events(old)).toEqual([]);
      await sql`
        with o as (update orders.orders set status = 'confirmed' where order_id = ${old} returning order_id)
        insert into orders.order_history (order_id, status) select order_id, 'confirmed' from o`.execute(database.db);
      expect(await events(old)).toEqual(["1:order.confirmed"]);
      const snap = await sql<{ status: string; order_id: string }>`select snapshot->>'status' as status, snapshot->>'order_id' as order_id from orders.outbox_events where order_id = ${old}`.execute(database.db);
      expect(snap.rows[0]).toEqual({ status: "confirmed", order_id: old });
    });

    test("down removes the outbox, the webhook tables and the trigger; up brings them back", async () => {
      await migrateModuleTo(database.db, "orders", "0005_holds");
      const left = await sql<{ n: number }>`
        select count(*)::int as n from information_schema.tables
        where table_schema = 'orders' and (table_name like 'webhook%' or table_name = 'outbox_events')`.execute(database.db);
      expect(left.rows[0]!.n).toBe(0);
      await sql`insert into orders.order_history (order_id, status) values (${old}, 'cancelling')`.execute(database.db);
      expect(await migrateModuleTo(database.db, "orders", "0006_outbox")).toEqual(["0006_outbox"]);
      expect(await events(old)).toEqual([]);
    });
  });
}
