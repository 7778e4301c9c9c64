import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { Database } from "../../../platform/db.ts";
import { BACKENDS, openTestDatabase } from "../../../tests/support/system.ts";
import { OrderWriter, type NewOrder } from "./order.repository.ts";

/**
 * The order path's group-committed statements, on both databases: whatever the batch, each
 * caller gets the answer its lone statement would have given, and the rows are the same.
 */
for (const backend of BACKENDS) {
  describe(`group-committed order writes on ${backend}`, () => {
    let database: Database;
    let close: () => Promise<void>;
    beforeAll(async () => {
      ({ database, close } = await openTestDatabase(backend, ["orders"]));
    });
    afterAll(() => close());

    const at = new Date("2026-01-02T03:04:05.000Z");
    const newOrder = (key: string, over: Partial<NewOrder> = {}): NewOrder => ({
      key,
      fingerprint: `fp-${key}`,
      orderId: randomUUID(),
      lines: [{ item_id: "ps5", quantity: 1 }],
      at,
      ttlS: 3600,
      requestId: `req-${key}`,
      ...over,
    });
    // One statement at a time, so everything submitted in one go behind the first lands in one batch.
    const writer = () => new OrderWriter(database, { maxBatch: 64, maxInFlight: 1 });

    async function rows(orderIds: string[]) {
      const orders = await sql<{ order_id: string; status: string; reason: string | null; request_id: string | null }>`
        select order_id, status, reason, request_id from orders.orders where order_id = any(${orderIds}::uuid[])`.execute(database.db);
      const history = await sql<{ order_id: string; status: string; reason: string | null }>`
        select order_id, status, reason from orders.order_history where order_id = any(${orderIds}::uuid[]) order by id`.execute(database.db);
      const keys = await sql<{ key: string; state: string; order_id: string; response_status: number | null; response_body: string | null }>`
        select key, state, order_id, response_status, response_body from orders.idempotency_keys where order_id = any(${orderIds}::uuid[])`.execute(
        database.db,
      );
      return { orders: orders.rows, history: history.rows, keys: keys.rows };
    }

    test("a burst of claims shares statements; each claim inserts its key, order and history", async () => {
      const w = writer();
      const orders = Array.from({ length: 20 }, (_, i) => newOrder(`burst-${randomUUID()}-${i}`));
      const won = await Promise.all(orders.map((o) => w.claim(o)));
      expect(won).toEqual(orders.map(() => true));
      // The first went out alone; the other 19 waited for it and shared one statement.
      expect(w.stats().claim).toEqual({ batches: 2, items: 20 });
      const r = await rows(orders.map((o) => o.orderId));
      expect(r.orders).toHaveLength(20);
      expect(r.orders.every((o) => o.status === "pending")).toBe(true);
      expect(new Set(r.orders.map((o) => o.request_id))).toEqual(new Set(orders.map((o) => o.requestId)));
      expect(r.history.map((h) => h.status)).toEqual(orders.map(() => "pending"));
      expect(r.keys.every((k) => k.state === "in_flight" && k.response_status === null)).toBe(true);
    });

    test("duplicates of one key in a burst make exactly one order; a key taken earlier is not taken again", async () => {
      const w = writer();
      const taken = newOrder(`taken-${randomUUID()}`);
      expect(await w.claim(taken)).toBe(true);
      const key = `dup-${randomUUID()}`;
      const burst = [newOrder(`other-${randomUUID()}`), newOrder(key), newOrder(key), newOrder(taken.key), newOrder(key), newOrder(`other-${randomUUID()}`)];
      const won = await Promise.all(burst.map((o) => w.claim(o)));
      expect(won).toEqual([true, true, false, false, false, true]);
      const r = await rows([...burst.map((o) => o.orderId), taken.orderId]);
      expect(r.orders).toHaveLength(4);
      expect(r.keys.find((k) => k.key === key)?.order_id).toBe(burst[1]!.orderId);
      expect(r.keys.find((k) => k.key === taken.key)?.order_id).toBe(taken.orderId);
    });

    test("an expired key is taken over inside a batch, as the lone statement does", async () => {
      const w = writer();
      const old = newOrder(`expired-${randomUUID()}`, { at: new Date("2020-01-01T00:00:00Z"), ttlS: 60 });
      expect(await w.claim(old)).toBe(true);
      const again = newOrder(old.key);
      const won = await Promise.all([w.claim(newOrder(`x-${randomUUID()}`)), w.claim(again), w.claim(newOrder(`y-${randomUUID()}`))]);
      expect(won).toEqual([true, true, true]);
      const r = await rows([old.orderId, again.orderId]);
      expect(r.keys).toEqual([expect.objectContaining({ key: old.key, order_id: again.orderId, state: "in_flight" })]);
    });

    test("queued claims store the 202 and write pending then queued for every order", async () => {
      const w = writer();
      const orders = Array.from({ length: 12 }, (_, i) => newOrder(`queued-${randomUUID()}-${i}`));
      const won = await Promise.all(orders.map((o) => w.claimQueued(o, `{"order_id":"${o.orderId}"}`, "inventory_unavailable")));
      expect(won.every(Boolean)).toBe(true);
      expect(w.stats().claimQueued).toEqual({ batches: 2, items: 12 });
      const r = await rows(orders.map((o) => o.orderId));
      expect(r.orders.every((o) => o.status === "queued" && o.reason === "inventory_unavailable")).toBe(true);
      for (const o of orders) {
        expect(r.history.filter((h) => h.order_id === o.orderId).map((h) => [h.status, h.reason])).toEqual([
          ["pending", null],
          ["queued", "inventory_unavailable"],
        ]);
        expect(r.keys.find((k) => k.order_id === o.orderId)).toMatchObject({ state: "done", response_status: 202, response_body: `{"order_id":"${o.orderId}"}` });
      }
    });

    test("transitions in a batch move only orders still in their from-state, and store the response", async () => {
      const w = writer();
      const orders = Array.from({ length: 6 }, (_, i) => newOrder(`move-${randomUUID()}-${i}`));
      await Promise.all(orders.map((o) => w.claim(o)));
      const later = new Date(at.getTime() + 1000);
      // The first one is moved on its own first, so the batch finds it no longer pending.
      expect(await w.transition({ orderId: orders[0]!.orderId, to: "confirmed", from: ["pending"], reason: null, at: later, response: { status: 201, body: "first" } })).toBe(true);
      const moved = await Promise.all(
        orders.map((o, i) =>
          w.transition({
            orderId: o.orderId,
            to: i % 2 ? "rejected" : "confirmed",
            from: ["pending"],
            reason: i % 2 ? "insufficient_stock" : null,
            at: later,
            response: i === 5 ? null : { status: i % 2 ? 422 : 201, body: `body-${i}` },
          }),
        ),
      );
      expect(moved).toEqual([false, true, true, true, true, true]);
      // At most: the lone first move, then the six in one or two statements.
      expect(w.stats().transition.items).toBe(7);
      expect(w.stats().transition.batches).toBeLessThanOrEqual(3);
      const r = await rows(orders.map((o) => o.orderId));
      const byId = new Map(r.orders.map((o) => [o.order_id, o]));
      orders.forEach((o, i) => expect(byId.get(o.orderId)?.status).toBe(i % 2 ? "rejected" : "confirmed"));
      // One transition row per move, after the pending row.
      for (const o of orders) expect(r.history.filter((h) => h.order_id === o.orderId)).toHaveLength(2);
      const keyOf = (i: number) => r.keys.find((k) => k.order_id === orders[i]!.orderId)!;
      expect(keyOf(0)).toMatchObject({ state: "done", response_status: 201, response_body: "first" });
      expect(keyOf(3)).toMatchObject({ state: "done", response_status: 422, response_body: "body-3" });
      expect(keyOf(5)).toMatchObject({ state: "in_flight", response_status: null });
    });
  });
}
