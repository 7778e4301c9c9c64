import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { Database } from "../../../platform/db.ts";
import { BACKENDS, openTestDatabase } from "../../../tests/support/system.ts";
import { claimForWork, claimKey, leasedTransition, OrderWriter, transition, type NewOrder } from "./order.repository.ts";

/**
 * A state change stores its answer for the order's own key while that key is still in flight (its
 * request died before answering). A cancel's key for the same order is another request's: a
 * cancel that died with its replica must not be given the order's 201 (found by the infra chaos
 * run: an orders replica killed mid-cancel, the worker then confirmed the order, and the cancel's
 * retry was replayed `201 confirmed`). Its retry runs the cancel again once the lease is over.
 */
for (const backend of BACKENDS) {
  describe(`keys finished by a transition on ${backend}`, () => {
    let database: Database;
    let close: () => Promise<void>;
    beforeAll(async () => {
      ({ database, close } = await openTestDatabase(backend, ["orders"]));
    });
    afterAll(() => close());

    const at = new Date("2026-01-02T03:04:05.000Z");
    const later = new Date(at.getTime() + 5_000);
    const newOrder = (): NewOrder => {
      const key = `order-${randomUUID()}`;
      return { key, fingerprint: `fp-${key}`, orderId: randomUUID(), lines: [{ item_id: "ps5", quantity: 1 }], at, ttlS: 3600, requestId: null };
    };

    /** An order whose own key is in flight, and a cancel of it whose request died: its key in flight too. */
    async function orderWithDeadCancel(w: OrderWriter) {
      const o = newOrder();
      expect(await w.claim(o)).toBe(true);
      const cancelKey = `cancel-${randomUUID()}`;
      expect(await claimKey(database, { key: cancelKey, fingerprint: "fp-cancel", orderId: o.orderId, at: new Date(at.getTime() + 2_000), ttlS: 3600 })).toBe(true);
      return { o, cancelKey };
    }

    async function keys(orderId: string) {
      const r = await sql<{ key: string; state: string; response_status: number | null }>`
        select key, state, response_status from orders.idempotency_keys where order_id = ${orderId}::uuid`.execute(database.db);
      return new Map(r.rows.map((k) => [k.key, k]));
    }

    test("the lone transition answers the order's key and leaves the cancel's alone", async () => {
      const { o, cancelKey } = await orderWithDeadCancel(new OrderWriter(database, { maxBatch: 1, maxInFlight: 1 }));
      expect(await transition(database, { orderId: o.orderId, to: "confirmed", from: ["pending"], reason: null, at: later, response: { status: 201, body: "confirmed" } })).toBe(true);
      const k = await keys(o.orderId);
      expect(k.get(o.key)).toMatchObject({ state: "done", response_status: 201 });
      expect(k.get(cancelKey)).toMatchObject({ state: "in_flight", response_status: null });
    });

    test("the retry worker's leased transition does the same", async () => {
      const { o, cancelKey } = await orderWithDeadCancel(new OrderWriter(database, { maxBatch: 1, maxInFlight: 1 }));
      const leaseId = randomUUID();
      expect(await claimForWork(database, { orderId: o.orderId, at: later, leaseId, leaseMs: 30_000 })).not.toBeNull();
      expect(await leasedTransition(database, { orderId: o.orderId, to: "confirmed", from: ["queued"], reason: null, at: later, leaseId, response: { status: 201, body: "confirmed" } })).toBe(true);
      const k = await keys(o.orderId);
      expect(k.get(o.key)).toMatchObject({ state: "done", response_status: 201 });
      expect(k.get(cancelKey)).toMatchObject({ state: "in_flight", response_status: null });
    });

    test("and so do group-committed transitions", async () => {
      const w = new OrderWriter(database, { maxBatch: 64, maxInFlight: 1 });
      const pairs = await Promise.all(Array.from({ length: 4 }, () => orderWithDeadCancel(w)));
      const moved = await Promise.all(
        pairs.map(({ o }) => w.transition({ orderId: o.orderId, to: "confirmed", from: ["pending"], reason: null, at: later, response: { status: 201, body: "confirmed" } })),
      );
      expect(moved).toEqual([true, true, true, true]);
      expect(w.stats().transition.batches).toBeLessThan(4);
      for (const { o, cancelKey } of pairs) {
        const k = await keys(o.orderId);
        expect(k.get(o.key)).toMatchObject({ state: "done", response_status: 201 });
        expect(k.get(cancelKey)).toMatchObject({ state: "in_flight", response_status: null });
      }
    });
  });
}
