import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, setSystemTime, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { Webhook } from "standardwebhooks";
import type { Database } from "../../../platform/db.ts";
import { mulberry32 } from "../../../platform/prng.ts";
import { systemClock } from "../../../platform/clock.ts";
import type { RetryQueue } from "../../../platform/queue/index.ts";
import { BACKENDS, openTestDatabase } from "../../../tests/support/system.ts";
import { orderHarness, type OrderHarness } from "../../../tests/support/order-harness.ts";
import { WebhookRelay, type DeliveryOutcome, type WebhookRelayOptions } from "./webhook-relay.ts";
import { WebhookService } from "./webhook.service.ts";
import { isPrivateAddress, WebhookUrlRefusedError } from "./webhook.url.ts";
import { fanOut, oldestUndeliveredAgeS } from "./webhook.repository.ts";
import type { EventView } from "./outbox.repository.ts";

/**
 * The outbox and the relay against the real modules on both databases, with a manual clock and
 * a real HTTP receiver (Bun.serve) that can fail, stall or redirect. Signatures are checked with
 * the reference `standardwebhooks` package.
 */

interface Received {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  accepted: boolean;
  inFlightSameId: number;
}

/** A receiver on a local port: answers with `answer(n)` (the attempt number from 0), records everything. */
function receiver(answer: (n: number, id: string) => number | Promise<number>, delayMs = 0) {
  const got: Received[] = [];
  const inFlight = new Map<string, number>();
  let n = 0;
  let hits = 0;
  let port = 0;
  const server: { port?: number | undefined; stop(force?: boolean): unknown } = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: async (req): Promise<Response> => {
      hits++;
      const url = new URL(req.url);
      if (url.pathname === "/elsewhere") return new Response("should never be reached", { status: 200 });
      const id = req.headers.get("webhook-id") ?? "";
      const now = (inFlight.get(id) ?? 0) + 1;
      inFlight.set(id, now);
      const body = await req.text();
      if (delayMs) await Bun.sleep(delayMs);
      const status = await answer(n++, id);
      inFlight.set(id, inFlight.get(id)! - 1);
      got.push({ id, timestamp: req.headers.get("webhook-timestamp") ?? "", signature: req.headers.get("webhook-signature") ?? "", body, accepted: status >= 200 && status < 300, inFlightSameId: now });
      return status >= 300 && status < 400 ? new Response(null, { status, headers: { location: `http://127.0.0.1:${port}/elsewhere` } }) : new Response(null, { status });
    },
  });
  port = server.port!;
  return { got, url: `http://127.0.0.1:${port}/hooks`, stop: () => server.stop(true), hits: () => hits };
}

/** The order an event names; null for a stock event. */
const orderIdOf = (e: EventView) => ("order_id" in e.data ? e.data.order_id : null);

/** standardwebhooks checks the timestamp against the wall clock; the test clock has moved on. */
function verify(secret: string, r: Received): unknown {
  setSystemTime(new Date(Number(r.timestamp) * 1000));
  try {
    return new Webhook(secret).verify(r.body, { "webhook-id": r.id, "webhook-timestamp": r.timestamp, "webhook-signature": r.signature });
  } finally {
    setSystemTime();
  }
}

