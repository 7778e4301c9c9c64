/**
 * How many PostgreSQL connections each role holds, at rest and under order load, counted the
 * way an operator would: `pg_stat_activity` grouped by `application_name`. Runs against a private
 * cluster it creates and destroys (never the machine's shared server).
 *
 *   bun bench/connections.ts [--clients 32] [--seconds 8]
 *
 * Prints one line per process: its peak at rest and its peak under load, and the pool size
 * (`DATABASE_POOL_SIZE`) that bounds it.
 */
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { PrivatePostgres } from "../tests/support/private-postgres.ts";
import { freePort, RoleProcess } from "../tests/support/processes.ts";

const { values } = parseArgs({ options: { clients: { type: "string", default: "32" }, seconds: { type: "string", default: "8" } } });
const CLIENTS = Number(values.clients);
const SECONDS = Number(values.seconds);

const COUNT_SQL = `select application_name, count(*)::int as n from pg_stat_activity where datname = $1 group by 1 order by 1`;

async function sample(cluster: PrivatePostgres, db: string, peak: Map<string, number>) {
  for (const r of await cluster.query<{ application_name: string; n: number }>(COUNT_SQL, [db])) {
    peak.set(r.application_name || "(none)", Math.max(peak.get(r.application_name || "(none)") ?? 0, r.n));
  }
}

async function sampleFor(ms: number, cluster: PrivatePostgres, db: string): Promise<Map<string, number>> {
  const peak = new Map<string, number>();
  const until = Date.now() + ms;
  while (Date.now() < until) {
    await sample(cluster, db, peak);
    await Bun.sleep(100);
  }
  return peak;
}

async function load(url: string, itemId: string, ms: number) {
  const until = Date.now() + ms;
  let done = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (Date.now() < until) {
        const res = await fetch(`${url}/api/orders`, {
          method: "POST",
          headers: { "content-type": "application/json", "idempotency-key": randomUUID() },
          body: JSON.stringify({ item_id: itemId, quantity: 1 }),
        }).catch(() => null);
        await res?.arrayBuffer();
        done++;
      }
    }),
  );
  return done;
}

async function measure(cluster: PrivatePostgres, layout: "all" | "split") {
  const db = `valerix_conn_${layout}`;
  const url = await cluster.createDatabase(db);
  const common = { DATABASE_URL: url, ADMIN_TOKEN: "conn-admin", INVENTORY_TOKEN: "conn-admin", LOG_LEVEL: "error" };
  const procs: RoleProcess[] = [];
  let front: RoleProcess;
  if (layout === "all") {
    front = new RoleProcess("all", freePort(), { ...common, VALERIX_ROLE: "all" });
    procs.push(front);
  } else {
    const inventory = new RoleProcess("inventory", freePort(), { ...common, VALERIX_ROLE: "inventory" });
    await inventory.start();
    front = new RoleProcess("orders", freePort(), { ...common, VALERIX_ROLE: "orders", INVENTORY_URL: inventory.url });
    procs.push(inventory, front);
  }
  try {
    await front.start();
    const itemId = `conn-${layout}`;
    const admin = layout === "all" ? front.url : procs[0]!.url;
    await fetch(`${admin}/api/admin/inventory`, {
      method: "POST",
      headers: { authorization: "Bearer conn-admin", "content-type": "application/json", "idempotency-key": randomUUID() },
      body: JSON.stringify({ item_id: itemId, item_name: itemId, quantity: 10_000_000 }),
    });
    // At rest: after start-up work, readiness probes and a metrics scrape, as a cluster would run them.
    await Bun.sleep(2_000);
    for (const p of procs) {
      await fetch(`${p.url}/health/ready`);
      await fetch(`${p.url}/metrics`);
    }
    const rest = await sampleFor(3_000, cluster, db);
    const loaded = sampleFor(SECONDS * 1000, cluster, db);
    const orders = await load(front.url, itemId, SECONDS * 1000);
    const busy = await loaded;
    const names = new Set([...rest.keys(), ...busy.keys()]);
    for (const name of [...names].sort()) {
      console.log(`${layout.padEnd(5)} ${name.replace(/:[^:]*$/, "").padEnd(20)} at rest ${String(rest.get(name) ?? 0).padStart(3)}  under load ${String(busy.get(name) ?? 0).padStart(3)}`);
    }
    console.log(`${layout.padEnd(5)} (${orders} orders in ${SECONDS} s from ${CLIENTS} clients)`);
  } finally {
    for (const p of procs) await p.kill("SIGTERM");
  }
}

const cluster = await PrivatePostgres.create();
try {
  await measure(cluster, "all");
  await measure(cluster, "split");
} finally {
  await cluster.destroy();
}
