import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, setSystemTime, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { Webhook } from "standardwebhooks";
import type { Database } from "../../../platform/db.ts";
import { InventoryUnavailableError } from "../../inventory/index.ts";
import { BACKENDS, openTestDatabase } from "../../../tests/support/system.ts";
import { orderHarness, type OrderHarness } from "../../../tests/support/order-harness.ts";
import { WebhookRelay, type WebhookRelayOptions } from "./webhook-relay.ts";
import { WebhookService } from "./webhook.service.ts";
import { importStockEvents } from "./stock-import.ts";
import { systemClock } from "../../../platform/clock.ts";

/**
 * `stock.low` from inventory's outbox to a receiver: the orders relay imports inventory's events
 * (through the port, as in split mode), once each, and sends them like order events: signed,
 * listed by `GET /api/events?types=stock.low`, redeliverable by their id. An inventory it cannot
 * reach never holds up the order events.
 */

interface Received {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
}

function receiver() {
  const got: Received[] = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: async (req) => {
      got.push({ id: req.headers.get("webhook-id") ?? "", timestamp: req.headers.get("webhook-timestamp") ?? "", signature: req.headers.get("webhook-signature") ?? "", body: await req.text() });
      return new Response(null, { status: 204 });
    },
  });
  return { got, url: `http://127.0.0.1:${server.port}/hooks`, stop: () => server.stop(true) };
}

function verify(secret: string, r: Received): unknown {
  setSystemTime(new Date(Number(r.timestamp) * 1000));
  try {
    return new Webhook(secret).verify(r.body, { "webhook-id": r.id, "webhook-timestamp": r.timestamp, "webhook-signature": r.signature });
  } finally {
    setSystemTime();
  }
}

const STOCK_EVENT_ID = /^evt_[0-9a-f]{32}00000000$/;

