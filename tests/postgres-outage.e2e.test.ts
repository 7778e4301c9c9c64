import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { PrivatePostgres, privatePostgresAvailable } from "./support/private-postgres.ts";
import { freePort, RoleProcess, waitFor } from "./support/processes.ts";

/**
 * PostgreSQL goes away under a running Valerix (`all` role, the real executable) while clients
 * place orders: first a fast shutdown (`pg_ctl stop -m fast`: every session gets 57P01), then a
 * `kill -9` of the postmaster (sessions just end). The cluster is the test's own, never the
 * machine's shared server. What clients may see: while PostgreSQL is down, 503 with Retry-After;
 * never a hang, never a crash; once it is back, readiness green and every key answered within
 * seconds without restarting Valerix, every 201/202 final and present, stock conserved.
 */

/** No order request may take longer than this, outage or not (the database's own bounds are shorter). */
const BOUND_MS = 10_000;
/** A key caught in flight must be answered (201/202/422) this soon after PostgreSQL is back. */
const KEY_ANSWERED_WITHIN_MS = 6_000;
const CLIENTS = 4;

interface Answer {
  key: string;
  status: number;
  retryAfter: string | null;
  ms: number;
  at: number;
  orderId?: string;
  problem?: string;
}

describe.skipIf(!privatePostgresAvailable("PostgreSQL outage under load"))("PostgreSQL outage under load", () => {
  let cluster: PrivatePostgres;
  let app: RoleProcess;
  let dbUrl: string;
  const itemId = `pgout-${randomUUID().slice(0, 8)}`;
  const INITIAL = 100_000;
  const auth = { authorization: "Bearer pg-outage-admin", "content-type": "application/json" };

  beforeAll(async () => {
    cluster = await PrivatePostgres.create();
    dbUrl = await cluster.createDatabase("valerix_outage");
    app = new RoleProcess("all", freePort(), {
      DATABASE_URL: dbUrl,
      ADMIN_TOKEN: "pg-outage-admin",
      INVENTORY_TIMEOUT_MS: "1000",
      BREAKER_HALF_OPEN_MS: "1000",
      RETRY_BASE_DELAY_MS: "100",
      RETRY_MAX_DELAY_MS: "1000",
      SWEEP_STRANDED_AFTER_MS: "2000",
      VALERIX_SEED_CATALOG: "false",
    });
    await app.start();
    const created = await fetch(`${app.url}/api/admin/inventory`, {
      method: "POST",
      headers: { ...auth, "idempotency-key": randomUUID() },
      body: JSON.stringify({ item_id: itemId, item_name: itemId, quantity: INITIAL }),
    });
    expect(created.status).toBe(201);
  }, 90_000);

  afterAll(async () => {
    await app?.kill("SIGKILL");
    await cluster?.destroy();
  });

  /** Clients that keep ordering; a client retries its key after 503/409/no answer, as a careful client does. */
  function load() {
    const answers: Answer[] = [];
    let running = true;
    const client = async () => {
      let key = randomUUID();
      while (running) {
        const started = performance.now();
        const a: Answer = { key, status: 0, retryAfter: null, ms: 0, at: Date.now() };
        try {
          const res = await fetch(`${app.url}/api/orders`, {
            method: "POST",
            headers: { "content-type": "application/json", "idempotency-key": key },
            body: JSON.stringify({ item_id: itemId, quantity: 1 }),
            signal: AbortSignal.timeout(BOUND_MS + 5_000),
          });
          a.status = res.status;
          a.retryAfter = res.headers.get("retry-after");
          const body = (await res.json()) as { order_id?: string; type?: string };
          a.orderId = body.order_id;
          a.problem = body.type;
        } catch (err) {
          a.problem = (err as Error).message;
        }
        a.ms = performance.now() - started;
        answers.push(a);
        if ([201, 202, 422].includes(a.status)) key = randomUUID();
        await Bun.sleep(a.status === 503 || a.status === 409 || a.status === 0 ? 100 : 10);
      }
    };
    const clients = Array.from({ length: CLIENTS }, client);
    return {
      answers,
      async stop() {
        running = false;
        await Promise.all(clients);
      },
    };
  }

  async function ready(): Promise<boolean> {
    return (await fetch(`${app.url}/health/ready`, { signal: AbortSignal.timeout(3_000) })).status === 200;
  }

  /** One fault under load; returns what the clients saw and when PostgreSQL was back. */
  async function outage(fault: () => Promise<void>) {
    const l = load();
    await waitFor(async () => l.answers.filter((a) => a.status === 201).length >= 5, 30_000, "orders before the fault");
    const faultAt = Date.now();
    await fault();
    await Bun.sleep(2_500);
    expect(app.proc!.exitCode).toBeNull();
    await cluster.start();
    const backAt = Date.now();
    await waitFor(ready, 15_000, "readiness after PostgreSQL is back");
    const readyAfterMs = Date.now() - backAt;
    // Keep ordering until every key the outage caught is answered (or the bound runs out).
    await Bun.sleep(2_000);
    await waitFor(async () => stuckKeys(l.answers).length === 0, KEY_ANSWERED_WITHIN_MS + 4_000, "keys caught by the outage to be answered").catch(() => {});
    await l.stop();
    return { answers: l.answers, faultAt, backAt, readyAfterMs };
  }

  /** Keys whose last answer was not final (503, 409, none). */
  function stuckKeys(answers: Answer[]): string[] {
    const last = new Map<string, Answer>();
    for (const a of answers) last.set(a.key, a);
    return [...last.values()].filter((a) => ![201, 202, 422].includes(a.status)).map((a) => a.key);
  }

  function check(o: Awaited<ReturnType<typeof outage>>, what: string) {
    const { answers, backAt } = o;
    // The process never exited.
    expect(app.proc!.exitCode).toBeNull();
    // Every answer is one of these; an outage answer is 503 with Retry-After; none hung.
    const statuses = new Set(answers.map((a) => a.status));
    expect([...statuses].filter((s) => ![201, 202, 422, 503, 409].includes(s))).toEqual([]);
    const unavailable = answers.filter((a) => a.status === 503);
    expect(unavailable.length).toBeGreaterThan(0);
    for (const a of unavailable) {
      expect(a.retryAfter).toMatch(/^\d+$/);
      expect(a.problem).toMatch(/database-unavailable|inventory-unavailable/);
    }
    const slowest = Math.max(...answers.map((a) => a.ms));
    expect(slowest).toBeLessThan(BOUND_MS);
    // A key caught by the outage: answered within seconds of PostgreSQL's return, never 409 for a lease.
    const byKey = new Map<string, Answer[]>();
    for (const a of answers) byKey.set(a.key, [...(byKey.get(a.key) ?? []), a]);
    let caught = 0;
    for (const [key, list] of byKey) {
      const final = list.find((a) => [201, 202, 422].includes(a.status));
      if (!final) throw new Error(`${what}: key ${key} never answered: ${list.map((a) => a.status).join(",")}`);
      if (list[0]!.status !== final.status) {
        caught++;
        expect(final.at - backAt).toBeLessThan(KEY_ANSWERED_WITHIN_MS);
      }
      const conflicts = list.filter((a) => a.status === 409);
      if (conflicts.length) expect(conflicts.at(-1)!.at - conflicts[0]!.at).toBeLessThan(KEY_ANSWERED_WITHIN_MS);
      // One order per key, whatever the retries.
      expect(new Set(list.filter((a) => a.orderId && [201, 202].includes(a.status)).map((a) => a.orderId)).size).toBeLessThanOrEqual(1);
    }
    console.info(
      `${what}: ${answers.length} answers (${[...statuses].sort().map((s) => `${s}×${answers.filter((a) => a.status === s).length}`).join(", ")}), ` +
        `slowest ${Math.round(slowest)} ms, ready ${o.readyAfterMs} ms after restart, ${caught} keys caught by the outage and answered after it`,
    );
  }

  const everything: Answer[] = [];

  test("a fast shutdown (57P01 to every session) and a restart", async () => {
    const o = await outage(async () => cluster.stopFast());
    everything.push(...o.answers);
    check(o, "fast shutdown");
  }, 90_000);

  test("a kill -9 of the postmaster and a restart", async () => {
    const o = await outage(() => cluster.killPostmaster());
    everything.push(...o.answers);
    check(o, "kill -9");
  }, 90_000);

  test("afterwards: every 201/202 is final and present, stock conserved", async () => {
    expect(app.proc!.exitCode).toBeNull();
    const accepted = everything.filter((a) => a.status === 201 || a.status === 202);
    expect(accepted.length).toBeGreaterThan(0);
    // The retry worker finishes what was queued (and what the outage left pending).
    await waitFor(
      async () => (await cluster.query<{ n: number }>("select count(*)::int as n from orders.orders where item_id = $1 and status in ('pending', 'queued')", [itemId], dbUrl))[0]!.n === 0,
      30_000,
      "unfinished orders to finish",
    );
    const rows = await cluster.query<{ order_id: string; status: string; quantity: number }>(
      "select order_id, status, quantity from orders.orders where item_id = $1",
      [itemId],
      dbUrl,
    );
    const byId = new Map(rows.map((r) => [r.order_id, r]));
    for (const a of accepted) {
      const row = byId.get(a.orderId!);
      expect(row).toBeDefined();
      if (a.status === 201) expect(row!.status).toBe("confirmed");
      else expect(["confirmed", "rejected", "failed"]).toContain(row!.status);
    }
    const confirmed = rows.filter((r) => r.status === "confirmed").reduce((n, r) => n + r.quantity, 0);
    const item = (await (await fetch(`${app.url}/api/inventory/${itemId}`)).json()) as { quantity: number };
    expect(item.quantity + confirmed).toBe(INITIAL);
    // One order per key in the database too: no order without the key that made it.
    const orphans = await cluster.query<{ n: number }>(
      "select count(*)::int as n from orders.orders o where o.item_id = $1 and not exists (select 1 from orders.idempotency_keys k where k.order_id = o.order_id)",
      [itemId],
      dbUrl,
    );
    expect(orphans[0]!.n).toBe(0);
  }, 60_000);
});