for (const backend of BACKENDS) {
  describe(`outbox and webhooks, on ${backend}`, () => {
    let database: Database;
    let close: () => Promise<void>;
    let h: OrderHarness;
    let queue: RetryQueue;
    let webhooks: WebhookService;
    const servers: Array<{ stop(): unknown }> = [];

    beforeAll(async () => {
      ({ database, close } = await openTestDatabase(backend, ["inventory", "orders"]));
    });
    afterAll(() => close());
    beforeEach(async () => {
      h = orderHarness(database);
      queue = h.queue;
      webhooks = new WebhookService(database, { refusePrivate: false, rotationWindowMs: 86_400_000, keyTtlMs: 3_600_000, clock: h.clock });
      // Each test starts with no subscriptions; events of earlier tests are not sent to later ones.
      await sql`delete from orders.webhooks`.execute(database.db);
    });
    afterEach(async () => {
      await queue.close();
      for (const s of servers.splice(0)) s.stop();
    });

    const relay = (o: Partial<WebhookRelayOptions> = {}) => new WebhookRelay({ database, clock: h.clock, random: () => 0.5, timeoutMs: 2_000, ...o });
    const subscribe = async (url: string, events: string[] = ["*"]) => {
      const r = await webhooks.create(randomUUID(), { url, events });
      return JSON.parse(r.body) as { id: string; secret: string };
    };
    /**
     * Waits until every event is visible to the outbox's readers. Readers see an event once no
     * older transaction runs anywhere on the server, and the test server is shared: another
     * suite's transaction may hold them back for a moment.
     */
    const visible = async () => {
      for (let i = 0; i < 1_000; i++) {
        const r = await sql<{ n: number }>`select count(*)::int as n from orders.outbox_events where not (xid < pg_snapshot_xmin(pg_current_snapshot()))`.execute(database.db);
        if (r.rows[0]!.n === 0) return;
        await Bun.sleep(10);
      }
      throw new Error("outbox events stayed invisible for 10 s");
    };
    const order = async (itemId: string, quantity = 1) => {
      const id = JSON.parse((await h.service.create(randomUUID(), { lines: [{ item_id: itemId, quantity }] }, null)).body).order_id as string;
      await visible();
      return id;
    };
    const eventsOf = async (orderId: string) =>
      (await sql<{ event_id: string; type: string; seq: number }>`select event_id, type, seq from orders.outbox_events where order_id = ${orderId} order by seq`.execute(database.db)).rows;
    const pending = async () => Number((await sql<{ n: number }>`select count(*)::int as n from orders.webhook_deliveries where state = 'pending'`.execute(database.db)).rows[0]!.n);
    /** Ticks the relays and moves the clock past each backoff until nothing is pending. */
    const drain = async (relays: WebhookRelay[], stepMs = 10_000, rounds = 200) => {
      await visible();
      for (let i = 0; i < rounds; i++) {
        await Promise.all(relays.map((r) => r.tick()));
        if ((await pending()) === 0) return i;
        await h.clock.advance(stepMs);
      }
      throw new Error("deliveries still pending");
    };

    test("every order state change writes one event in its transaction, numbered per order; cancelling emits none", async () => {
      const [a, scarce] = await h.items(10, 1);
      const confirmed = await order(a!);
      const rejected = await order(scarce!, 5);
      h.inventory.faults.push("unavailable");
      const queued = await order(a!);
      expect(await h.drain(h.worker())).toEqual(["confirmed"]);
      await h.service.cancel(confirmed, randomUUID(), { reason: "changed my mind" }, null, "test");
      await visible();

      const types = async (id: string) => (await eventsOf(id)).map((e) => [e.seq, e.type]);
      expect(await types(confirmed)).toEqual([[1, "order.created"], [2, "order.confirmed"], [3, "order.cancelled"]]);
      expect(await types(rejected)).toEqual([[1, "order.created"], [2, "order.rejected"]]);
      expect(await types(queued)).toEqual([[1, "order.created"], [2, "order.queued"], [3, "order.confirmed"]]);
      // History has the cancelling step; the outbox does not.
      const hist = await sql<{ status: string }>`select status from orders.order_history where order_id = ${confirmed} order by id`.execute(database.db);
      expect(hist.rows.map((r) => r.status)).toContain("cancelling");

      // The last event's data is the order as the API shows it.
      const page = await webhooks.events({ types: "order.cancelled", limit: 500 });
      const last = page.events.find((e) => orderIdOf(e) === confirmed)!;
      const { history: _history, ...view } = await h.service.get(confirmed);
      expect(last).toMatchObject({ type: "order.cancelled", data: { ...view, seq: 3 } });
      // The event's id is its order and seq: the same on every attempt, never drawn twice.
      expect(last.id).toBe(`evt_${confirmed.replaceAll("-", "")}00000003`);
    });

    test("a change that rolls back leaves no event", async () => {
      const [a] = await h.items(5);
      const id = await order(a!);
      const before = await eventsOf(id);
      await expect(
        database.db.transaction().execute(async (trx) => {
          await sql`update orders.orders set status = 'cancelled' where order_id = ${id}`.execute(trx);
          await sql`insert into orders.order_history (order_id, status, reason) values (${id}, 'cancelled', 'test')`.execute(trx);
          expect((await sql`select 1 from orders.outbox_events where order_id = ${id}`.execute(trx)).rows.length).toBe(before.length + 1);
          throw new Error("roll back");
        }),
      ).rejects.toThrow("roll back");
      expect(await eventsOf(id)).toEqual(before);
      const ghost = randomUUID();
      await expect(
        database.db.transaction().execute(async (trx) => {
          await sql`insert into orders.orders (order_id, item_id, quantity, status) values (${ghost}, ${a!}, 1, 'pending')`.execute(trx);
          await sql`insert into orders.order_history (order_id, status) values (${ghost}, 'pending')`.execute(trx);
          throw new Error("roll back");
        }),
      ).rejects.toThrow("roll back");
      expect(await eventsOf(ghost)).toEqual([]);
    });

    test.skipIf(backend !== "postgres")("a cursor never passes an event that commits later with a lower id", async () => {
      const [a] = await h.items(10);
      const [early, late] = [await order(a!), await order(a!)];
      const start = (await webhooks.events({ limit: 500 })).next_after ?? undefined;
      const gate = Promise.withResolvers<void>();
      const inserted = Promise.withResolvers<void>();
      // A takes its xid first; B then writes its event (the lower id) and stays open while A commits.
      const aStarted = Promise.withResolvers<void>();
      const txA = database.db.transaction().execute(async (trx) => {
        await sql`select pg_current_xact_id()`.execute(trx);
        aStarted.resolve();
        await inserted.promise;
        await sql`insert into orders.order_history (order_id, status, reason) values (${late}, 'queued', 'test')`.execute(trx);
      });
      await aStarted.promise;
      const txB = database.db.transaction().execute(async (trx) => {
        await sql`insert into orders.order_history (order_id, status, reason) values (${early}, 'queued', 'test')`.execute(trx);
        inserted.resolve();
        await gate.promise;
      });
      await txA;
      const seen: string[] = [];
      let after = start;
      const walk = async () => {
        for (;;) {
          const page = await webhooks.events({ after, types: "order.queued", limit: 1 });
          if (page.events.length === 0) return;
          seen.push(orderIdOf(page.events[0]!)!);
          after = page.next_after!;
        }
      };
      await walk();
      expect(seen).toEqual([late]);
      gate.resolve();
      await txB;
      await walk();
      expect(seen).toEqual([late, early]);
    });

    test("a receiver failing half the attempts gets every event, same id and body every time, in order per order, signed", async () => {
      const coin = mulberry32(18);
      const rx = receiver(() => (coin() < 0.5 ? 500 : 204));
      servers.push(rx);
      const sub = await subscribe(rx.url);
      const [a, b] = await h.items(100, 100);
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push(await order(i % 2 ? a! : b!));
      await h.service.cancel(ids[0]!, randomUUID(), {}, null, "test");
      h.inventory.faults.push("unavailable");
      ids.push(await order(a!));
      await h.drain(h.worker());
      await visible();
      const outcomes: DeliveryOutcome[] = [];
      const r = relay({ retrySchedule: Array(30).fill(1_000) });
      r.onOutcome((o) => outcomes.push(o));
      await drain([r], 1_000);

      const expected = (await Promise.all(ids.map(eventsOf))).flat();
      expect(expected.length).toBe(6 * 2 + 1 + 3);
      const byId = new Map<string, Received[]>();
      for (const g of rx.got) byId.set(g.id, [...(byId.get(g.id) ?? []), g]);
      for (const e of expected) {
        const attempts = byId.get(e.event_id)!;
        expect(attempts.some((x) => x.accepted)).toBe(true);
        expect(new Set(attempts.map((x) => x.body)).size).toBe(1);
        const payload = verify(sub.secret, attempts[0]!) as { id: string; type: string; data: { seq: number } };
        expect(payload).toMatchObject({ id: e.event_id, type: e.type, data: { seq: e.seq } });
      }
      expect(byId.size).toBe(expected.length);
      // Per order, the receiver saw seq n+1 only after it accepted seq n.
      const perOrder = new Map<string, { seq: number; accepted: boolean }[]>();
      for (const g of rx.got) {
        const p = JSON.parse(g.body) as { data: { order_id: string; seq: number } };
        perOrder.set(p.data.order_id, [...(perOrder.get(p.data.order_id) ?? []), { seq: p.data.seq, accepted: g.accepted }]);
      }
      for (const list of perOrder.values()) {
        let done = 0;
        for (const x of list) {
          expect(x.seq).toBe(done + 1);
          if (x.accepted) done = x.seq;
        }
      }
      expect(outcomes.filter((o) => o === "retry").length).toBeGreaterThan(0);
      expect(outcomes.filter((o) => o === "delivered").length).toBe(expected.length);
      // Every attempt is listed for the endpoint, newest first.
      const log = await webhooks.deliveries(sub.id, 100);
      expect(log.attempts.length).toBe(Math.min(100, rx.got.length));
      expect(log.attempts[0]).toMatchObject({ status_code: expect.any(Number), duration_ms: expect.any(Number) });
    });

    test("two relays on one database never send one delivery at the same time, and miss nothing", async () => {
      const coin = mulberry32(7);
      const rx = receiver(() => (coin() < 0.3 ? 503 : 200), 15);
      servers.push(rx);
      await subscribe(rx.url);
      const [a] = await h.items(1_000);
      const ids = await Promise.all(Array.from({ length: 20 }, () => order(a!)));
      const r1 = relay({ batch: 4, retrySchedule: Array(30).fill(1_000) });
      const r2 = relay({ batch: 4, retrySchedule: Array(30).fill(1_000) });
      await drain([r1, r2], 1_000);
      const expected = (await Promise.all(ids.map(eventsOf))).flat();
      const accepted = new Set(rx.got.filter((g) => g.accepted).map((g) => g.id));
      for (const e of expected) expect(accepted.has(e.event_id)).toBe(true);
      expect(Math.max(...rx.got.map((g) => g.inFlightSameId))).toBe(1);
      // Nothing was accepted twice: no attempt was sent by both relays.
      expect(rx.got.filter((g) => g.accepted).length).toBe(expected.length);
    });

    test("running, a slow receiver holds only its own slots: a fast one gets every event meanwhile", async () => {
      const slow = receiver(async () => {
        await Bun.sleep(1_500);
        return 200;
      });
      const fast = receiver(() => 200);
      servers.push(slow, fast);
      await subscribe(slow.url);
      await subscribe(fast.url);
      const [a] = await h.items(10);
      await order(a!);
      const r = relay({ clock: systemClock, pollIntervalMs: 20, timeoutMs: 5_000 });
      r.start();
      try {
        for (let i = 0; i < 100 && fast.got.length < 2; i++) await Bun.sleep(10);
        expect(fast.got.map((g) => JSON.parse(g.body).type)).toEqual(["order.created", "order.confirmed"]);
        expect(slow.got).toHaveLength(0);
      } finally {
        await r.stop();
      }
      // Stopping waited for the attempt in flight, and recorded it.
      expect(slow.got).toHaveLength(1);
      const done = await sql<{ n: number }>`select count(*)::int as n from orders.webhook_attempts where status_code = 200`.execute(database.db);
      expect(done.rows[0]!.n).toBe(3);
    });

    test("running, a finished attempt frees its slot for the next claim at once, not at the next poll", async () => {
      const rx = receiver(() => 204);
      servers.push(rx);
      await subscribe(rx.url);
      const [a] = await h.items(100);
      for (let i = 0; i < 3; i++) await order(a!);
      // One slot for the endpoint and a poll that never comes (the manual clock stands still):
      // six events, each sent only because the one before it freed the slot.
      const r = relay({ perEndpoint: 1, pollIntervalMs: 3_600_000 });
      r.start();
      try {
        for (let i = 0; i < 500 && rx.hits() < 6; i++) await Bun.sleep(10);
        expect(rx.hits()).toBe(6);
      } finally {
        await r.stop();
      }
    });

    test("a rotated secret: both signatures verify during the window, only the new one after", async () => {
      const rx = receiver(() => 200);
      servers.push(rx);
      const sub = await subscribe(rx.url, ["order.confirmed"]);
      const rotated = JSON.parse((await webhooks.rotate(sub.id, randomUUID())).body) as { secret: string; previous_secret_expires_at: string };
      expect(rotated.secret).not.toBe(sub.secret);
      expect(rotated.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
      const [a] = await h.items(10);
      await order(a!);
      await drain([relay()]);
      const first = rx.got.at(-1)!;
      expect(first.signature.split(" ")).toHaveLength(2);
      expect(() => verify(sub.secret, first)).not.toThrow();
      expect(() => verify(rotated.secret, first)).not.toThrow();
      expect(JSON.parse(first.body).type).toBe("order.confirmed");

      await h.clock.advance(86_400_001);
      await order(a!);
      await drain([relay()]);
      const later = rx.got.at(-1)!;
      expect(later.signature.split(" ")).toHaveLength(1);
      expect(() => verify(rotated.secret, later)).not.toThrow();
      expect(() => verify(sub.secret, later)).toThrow();
    });

    test("private destinations are refused when asked to, at registration and at delivery; redirects are failures, never followed", async () => {
      expect(isPrivateAddress("10.1.2.3")).toBe(true);
      expect(isPrivateAddress("::ffff:127.0.0.1")).toBe(true);
      expect(isPrivateAddress("fe80::1")).toBe(true);
      expect(isPrivateAddress("169.254.169.254")).toBe(true);
      expect(isPrivateAddress("93.184.216.34")).toBe(false);
      const strict = new WebhookService(database, { refusePrivate: true, rotationWindowMs: 1, keyTtlMs: 60_000, resolve: async () => ["10.0.0.5"] });
      await expect(strict.create(randomUUID(), { url: "https://hooks.example/x", events: ["*"] })).rejects.toBeInstanceOf(WebhookUrlRefusedError);
      await expect(strict.create(randomUUID(), { url: "http://127.0.0.1:9/x", events: ["*"] })).rejects.toBeInstanceOf(WebhookUrlRefusedError);
      await expect(webhooks.create(randomUUID(), { url: "ftp://hooks.example/x", events: ["*"] })).rejects.toBeInstanceOf(WebhookUrlRefusedError);
      await expect(webhooks.create(randomUUID(), { url: "https://user:pw@hooks.example/x", events: ["*"] })).rejects.toBeInstanceOf(WebhookUrlRefusedError);
      expect(await webhooks.list()).toEqual([]);

      // Registered while allowed, refused at delivery: the attempt fails and nothing is sent.
      const rx = receiver(() => 200);
      servers.push(rx);
      await subscribe(rx.url);
      const [a] = await h.items(10);
      await order(a!);
      const guarded = relay({ refusePrivate: true, retrySchedule: [1_000] });
      await drain([guarded], 1_000);
      expect(rx.hits()).toBe(0);
      const refused = await sql<{ error: string }>`select error from orders.webhook_attempts`.execute(database.db);
      expect(refused.rows[0]!.error).toContain("private");

      const redirecting = receiver(() => 302);
      servers.push(redirecting);
      const sub = await subscribe(redirecting.url);
      await order(a!);
      await drain([relay({ retrySchedule: [1_000] })], 1_000);
      expect(redirecting.got.length).toBeGreaterThan(0);
      expect(redirecting.hits()).toBe(redirecting.got.length);
      const log = await webhooks.deliveries(sub.id, 10);
      expect(log.attempts[0]!.error).toContain("redirect");
    });

    test("an endpoint's breaker opens after consecutive failures: its deliveries wait, the others go on", async () => {
      const dead = receiver(() => 503);
      const alive = receiver(() => 200);
      servers.push(dead, alive);
      const deadSub = await subscribe(dead.url);
      await subscribe(alive.url);
      const [a] = await h.items(100);
      for (let i = 0; i < 3; i++) await order(a!);
      const r = relay({ retrySchedule: Array(20).fill(1_000), breakerThreshold: 3, breakerOpenMs: 60_000 });
      await r.tick();
      expect(dead.hits()).toBe(3);
      expect(r.openEndpoints()).toEqual([deadSub.id]);
      // While open: time passes beyond every backoff, the dead endpoint is not called, the live one is served.
      for (let i = 0; i < 5; i++) {
        await h.clock.advance(2_000);
        await r.tick();
      }
      expect(dead.hits()).toBe(3);
      expect(alive.got.filter((g) => g.accepted)).toHaveLength(6);
      await h.clock.advance(60_000);
      expect(r.openEndpoints()).toEqual([]);
      await r.tick();
      expect(dead.hits()).toBe(6);
    });

    test("an endpoint failing for three days is disabled and says why; the others are not held up", async () => {
      const dead = receiver(() => 500);
      const alive = receiver(() => 200);
      servers.push(dead, alive);
      const deadSub = await subscribe(dead.url);
      await subscribe(alive.url);
      const [a] = await h.items(100);
      const r = relay({ retrySchedule: Array(50).fill(6 * 3_600_000), breakerThreshold: 3, breakerOpenMs: 3_600_000 });
      let disabled = false;
      r.onOutcome((o) => (disabled ||= o === "disabled"));
      for (let i = 0; i < 20 && !disabled; i++) {
        await order(a!);
        await r.tick();
        await h.clock.advance(6 * 3_600_000);
      }
      expect(disabled).toBe(true);
      const w = await webhooks.get(deadSub.id);
      expect(w.disabled_at).not.toBeNull();
      expect(w.disabled_reason).toContain("Failing since");
      expect(w.disabled_reason).toContain("HTTP 500");
      const sent = dead.hits();
      await order(a!);
      // One round per event of an order: the confirmation waits for the creation.
      await r.tick();
      await r.tick();
      expect(dead.hits()).toBe(sent);
      // The healthy endpoint got every event meanwhile.
      const all = await sql<{ n: number }>`select count(*)::int as n from orders.webhook_deliveries d join orders.webhooks w on w.id = d.webhook_id where w.url = ${alive.url} and d.state <> 'delivered'`.execute(database.db);
      expect(all.rows[0]!.n).toBe(0);
    });

    test("a disabled endpoint shows its pending deliveries; re-enabling it (keyed) clears its state and the relay sends them", async () => {
      const rx = receiver(() => 200);
      servers.push(rx);
      const sub = await subscribe(rx.url);
      const [a] = await h.items(100);
      await order(a!);
      // The order's two events are queued for the endpoint (fanned out), then it is disabled.
      await fanOut(database, new Date(h.clock.now()), 100);
      await sql`update orders.webhooks set disabled_at = now(), disabled_reason = 'Failing since then', failing_since = now() - interval '3 days' where id = ${sub.id}`.execute(database.db);
      const r = relay();
      await r.tick();
      expect(rx.hits()).toBe(0);
      // They wait, counted.
      const held = await webhooks.get(sub.id);
      expect(held.pending_deliveries).toBe(2);
      expect(held.oldest_pending_at).not.toBeNull();
      expect((await webhooks.list()).find((w) => w.id === sub.id)?.pending_deliveries).toBe(2);

      const key = randomUUID();
      const first = await webhooks.enable(sub.id, key);
      expect(first.status).toBe(200);
      expect(first.replayed).toBe(false);
      const view = JSON.parse(first.body);
      expect(view).toMatchObject({ id: sub.id, disabled_at: null, disabled_reason: null, failing_since: null, pending_deliveries: 2 });
      expect(first.body).not.toContain(sub.secret);
      const again = await webhooks.enable(sub.id, key);
      expect(again).toEqual({ ...first, replayed: true });
      await expect(webhooks.enable("wh_00000000000000000000000000000000", randomUUID())).rejects.toMatchObject({ code: "not_found" });
      await expect(webhooks.remove(sub.id, key)).rejects.toMatchObject({ code: "idempotency_key_reused" });

      await drain([r]);
      expect(rx.hits()).toBe(2);
      expect(await webhooks.get(sub.id)).toMatchObject({ pending_deliveries: 0, oldest_pending_at: null });
    });

    test("catch-up lists events after a cursor, by type; redeliver sends one again with the same id and body", async () => {
      const [a] = await h.items(10);
      const start = (await webhooks.events({ limit: 500 })).next_after;
      const o1 = await order(a!);
      const o2 = await order(a!);
      let after = start ?? undefined;
      const seen: string[] = [];
      for (;;) {
        const page = await webhooks.events({ after, limit: 1 });
        if (page.events.length === 0) break;
        seen.push(...page.events.map((e) => `${orderIdOf(e)}:${e.type}`));
        after = page.next_after!;
      }
      expect(seen).toEqual([`${o1}:order.created`, `${o1}:order.confirmed`, `${o2}:order.created`, `${o2}:order.confirmed`]);
      const confirmedOnly = await webhooks.events({ after: start ?? undefined, types: "order.confirmed", limit: 10 });
      expect(confirmedOnly.events.map((e) => orderIdOf(e))).toEqual([o1, o2]);
      await expect(webhooks.events({ after: "evt_0000000000000000000000000000000000000001" })).rejects.toMatchObject({ code: "not_found" });

      const rx = receiver(() => 200);
      servers.push(rx);
      await subscribe(rx.url);
      const ev = confirmedOnly.events[0]!;
      const key = randomUUID();
      const first = await webhooks.redeliver(ev.id, key);
      expect(JSON.parse(first.body)).toEqual({ event_id: ev.id, deliveries: 1 });
      expect((await webhooks.redeliver(ev.id, key)).replayed).toBe(true);
      await drain([relay()]);
      expect(rx.got).toHaveLength(1);
      expect(rx.got[0]!.id).toBe(ev.id);
      expect(JSON.parse(rx.got[0]!.body)).toEqual(ev);
      await expect(webhooks.redeliver("evt_0000000000000000000000000000000000000001", randomUUID())).rejects.toMatchObject({ code: "not_found" });
    });

    test("past the retention, events, finished deliveries and attempts are forgotten; what is still pending is kept", async () => {
      const ok = receiver(() => 200);
      const down = receiver(() => 500);
      servers.push(ok, down);
      await subscribe(ok.url, ["order.created"]);
      await subscribe(down.url, ["order.confirmed"]);
      // Earlier tests moved their own clocks days ahead; ids follow time only within one clock.
      await sql`delete from orders.outbox_events`.execute(database.db);
      const [a] = await h.items(10);
      const id = await order(a!);
      const r = relay({ retrySchedule: Array(5).fill(40 * 86_400_000) });
      await r.tick();
      expect(await r.purge()).toBe(0);
      await h.clock.advance(31 * 86_400_000);
      await r.purge();
      // The delivered creation is gone with its attempt; the confirmation still waits for its retry.
      expect((await eventsOf(id)).map((e) => e.type)).toEqual(["order.confirmed"]);
      const left = await sql<{ state: string }>`select state from orders.webhook_deliveries d join orders.outbox_events e on e.id = d.event where e.order_id = ${id}`.execute(database.db);
      expect(left.rows).toEqual([{ state: "pending" }]);
      const attempts = await sql<{ n: number }>`select count(*)::int as n from orders.webhook_attempts where event_id like ${`evt_${id.replaceAll("-", "")}%`}`.execute(database.db);
      expect(attempts.rows[0]!.n).toBe(0);
    });

    test("the oldest undelivered age counts events not yet fanned out and deliveries still pending, and is 0 once all are delivered", async () => {
      let up = false;
      const rx = receiver(() => (up ? 200 : 500));
      servers.push(rx);
      await subscribe(rx.url, ["order.created"]);
      const now = () => new Date(h.clock.now());
      await relay().tick(); // whatever earlier tests left is fanned out
      await sql`update orders.webhook_deliveries set state = 'failed' where state = 'pending'`.execute(database.db);
      expect(await oldestUndeliveredAgeS(database, now())).toBe(0);
      const [a] = await h.items(10);
      await order(a!);
      await h.clock.advance(60_000);
      expect(await oldestUndeliveredAgeS(database, now())).toBe(60);
      const r = relay({ retrySchedule: [1_000, 1_000] });
      await r.tick();
      await h.clock.advance(30_000);
      expect(await oldestUndeliveredAgeS(database, now())).toBe(90);
      up = true;
      await r.tick();
      expect(await oldestUndeliveredAgeS(database, now())).toBe(0);
    });

    test("a relay killed mid-attempt loses nothing: the lease runs out and another sends the same event", async () => {
      const rx = receiver(() => 200);
      servers.push(rx);
      await subscribe(rx.url, ["order.created"]);
      const [a] = await h.items(10);
      const id = await order(a!);
      // A relay claims the delivery and dies before sending (its lease is all that is left).
      const { claimDue } = await import("./webhook.repository.ts");
      const { fanOut } = await import("./webhook.repository.ts");
      await fanOut(database, new Date(h.clock.now()), 100);
      const claimed = await claimDue(database, { now: new Date(h.clock.now()), limit: 10, leaseMs: 35_000, leaseId: "dead", skipWebhooks: [] });
      expect(claimed).toHaveLength(1);
      const survivor = relay();
      expect(await survivor.tick()).toBe(0);
      await h.clock.advance(35_000);
      expect(await survivor.tick()).toBe(1);
      const [created] = await eventsOf(id);
      expect(rx.got.map((g) => g.id)).toEqual([created!.event_id]);
    });
  });
}
