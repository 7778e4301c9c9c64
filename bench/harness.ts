import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import type { LogLevel } from "../src/config.ts";
import { runLoad, type LoadResult } from "./load.ts";
import { busyPct, cpuMsPer, cpuTicks, machineFacts, postgresCpuSeconds, type MachineFacts } from "./machine.ts";
import { findPgbench, measureLimit, prepareLimitDatabase, QUEUED_BATCH_ORDERS, type LimitResult, type LimitScript } from "./pgbench.ts";
import { postJson, startRole, type RoleProcess } from "./server-process.ts";
import { createDatabase, flushRedis, postgresFacts, redisUrl, redisVersion, type ScratchDatabase, type Services } from "./services.ts";

export type ScenarioName = "all" | "split" | "embedded" | "breaker";
export const SCENARIOS: readonly ScenarioName[] = ["all", "split", "embedded", "breaker"];

export interface BenchOptions {
  durationS: number;
  warmupS: number;
  connections: number;
  /** Distinct items the orders spread over (row contention on stock depends on it). */
  items: number;
  scenarios: readonly ScenarioName[];
  /** Measure the pgbench limit (skipped, ratios are null). */
  limit: boolean;
  /** LOG_LEVEL for the server processes; `info` is the shipped default. */
  logLevel: LogLevel;
  /** Extra environment for every server process (experiments). */
  serverEnv: Record<string, string>;
  /** Extra flags for the bun runtime of every server process (profiling). */
  bunFlags: string[];
  services: Services;
  /** Logs of the server processes and the pgbench script go here. */
  workDir: string;
  log: (line: string) => void;
}

export interface ProcessStats {
  name: string;
  peakRssMb: number;
  /** CPU over the measured window, % of one core. */
  cpuPct: number;
  /** CPU milliseconds this process spent per answered request: robust against a busy machine. */
  cpuMsPerRequest: number;
}

export interface Check {
  name: string;
  target: string;
  actual: string;
  pass: boolean;
}

export interface RunResult {
  label: string;
  load: LoadResult;
  processes: ProcessStats[];
  /** Whole machine over the measured window, % of all cores. */
  machineBusyPct: number;
  ratioToLimit: number | null;
  /** The pgbench run the ratio is taken against (for the 202 path: its one statement, same concurrency). */
  reference: { script: "order" | "queued"; tps: number; latencyMs: LimitResult["latencyMs"] } | null;
  /**
   * For the 202 path under load: pgbench running the statement's group-committed form, `orders`
   * per statement, with as many clients as the server keeps statements in flight. `tps` is statements/s.
   */
  batchedReference?: { orders: number; clients: number; tps: number; latencyMs: LimitResult["latencyMs"] } | null;
  /** PostgreSQL's CPU per answered request over the measured window (null: embedded, or not on this machine). */
  postgresCpuMsPerRequest: number | null;
  /** Units deducted from stock against 201 answers over the whole run. */
  stock: { confirmed: number; deducted: number; ok: boolean } | null;
  checks: Check[];
  notes: string[];
}

export interface ScenarioResult {
  name: ScenarioName;
  runs: RunResult[];
  error?: string;
}

export interface BenchResult {
  version: 1;
  startedAt: string;
  machine: MachineFacts;
  postgres: Record<string, string>;
  redis: string;
  options: { durationS: number; warmupS: number; connections: number; items: number; logLevel: LogLevel; serverEnv: Record<string, string> };
  limit: LimitResult | null;
  scenarios: ScenarioResult[];
}

/** Items are numbered so the pgbench script can draw the same ids the HTTP load uses. */
export const FIRST_ITEM = 100_001;
/** Opening stock per item: more than any run can sell, so no order is refused for stock. */
export const STOCK = 100_000_000;

const ADMIN_TOKEN = `bench-${randomUUID()}`;
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };

const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits;

function itemId(seq: number, items: number): string {
  // A multiplicative hash spreads consecutive requests over the items without a shared PRNG.
  return String(FIRST_ITEM + (Math.imul(seq, 2654435761) >>> 0) % items);
}

async function createItems(baseUrl: string, items: number): Promise<void> {
  for (let i = 0; i < items; i++) {
    await postJson(`${baseUrl}/api/admin/inventory`, { item_id: String(FIRST_ITEM + i), item_name: `bench item ${i + 1}`, quantity: STOCK }, AUTH, [201]);
  }
}

