/**
 * Memory and CPU of each role, for sizing the Kubernetes requests and limits (ops/README.md,
 * "Sizing"). For every role it starts a real `bun src/main.ts` on a fresh PostgreSQL
 * database, reads the resident set (VmRSS) once the process is ready and has idled, drives
 * `POST /api/orders` at the orders side, and reads VmRSS and the peak (VmHWM) again, with the
 * CPU each process spent per order.
 *
 *   bun bench/rss.ts                                  # all, then orders + inventory; 20 s at 32 connections
 *   bun bench/rss.ts --duration 30 --connections 64 --roles split
 *
 * Options: --duration S (20), --warmup S (3), --connections N (32), --idle S (10: how long a
 * fresh process idles before its idle reading), --roles all,split, --redis URL (default: none,
 * so the in-memory cache and the PostgreSQL queue; give a Redis DB index nothing else uses).
 * Environment: BENCH_PG_URL as for `npm run bench`.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { runLoad } from "./load.ts";
import { cpuMsPer } from "./machine.ts";
import { postJson, startRole, type RoleProcess } from "./server-process.ts";
import { createDatabase, servicesFromEnv } from "./services.ts";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "20" },
    warmup: { type: "string", default: "3" },
    connections: { type: "string", default: "32" },
    idle: { type: "string", default: "10" },
    roles: { type: "string", default: "all,split" },
    redis: { type: "string" },
  },
});
const durationS = Number(values.duration);
const warmupS = Number(values.warmup);
const connections = Number(values.connections);
const idleS = Number(values.idle);
const ITEMS = 20;
const ADMIN_TOKEN = `rss-${randomUUID()}`;
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };

const mb = (kb: number) => Math.round((kb / 1024) * 10) / 10;
function statusKb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : 0;
}

interface Row {
  role: string;
  idleRssMb: number;
  loadedRssMb: number;
  peakRssMb: number;
  cpuMsPerOrder: number | null;
  cpuCoresAtLoad: number;
}

async function measure(label: string, processes: RoleProcess[], orders: RoleProcess, stock: RoleProcess): Promise<Row[]> {
  await Bun.sleep(idleS * 1000);
  const idle = processes.map((p) => statusKb(p.pid, "VmRSS"));
  for (let i = 0; i < ITEMS; i++) {
    await postJson(`${stock.url}/api/admin/inventory`, { item_id: `rss-${i}`, item_name: `rss item ${i}`, quantity: 100_000_000 }, AUTH, [201]);
  }
  const cpu: number[][] = processes.map(() => []);
  const tag = randomUUID().slice(0, 8);
  const load = await runLoad({
    host: "127.0.0.1",
    port: orders.port,
    connections,
    warmupMs: warmupS * 1000,
    durationMs: durationS * 1000,
    request: (conn, seq) => ({
      method: "POST",
      path: "/api/orders",
      headers: { "content-type": "application/json", "idempotency-key": `${tag}-${conn}-${seq}` },
      body: `{"item_id":"rss-${seq % ITEMS}","quantity":1}`,
    }),
    onWindow: () => processes.forEach((p, i) => cpu[i]!.push(p.cpuSeconds())),
  });
  console.log(`${label}: ${Math.round(load.perSecond)} orders/s, p99 ${load.latencyMs.p99} ms, answers ${JSON.stringify(load.statuses)}, errors ${load.errors}`);
  return processes.map((p, i) => {
    const [a = 0, b = 0] = cpu[i]!;
    return {
      role: p.name,
      idleRssMb: mb(idle[i]!),
      loadedRssMb: mb(statusKb(p.pid, "VmRSS")),
      peakRssMb: mb(statusKb(p.pid, "VmHWM")),
      cpuMsPerOrder: cpuMsPer(a, b, load.requests),
      cpuCoresAtLoad: Math.round(((b - a) / durationS) * 100) / 100,
    };
  });
}

const services = servicesFromEnv();
const workDir = mkdtempSync(join(tmpdir(), "valerix-rss-"));
const env = (extra: Record<string, string>) => ({
  LOG_LEVEL: "warn",
  ADMIN_TOKEN,
  VALERIX_SEED_CATALOG: "false",
  ...(values.redis ? { REDIS_URL: values.redis } : {}),
  ...extra,
});
const rows: Row[] = [];
const roles = values.roles!.split(",");

if (roles.includes("all")) {
  const db = await createDatabase(services, "rss_all");
  let all: RoleProcess | undefined;
  try {
    all = await startRole({ name: "all", env: env({ VALERIX_ROLE: "all", DATABASE_URL: db.url }), logFile: join(workDir, "all.log") });
    rows.push(...(await measure("all", [all], all, all)));
  } finally {
    await all?.stop();
    await db.drop();
  }
}
if (roles.includes("split")) {
  const db = await createDatabase(services, "rss_split");
  let inventory: RoleProcess | undefined;
  let orders: RoleProcess | undefined;
  try {
    inventory = await startRole({ name: "inventory", env: env({ VALERIX_ROLE: "inventory", DATABASE_URL: db.url }), logFile: join(workDir, "inventory.log") });
    orders = await startRole({
      name: "orders",
      env: env({ VALERIX_ROLE: "orders", INVENTORY_URL: inventory.url, DATABASE_URL: db.url }),
      logFile: join(workDir, "orders.log"),
    });
    rows.push(...(await measure("split", [orders, inventory], orders, inventory)));
  } finally {
    await orders?.stop();
    await inventory?.stop();
    await db.drop();
  }
}
rmSync(workDir, { recursive: true, force: true });

console.log(`\n${durationS} s at ${connections} connections after ${warmupS} s of warm-up; idle = ${idleS} s after ready, no traffic`);
console.log("| role | idle RSS | RSS after load | peak RSS (VmHWM) | CPU per order | cores at this load |");
console.log("|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(`| ${r.role} | ${r.idleRssMb} MB | ${r.loadedRssMb} MB | ${r.peakRssMb} MB | ${r.cpuMsPerOrder ?? "n/a"} ms | ${r.cpuCoresAtLoad} |`);
}