for (const backend of BACKENDS) {
  describe(`stock.low through the relay, on ${backend}`, () => {
    let database: Database;
    let close: () => Promise<void>;
    let h: OrderHarness;
    let webhooks: WebhookService;
    const servers: Array<{ stop(): unknown }> = [];

    beforeAll(async () => {
      ({ database, close } = await openTestDatabase(backend, ["inventory", "orders"]));
    });
    afterAll(() => close());
    beforeEach(async () => {
      h = orderHarness(database);
      webhooks = new WebhookService(database, { refusePrivate: false, rotationWindowMs: 86_400_000, keyTtlMs: 3_600_000, clock: h.clock });
      await sql`delete from orders.webhooks`.execute(database.db);
    });
    afterEach(async () => {
      await h.queue.close();
      for (const s of servers.splice(0)) s.stop();
    });

    const relay = (o: Partial<WebhookRelayOptions> = {}) => new WebhookRelay({ database, clock: h.clock, random: () => 0.5, timeoutMs: 2_000, inventory: h.inventory, ...o });
    const subscribe = async (url: string, events: string[]) => JSON.parse((await webhooks.create(randomUUID(), { url, events })).body) as { id: string; secret: string };
    /** An item with this stock and threshold. */
    const item = async (quantity: number, threshold: number) => {
      const [id] = await h.items(quantity);
      await sql`update inventory.inventory set low_stock_threshold = ${threshold} where item_id = ${id!}`.execute(database.db);
      return id!;
    };
    const order = async (itemId: string, quantity: number) => JSON.parse((await h.service.create(randomUUID(), { lines: [{ item_id: itemId, quantity }] }, null)).body) as { order_id: string; status: string };
    /** Events of both outboxes are read once no older transaction runs on the (shared) server. */
    const visible = async () => {
      for (let i = 0; i < 1_000; i++) {
        const r = await sql<{ n: number }>`
          select (select count(*) from orders.outbox_events e where not (e.xid < pg_snapshot_xmin(pg_current_snapshot())))
               + (select count(*) from inventory.outbox_events e where not (e.xid < pg_snapshot_xmin(pg_current_snapshot())))::int as n`.execute(database.db);
        if (Number(r.rows[0]!.n) === 0) return;
        await Bun.sleep(10);
      }
      throw new Error("events stayed invisible for 10 s");
    };
    /** Ticks until `done` holds. */
    const until = async (r: WebhookRelay, done: () => boolean) => {
      for (let i = 0; i < 200 && !done(); i++) {
        await visible();
        await r.tick();
        if (!done()) await Bun.sleep(5);
      }
      expect(done()).toBe(true);
    };
    const importedOf = async (itemId: string) =>
      (await sql<{ event_id: string }>`select event_id from orders.outbox_events where snapshot->>'item_id' = ${itemId} and type = 'stock.low' order by id`.execute(database.db)).rows.map((r) => r.event_id);

    test("a crossing at inventory becomes one signed stock.low webhook, listed by type and redeliverable by its id", async () => {
      const rx = receiver();
      servers.push(rx);
      const sub = await subscribe(rx.url, ["stock.low"]);
      const start = (await webhooks.events({ types: "stock.low", limit: 500 })).next_after;
      const a = await item(10, 5);
      expect(await order(a, 5)).toMatchObject({ status: "confirmed" });
      expect(await order(a, 1)).toMatchObject({ status: "confirmed" }); // still low: nothing more
      const r = relay();
      const mine = () => rx.got.filter((g) => JSON.parse(g.body).data.item_id === a);
      await until(r, () => mine().length === 1);
      for (let i = 0; i < 3; i++) await r.tick();
      expect(mine()).toHaveLength(1);
      // Subscribed to stock.low only: the orders' own events were not sent here.
      expect(rx.got.every((g) => JSON.parse(g.body).type === "stock.low")).toBe(true);
      const payload = verify(sub.secret, mine()[0]!) as { id: string; type: string; data: Record<string, unknown> };
      expect(payload.id).toMatch(STOCK_EVENT_ID);
      expect(payload.id).toBe(mine()[0]!.id);
      expect(payload).toMatchObject({ type: "stock.low", data: { item_id: a, item_name: a, quantity: 5, reserved_quantity: 0, available: 5, low_stock_threshold: 5 } });

      const listed = await webhooks.events({ after: start ?? undefined, types: "stock.low", limit: 500 });
      const e = listed.events.find((x) => x.id === payload.id)!;
      expect(JSON.stringify(e)).toBe(mine()[0]!.body);
      expect(listed.events.every((x) => x.type === "stock.low")).toBe(true);
      // The id is a cursor too.
      expect((await webhooks.events({ after: payload.id, types: "stock.low", limit: 500 })).events.map((x) => x.id)).not.toContain(payload.id);

      const again = await webhooks.redeliver(payload.id, randomUUID());
      expect(again.status).toBe(202);
      expect(JSON.parse(again.body)).toEqual({ event_id: payload.id, deliveries: 1 });
      await until(r, () => mine().length === 2);
      expect(mine()[1]!.id).toBe(payload.id);
      expect(mine()[1]!.body).toBe(mine()[0]!.body);
      expect((await webhooks.redeliver(`evt_${"ab".repeat(16)}00000000`, randomUUID()).catch((err) => err)).code).toBe("not_found");
    });

    test("the import is at least once, each event once: run twice, by two relays at once, or after losing its cursor", async () => {
      const items = [await item(10, 5), await item(10, 5), await item(10, 5)];
      for (const id of items) await order(id, 6);
      await visible();
      await Promise.all([importStockEvents(database, h.inventory), importStockEvents(database, h.inventory), relay().tick(), relay().tick()]);
      await importStockEvents(database, h.inventory);
      const ids = await Promise.all(items.map(importedOf));
      expect(ids.map((x) => x.length)).toEqual([1, 1, 1]);
      // A cursor that never got written (a crash after the read): the page comes again, and is skipped.
      await sql`update orders.webhook_relay_state set stock_cursor = null`.execute(database.db);
      const replay = await importStockEvents(database, h.inventory);
      expect(replay.read).toBeGreaterThanOrEqual(3);
      expect(replay.imported).toBe(0);
      expect(await Promise.all(items.map(importedOf))).toEqual(ids);
      expect(ids.flat().every((id) => STOCK_EVENT_ID.test(id))).toBe(true);
      // Imported under inventory's ids.
      const atInventory = await sql<{ event_id: string }>`select event_id from inventory.outbox_events where item_id = any(${items}::text[]) order by item_id`.execute(database.db);
      expect(atInventory.rows.map((r) => r.event_id).sort()).toEqual(ids.flat().sort());
    });

    test("inventory away: order events keep going, the failure is said once, stock events follow once it is back", async () => {
      const rx = receiver();
      servers.push(rx);
      await subscribe(rx.url, ["*"]);
      const a = await item(10, 5);
      h.inventory.stockEventsAway = true;
      const errors: Array<{ err: unknown; context: string }> = [];
      const r = relay({ onError: (err, context) => errors.push({ err, context }) });
      const { order_id } = await order(a, 6);
      const types = () => rx.got.map((g) => JSON.parse(g.body) as { type: string; data: { order_id?: string; item_id?: string } });
      await until(r, () => types().filter((t) => t.data.order_id === order_id).length === 2);
      for (let i = 0; i < 5; i++) await r.tick();
      expect(types().filter((t) => t.type === "stock.low" && t.data.item_id === a)).toEqual([]);
      expect(errors).toHaveLength(1);
      expect(errors[0]!.err).toBeInstanceOf(InventoryUnavailableError);
      expect(errors[0]!.context).toContain("stock events");
      h.inventory.stockEventsAway = false;
      await until(r, () => types().some((t) => t.type === "stock.low" && t.data.item_id === a));
      expect(errors).toHaveLength(1);
    });

    test("running, a hanging inventory holds only the stock events: order events go out meanwhile", async () => {
      const rx = receiver();
      servers.push(rx);
      await subscribe(rx.url, ["*"]);
      const a = await item(10, 5);
      let release!: () => void;
      h.inventory.stockEventsGate = new Promise<void>((r) => (release = r));
      const r = relay({ clock: systemClock, pollIntervalMs: 20, stockImportEveryMs: 20 });
      r.start();
      try {
        const { order_id } = await order(a, 6);
        const bodies = () => rx.got.map((g) => JSON.parse(g.body) as { type: string; data: { order_id?: string; item_id?: string } });
        const started = Date.now();
        while (bodies().filter((b) => b.data.order_id === order_id).length < 2 && Date.now() - started < 10_000) await Bun.sleep(20);
        expect(bodies().filter((b) => b.data.order_id === order_id).map((b) => b.type)).toEqual(["order.created", "order.confirmed"]);
        expect(bodies().some((b) => b.type === "stock.low" && b.data.item_id === a)).toBe(false);
        h.inventory.stockEventsGate = null;
        release();
        while (!bodies().some((b) => b.type === "stock.low" && b.data.item_id === a) && Date.now() - started < 20_000) await Bun.sleep(20);
        expect(bodies().filter((b) => b.type === "stock.low" && b.data.item_id === a)).toHaveLength(1);
      } finally {
        release();
        await r.stop();
      }
    });

    test("without a threshold nothing is imported", async () => {
      const a = await item(10, 0);
      await order(a, 10);
      await visible();
      await importStockEvents(database, h.inventory);
      expect(await importedOf(a)).toEqual([]);
    });
  });
}