async function unitsDeducted(baseUrl: string, items: number): Promise<number> {
  const res = await fetch(`${baseUrl}/api/inventory`, { signal: AbortSignal.timeout(10_000) });
  const list = (await res.json()) as Array<{ item_id: string; quantity: number }>;
  let deducted = 0;
  for (const it of list) {
    const n = Number(it.item_id);
    if (n >= FIRST_ITEM && n < FIRST_ITEM + items) deducted += STOCK - it.quantity;
  }
  return deducted;
}

interface DriveOptions {
  label: string;
  target: RoleProcess;
  watched: RoleProcess[];
  connections: number;
  /** Where GET /api/inventory answers, for the stock check (null: skip). */
  stockFrom: RoleProcess | null;
  /** Whether the run's database is the PostgreSQL server (false: PGlite inside the server). */
  onPostgres: boolean;
}

/** The PostgreSQL server's CPU can be read from /proc only when it runs on this machine. */
function postgresCpuMeter(s: Services): () => number | null {
  const host = new URL(s.pgAdminUrl).hostname.replace(/^\[|\]$/g, "");
  const local = host === "" || host === "localhost" || host === "::1" || host.startsWith("127.");
  return local ? postgresCpuSeconds : () => null;
}

/** Per statement of the order path: [orders carried, statements run] so far, summed over processes. */
async function groupCommitTotals(processes: RoleProcess[]): Promise<Map<string, [number, number]>> {
  const totals = new Map<string, [number, number]>();
  for (const p of processes) {
    const text = await (await fetch(`${p.url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
    for (const m of text.matchAll(/^group_commit_batch_orders_(sum|count)\{statement="([a-z_]+)"\} ([0-9.e+]+)$/gm)) {
      const t = totals.get(m[2]!) ?? [0, 0];
      t[m[1] === "sum" ? 0 : 1] += Number(m[3]);
      totals.set(m[2]!, t);
    }
  }
  return totals;
}

function batchingNote(before: Map<string, [number, number]>, after: Map<string, [number, number]>): string | null {
  const parts: string[] = [];
  for (const [statement, [orders, statements]] of after) {
    const [o0, s0] = before.get(statement) ?? [0, 0];
    if (statements > s0) parts.push(`${statement} ${round((orders - o0) / (statements - s0), 1)}`);
  }
  return parts.length ? `orders per statement (group commit, warm-up included): ${parts.join(" · ")}` : null;
}

async function drive(o: BenchOptions, d: DriveOptions, limit: LimitResult | null): Promise<RunResult> {
  const tag = randomUUID().slice(0, 8);
  const before = d.stockFrom ? await unitsDeducted(d.stockFrom.url, o.items) : 0;
  const batchesBefore = await groupCommitTotals(d.watched);
  const cpuAt: Record<string, number[]> = {};
  const pgCpu = d.onPostgres ? postgresCpuMeter(o.services) : () => null;
  const pgCpuAt: Array<number | null> = [];
  let ticksStart = cpuTicks();
  let ticksEnd = ticksStart;
  o.log(`  ${d.label}: ${o.warmupS}s warm-up + ${o.durationS}s at ${d.connections} connection(s)`);
  const load = await runLoad({
    host: "127.0.0.1",
    port: d.target.port,
    connections: d.connections,
    warmupMs: o.warmupS * 1000,
    durationMs: o.durationS * 1000,
    request: (conn, seq) => ({
      method: "POST",
      path: "/api/orders",
      headers: { "content-type": "application/json", "idempotency-key": `${tag}-${conn}-${seq}` },
      body: `{"item_id":"${itemId(seq, o.items)}","quantity":1}`,
    }),
    onWindow: (edge) => {
      for (const p of d.watched) (cpuAt[p.name] ??= []).push(p.cpuSeconds());
      pgCpuAt.push(pgCpu());
      if (edge === "start") ticksStart = cpuTicks();
      else ticksEnd = cpuTicks();
    },
  });
  const processes = d.watched.map((p) => {
    const [a = 0, b = 0] = cpuAt[p.name] ?? [];
    return {
      name: p.name,
      peakRssMb: p.peakRssMb(),
      cpuPct: round(((b - a) / o.durationS) * 100),
      cpuMsPerRequest: cpuMsPer(a, b, load.requests) ?? 0,
    };
  });
  const [pgA = null, pgB = null] = pgCpuAt;
  const postgresCpuMsPerRequest = cpuMsPer(pgA, pgB, load.requests);
  const batching = batchingNote(batchesBefore, await groupCommitTotals(d.watched));
  let stock: RunResult["stock"] = null;
  if (d.stockFrom) {
    const deducted = (await unitsDeducted(d.stockFrom.url, o.items)) - before;
    const confirmed = load.allStatuses["201"] ?? 0;
    stock = { confirmed, deducted, ok: confirmed === deducted };
  }
  return {
    label: d.label,
    load,
    processes,
    machineBusyPct: busyPct(ticksStart, ticksEnd),
    ratioToLimit: limit ? round(load.perSecond / limit.tps, 3) : null,
    reference: limit ? { script: "order", tps: limit.tps, latencyMs: limit.latencyMs } : null,
    postgresCpuMsPerRequest,
    stock,
    checks: [],
    notes: batching ? [batching] : [],
  };
}

const only = (statuses: Record<string, number>, code: string) => Object.keys(statuses).every((k) => k === code);
const statusText = (s: Record<string, number>) =>
  Object.entries(s)
    .map(([k, v]) => `${k}×${v}`)
    .join(" ") || "none";

function serverEnv(o: BenchOptions, extra: Record<string, string>): Record<string, string> {
  return { LOG_LEVEL: o.logLevel, ADMIN_TOKEN, VALERIX_SEED_CATALOG: "false", ...extra, ...o.serverEnv };
}

/** A fresh `all` role on PostgreSQL and an emptied Redis DB, with the bench's items created. */
async function startAllRole(o: BenchOptions, databaseUrl: string, name: string): Promise<RoleProcess> {
  await flushRedis(o.services);
  const server = await startRole({
    name: "all",
    env: serverEnv(o, { VALERIX_ROLE: "all", DATABASE_URL: databaseUrl, REDIS_URL: redisUrl(o.services) }),
    bunFlags: o.bunFlags, logFile: join(o.workDir, `${name}.log`),
  });
  await createItems(server.url, o.items);
  return server;
}

/** `all` role on PostgreSQL and Redis. */
async function scenarioAll(o: BenchOptions, limit: LimitResult | null): Promise<RunResult[]> {
  const db = await createDatabase(o.services, "all");
  let server: RoleProcess | undefined;
  try {
    server = await startAllRole(o, db.url, "all");
    const run = await drive(o, { label: `all · ${o.connections} conns`, target: server, watched: [server], connections: o.connections, stockFrom: server, onPostgres: true }, limit);
    const rss = run.processes[0]!.peakRssMb;
    run.checks.push(
      { name: "ratio to pgbench", target: "≥ 0.6", actual: String(run.ratioToLimit ?? "n/a"), pass: (run.ratioToLimit ?? 0) >= 0.6 },
      { name: "p99", target: "< 50 ms", actual: `${run.load.latencyMs.p99} ms`, pass: run.load.latencyMs.p99 < 50 },
      { name: "every answer 201", target: "201 only", actual: statusText(run.load.allStatuses), pass: only(run.load.allStatuses, "201") && run.load.errors === 0 },
      { name: "peak RSS", target: "< 200 MB", actual: `${rss} MB`, pass: rss < 200 },
      { name: "stock = Σ confirmed", target: "equal", actual: `${run.stock?.deducted} / ${run.stock?.confirmed}`, pass: !!run.stock?.ok },
    );
    return [run];
  } finally {
    await server?.stop();
    await db.drop();
  }
}

/** Inventory and orders as two processes, the port over HTTP. */
async function scenarioSplit(o: BenchOptions, limit: LimitResult | null): Promise<RunResult[]> {
  const db = await createDatabase(o.services, "split");
  await flushRedis(o.services);
  let inventory: RoleProcess | undefined;
  let orders: RoleProcess | undefined;
  try {
    const shared = { DATABASE_URL: db.url, REDIS_URL: redisUrl(o.services) };
    inventory = await startRole({ name: "inventory", env: serverEnv(o, { VALERIX_ROLE: "inventory", ...shared }), bunFlags: o.bunFlags, logFile: join(o.workDir, "split-inventory.log") });
    orders = await startRole({
      name: "orders",
      env: serverEnv(o, { VALERIX_ROLE: "orders", INVENTORY_URL: inventory.url, ...shared }),
      bunFlags: o.bunFlags, logFile: join(o.workDir, "split-orders.log"),
    });
    await createItems(inventory.url, o.items);
    const run = await drive(
      o,
      { label: `split · ${o.connections} conns`, target: orders, watched: [orders, inventory], connections: o.connections, stockFrom: inventory, onPostgres: true },
      limit,
    );
    run.checks.push(
      { name: "ratio to pgbench", target: "≥ 0.4", actual: String(run.ratioToLimit ?? "n/a"), pass: (run.ratioToLimit ?? 0) >= 0.4 },
      { name: "every answer 201", target: "201 only", actual: statusText(run.load.allStatuses), pass: only(run.load.allStatuses, "201") && run.load.errors === 0 },
      { name: "stock = Σ confirmed", target: "equal", actual: `${run.stock?.deducted} / ${run.stock?.confirmed}`, pass: !!run.stock?.ok },
    );
    return [run];
  } finally {
    await orders?.stop();
    await inventory?.stop();
    await db.drop();
  }
}

/** No DATABASE_URL, no REDIS_URL: PGlite on disk and the in-memory store, as a fresh install runs. */
async function scenarioEmbedded(o: BenchOptions, _limit: LimitResult | null): Promise<RunResult[]> {
  const dataDir = join(o.workDir, `embedded-data-${randomUUID().slice(0, 8)}`);
  let server: RoleProcess | undefined;
  try {
    // The first start runs initdb, whose memory stays in the peak RSS; measure a reopened data
    // folder, as every later start runs, and report the first start's peak next to it.
    const env = serverEnv(o, { VALERIX_ROLE: "all", VALERIX_DATA_DIR: dataDir });
    const first = await startRole({ name: "embedded (first start)", env, bunFlags: [], logFile: join(o.workDir, "embedded.log"), readyTimeoutMs: 180_000 });
    await createItems(first.url, o.items);
    const firstPeak = first.peakRssMb();
    await first.stop();
    server = await startRole({ name: "embedded", env, bunFlags: o.bunFlags, logFile: join(o.workDir, "embedded.log"), readyTimeoutMs: 180_000 });
    const run = await drive(o, { label: `embedded · ${o.connections} conns`, target: server, watched: [server], connections: o.connections, stockFrom: server, onPostgres: false }, null);
    run.notes.push(`first start (initdb) peaked at ${firstPeak} MB RSS; the run reopened the data folder`);
    run.checks.push(
      { name: "orders/s", target: "≥ 500", actual: String(round(run.load.perSecond)), pass: run.load.perSecond >= 500 },
      { name: "every answer 201", target: "201 only", actual: statusText(run.load.allStatuses), pass: only(run.load.allStatuses, "201") && run.load.errors === 0 },
      { name: "stock = Σ confirmed", target: "equal", actual: `${run.stock?.deducted} / ${run.stock?.confirmed}`, pass: !!run.stock?.ok },
    );
    return [run];
  } finally {
    await server?.stop();
    const { rmSync } = await import("node:fs");
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function breakerState(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  return Number(/^circuit_breaker_state (\d+)/m.exec(text)?.[1] ?? -1);
}

/**
 * The 202 fallback: chaos makes every deduction fail until the breaker opens, then the load
 * measures orders answered `queued` without calling inventory, at full concurrency and at one.
 */
async function scenarioBreaker(o: BenchOptions, limit: LimitResult | null): Promise<RunResult[]> {
  const levels = [...new Set([o.connections, 1])];
  const floors = new Map<number, LimitResult>();
  // The server's statements in flight (GROUP_COMMIT_IN_FLIGHT, default 2): the batched floor's clients.
  const inFlight = Number(o.serverEnv.GROUP_COMMIT_IN_FLIGHT ?? 2);
  let batchedFloor: LimitResult | null = null;
  if (limit) {
    for (const clients of levels) floors.set(clients, await limitRun(o, "queued", clients));
    batchedFloor = await limitRun(o, "queued-batch", inFlight);
  }
  const db = await createDatabase(o.services, "breaker");
  let server: RoleProcess | undefined;
  try {
    server = await startAllRole(o, db.url, "breaker");
    await postJson(`${server.url}/api/admin/chaos`, { crash_rate: 1, crash_mode: 503, ttl_s: 3600 }, AUTH);
    let opened = false;
    for (let i = 0; i < 200 && !opened; i++) {
      await postJson(`${server.url}/api/orders`, { item_id: String(FIRST_ITEM), quantity: 1 }, { "idempotency-key": `trip-${i}-${randomUUID()}` }, [202]);
      if (i % 5 === 4) opened = (await breakerState(server.url)) === 1;
    }
    if (!opened) throw new Error("the breaker did not open under crash_rate 1");
    const runs: RunResult[] = [];
    for (const connections of levels) {
      const floor = floors.get(connections) ?? null;
      const run = await drive(o, { label: `breaker open · ${connections} conn${connections === 1 ? "" : "s"}`, target: server, watched: [server], connections, stockFrom: server, onPostgres: true }, floor);
      if (floor) run.reference = { script: "queued", tps: floor.tps, latencyMs: floor.latencyMs };
      if (batchedFloor && connections > 1) {
        run.batchedReference = { orders: QUEUED_BATCH_ORDERS, clients: inFlight, tps: batchedFloor.tps, latencyMs: batchedFloor.latencyMs };
      }
      const bound = connections === 1 ? 5 : 15;
      run.checks.push(
        { name: "p99", target: `< ${bound} ms`, actual: `${run.load.latencyMs.p99} ms`, pass: run.load.latencyMs.p99 < bound },
        { name: "every answer 202", target: "202 only", actual: statusText(run.load.allStatuses), pass: only(run.load.allStatuses, "202") && run.load.errors === 0 },
        { name: "nothing deducted", target: "0", actual: String(run.stock?.deducted), pass: run.stock?.deducted === 0 },
      );
      runs.push(run);
    }
    return runs;
  } finally {
    await server?.stop();
    await db.drop();
  }
}

const RUNNERS: Record<ScenarioName, (o: BenchOptions, limit: LimitResult | null) => Promise<RunResult[]>> = {
  all: scenarioAll,
  split: scenarioSplit,
  embedded: scenarioEmbedded,
  breaker: scenarioBreaker,
};

async function limitRun(o: BenchOptions, script: LimitScript, clients: number): Promise<LimitResult> {
  const pgbench = findPgbench();
  if (!pgbench) throw new Error("pgbench not found: install PostgreSQL's client tools or set BENCH_PGBENCH");
  const db: ScratchDatabase = await createDatabase(o.services, script === "order" ? "limit" : "floor");
  try {
    await prepareLimitDatabase(db.url, FIRST_ITEM, o.items, STOCK);
    o.log(`  pgbench (${script}): ${o.warmupS}s warm-up + ${o.durationS}s, ${clients} client(s), -M prepared`);
    return await measureLimit({
      script,
      pgbench,
      database: db,
      workDir: o.workDir,
      clients,
      warmupS: o.warmupS,
      durationS: o.durationS,
      firstItem: FIRST_ITEM,
      lastItem: FIRST_ITEM + o.items - 1,
      postgresCpu: postgresCpuMeter(o.services),
    });
  } finally {
    await db.drop();
  }
}

/** Runs the limit, then each scenario; a failing scenario is reported, the others still run. */
export async function runBench(o: BenchOptions): Promise<BenchResult> {
  mkdirSync(o.workDir, { recursive: true });
  const result: BenchResult = {
    version: 1,
    startedAt: new Date().toISOString(),
    machine: machineFacts(),
    postgres: await postgresFacts(o.services),
    redis: await redisVersion(o.services),
    options: { durationS: o.durationS, warmupS: o.warmupS, connections: o.connections, items: o.items, logLevel: o.logLevel, serverEnv: o.serverEnv },
    limit: null,
    scenarios: [],
  };
  if (o.limit) {
    o.log("limit");
    result.limit = await limitRun(o, "order", o.connections);
  }
  for (const name of o.scenarios) {
    o.log(name);
    try {
      result.scenarios.push({ name, runs: await RUNNERS[name](o, result.limit) });
    } catch (err) {
      result.scenarios.push({ name, runs: [], error: (err as Error).message });
    }
  }
  return result;
}
