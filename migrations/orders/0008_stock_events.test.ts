import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { Database } from "../../platform/db.ts";
import { BACKENDS, openTestDatabase } from "../../tests/support/system.ts";
import { migrateModuleTo } from "../index.ts";

/**
 * A 0007 database with events and deliveries in it: 0008 keeps every order event's id (the
 * generated column is recomputed from the same columns), takes imported events beside them
 * (no order, their own id), and the history trigger still numbers order events. Down drops the
 * imported events and gives the old shape back.
 */
for (const backend of BACKENDS) {
  describe(`orders migration 0008_stock_events on ${backend}`, () => {
    let database: Database;
    let close: () => Promise<void>;
    const order = randomUUID();
    const ids = async () => (await sql<{ event_id: string; seq: number }>`select event_id, seq from orders.outbox_events where order_id = ${order} order by seq`.execute(database.db)).rows;
    let before: Array<{ event_id: string; seq: number }> = [];

    beforeAll(async () => {
      ({ database, close } = await openTestDatabase(backend, []));
      await migrateModuleTo(database.db, "orders", "0007_key_purpose");
      await sql`insert into orders.orders (order_id, item_id, quantity, status) values (${order}, 'ps5', 1, 'confirmed')`.execute(database.db);
      await sql`insert into orders.order_history (order_id, status) values (${order}, 'pending'), (${order}, 'confirmed')`.execute(database.db);
      await sql`insert into orders.webhooks (id, url, events, secret, after_event) values ('wh_1', 'http://127.0.0.1:1/h', '{*}', 's', 0)`.execute(database.db);
      await sql`
        insert into orders.webhook_deliveries (webhook_id, event, order_id, seq, next_attempt_at)
        select 'wh_1', id, order_id, seq, now() from orders.outbox_events where order_id = ${order}`.execute(database.db);
      before = await ids();
      expect(before.map((e) => e.seq)).toEqual([1, 2]);
      expect(await migrateModuleTo(database.db, "orders", "0008_stock_events")).toEqual(["0008_stock_events"]);
    });
    afterAll(() => close());

    test("order events keep their ids; the trigger goes on numbering them", async () => {
      expect(await ids()).toEqual(before);
      expect(before[0]!.event_id).toBe(`evt_${order.replaceAll("-", "")}00000001`);
      await sql`insert into orders.order_history (order_id, status) values (${order}, 'cancelled')`.execute(database.db);
      expect((await ids()).at(-1)).toEqual({ event_id: `evt_${order.replaceAll("-", "")}00000003`, seq: 3 });
      const d = await sql<{ n: number }>`select count(*)::int as n from orders.webhook_deliveries d join orders.outbox_events e on e.id = d.event where e.order_id = ${order}`.execute(database.db);
      expect(d.rows[0]!.n).toBe(2);
    });

    test("an imported event is named by its own id, once; half an order or half an import is refused", async () => {
      const id = `evt_${randomUUID().replaceAll("-", "")}00000000`;
      const insert = () => sql`insert into orders.outbox_events (type, source_event_id, snapshot) values ('stock.low', ${id}, '{"item_id":"ps5"}') on conflict (source_event_id) do nothing returning event_id`.execute(database.db);
      expect((await insert()).rows).toEqual([{ event_id: id }]);
      expect((await insert()).rows).toEqual([]);
      const both = await sql`insert into orders.outbox_events (type, source_event_id, order_id, seq, snapshot) values ('stock.low', 'evt_x', ${order}, 9, '{}')`.execute(database.db).catch((e) => e);
      expect(both).toBeInstanceOf(Error);
      const neither = await sql`insert into orders.outbox_events (type, snapshot) values ('stock.low', '{}')`.execute(database.db).catch((e) => e);
      expect(neither).toBeInstanceOf(Error);
      expect((await sql<{ stock_cursor: string | null }>`select stock_cursor from orders.webhook_relay_state`.execute(database.db)).rows).toEqual([{ stock_cursor: null }]);
    });

    test("down drops imported events and restores the order-only shape; up again works", async () => {
      await migrateModuleTo(database.db, "orders", "0007_key_purpose");
      const cols = await sql<{ column_name: string; is_nullable: string }>`
        select column_name, is_nullable from information_schema.columns
        where table_schema = 'orders' and table_name = 'outbox_events' and column_name in ('order_id', 'seq', 'source_event_id') order by column_name`.execute(database.db);
      expect(cols.rows).toEqual([{ column_name: "order_id", is_nullable: "NO" }, { column_name: "seq", is_nullable: "NO" }]);
      expect((await ids()).map((e) => e.event_id)).toEqual([...before.map((e) => e.event_id), `evt_${order.replaceAll("-", "")}00000003`]);
      expect(await migrateModuleTo(database.db, "orders", "0008_stock_events")).toEqual(["0008_stock_events"]);
      expect((await ids()).length).toBe(3);
    });
  });
}
