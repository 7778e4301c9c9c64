import { mkdirSync } from "node:fs";
import pg from "pg";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import type { LogLevel } from "../src/config.ts";
import { runLoad, type LoadResult } from "./load.ts";
import { busyPct, cpuMsPer, cpuTicks, machineFacts, postgresCpuSeconds, type MachineFacts } from "./machine.ts";
import { findPgbench, itemStride, measureLimit, prepareLimitDatabase, QUEUED_BATCH_ORDERS, type BatchSizes, type LimitResult, type LimitScript } from "./pgbench.ts";
import { postJson, startRole, type RoleProcess } from "./server-process.ts";
import { createDatabase, flushRedis, postgresFacts, redisUrl, redisVersion, type ScratchDatabase, type Services } from "./services.ts";

export type ScenarioName = "all" | "lines" | "split" | "embedded" | "breaker";
export const SCENARIOS: readonly ScenarioName[] = ["all", "lines", "split", "embedded", "breaker"];
/** Scenarios whose orders are one line, which a checkout from before orders had lines can run too. */
const ONE_LINE: readonly ScenarioName[] = ["all", "split", "embedded", "breaker"];
/** Scenarios that `--webhook-compare` runs a second time with a subscribed endpoint. */
const WITH_WEBHOOK: readonly ScenarioName[] = ["all", "lines"];

export interface BenchOptions {
  durationS: number;
  warmupS: number;
  connections: number;
  /** Distinct items the orders spread over (row contention on stock depends on it). */
  items: number;
  /** Lines per order in the `lines` scenario (distinct items each). */
  lines: number;
  /** After the closed-loop run of `all` and `lines`, a run at half its rate with a fixed arrival rate. */
  openLoop: boolean;
  /**
   * Another commit's tree to run the one-line scenarios on as well, in the same run: before/after.
   * `first`: whether its runs go before the current tree's (alternate it between rounds).
   */
  base: { rev: string; root: string; first: boolean } | null;
  /**
   * Also run `all` and `lines` with one endpoint subscribed to every event (a loopback receiver
   * in this process answering 204), so the relay delivers during the load: with ÷ without in one
   * run. `first`: whether the subscribed run goes first (alternate it between rounds).
   */
  webhook: { first: boolean } | null;
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
  /** The `--against` commit this run's servers came from (null: the current tree). */
  base: string | null;
  /** Lines per order. */
  lines: number;
  load: LoadResult;
  processes: ProcessStats[];
  /** Whole machine over the measured window, % of all cores. */
  machineBusyPct: number;
  /** To `ownLimit` where there is one, else to `reference`. */
  ratioToLimit: number | null;
  /** To pgbench's one order per commit (`reference`, one-line orders only). */
  ratioToOrderScript: number | null;
  /** The pgbench run of one order per commit (for the 202 path: its one statement, same concurrency). */
  reference: { script: "order" | "queued"; tps: number; latencyMs: LimitResult["latencyMs"] } | null;
  /** Mean orders per group-committed statement over the measured window, per statement. */
  batchSizes: Partial<Record<string, number>>;
  /**
   * The limit: PostgreSQL alone running the app's own group-committed statements (claim, deduct,
   * confirm) at the batch sizes this run measured, orders of the same lines.
   */
  ownLimit: { clients: number; sizes: BatchSizes; ordersPerSecond: number; latencyMs: LimitResult["latencyMs"]; postgresCpuMsPerOrder: number | null } | null;
  /** The same server at a fixed arrival rate of half this run's orders/s (open loop). */
  openLoop: LoadResult | null;
  /**
   * For the 202 path under load: pgbench running the statement's group-committed form, `orders`
   * per statement, with as many clients as the server keeps statements in flight. `tps` is statements/s.
   */
  batchedReference?: { orders: number; clients: number; tps: number; latencyMs: LimitResult["latencyMs"] } | null;
  /** PostgreSQL's CPU per answered request over the measured window (null: embedded, or not on this machine). */
  postgresCpuMsPerRequest: number | null;
  /**
   * With a subscribed endpoint (`webhook ·` runs): outbox events written over the whole run, the
   * webhooks the receiver got inside the measured window, and in all once the relay had drained.
   */
  webhook?: WebhookTally | null;
  /** Units deducted from stock against 201 answers over the whole run. */
  stock: { confirmed: number; deducted: number; ok: boolean } | null;
  checks: Check[];
  notes: string[];
}

export interface WebhookTally {
  events: number;
  deliveredInWindow: number;
  delivered: number;
  /** From the end of the load until every event had arrived (or the wait gave up). */
  drainMs: number;
}

export interface ScenarioResult {
  name: ScenarioName;
  /** The `--against` commit its servers came from (null: the current tree). */
  base: string | null;
  runs: RunResult[];
  error?: string;
}

export interface BenchResult {
  version: 2;
  startedAt: string;
  machine: MachineFacts;
  postgres: Record<string, string>;
  redis: string;
  options: {
    durationS: number;
    warmupS: number;
    connections: number;
    items: number;
    lines: number;
    logLevel: LogLevel;
    serverEnv: Record<string, string>;
    against: string | null;
    webhook?: boolean;
  };
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

function itemId(seq: number, items: number, line = 0, stride = 0): string {
  // A multiplicative hash spreads consecutive requests over the items without a shared PRNG;
  // an order's later lines take the items `stride` apart (bench/pgbench.ts spreads them alike).
  return String(FIRST_ITEM + (((Math.imul(seq, 2654435761) >>> 0) + line * stride) % items));
}

/** The body of order `seq`: the seed's one-item form, or `lines` lines over distinct items. */
export function orderBody(seq: number, items: number, lines: number): string {
  if (lines === 1) return `{"item_id":"${itemId(seq, items)}","quantity":1}`;
  const stride = itemStride(items, lines);
  const out = Array.from({ length: lines }, (_, l) => `{"item_id":"${itemId(seq, items, l, stride)}","quantity":1}`);
  return `{"lines":[${out.join(",")}]}`;
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
  /** Lines per order (1: the seed's one-item body). */
  lines?: number;
  /** Open loop at this rate (orders/s) instead of a closed loop. */
  ratePerSecond?: number;
  /** The `--against` commit the servers came from (null: the current tree). */
  base?: string | null;
  target: RoleProcess;
  watched: RoleProcess[];
  connections: number;
  /** Where GET /api/inventory answers, for the stock check (null: skip). */
  stockFrom: RoleProcess | null;
  /** Whether the run's database is the PostgreSQL server (false: PGlite inside the server). */
  onPostgres: boolean;
  /** Called at the measured window's edges, besides the harness's own readings. */
  onWindow?: (edge: "start" | "end") => void;
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

/** Mean orders per statement between two readings, per statement that ran. */
function batchMeans(before: Map<string, [number, number]>, after: Map<string, [number, number]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [statement, [orders, statements]] of after) {
    const [o0, s0] = before.get(statement) ?? [0, 0];
    if (statements > s0) out[statement] = round((orders - o0) / (statements - s0), 2);
  }
  return out;
}

async function drive(o: BenchOptions, d: DriveOptions, limit: LimitResult | null): Promise<RunResult> {
  const tag = randomUUID().slice(0, 8);
  const lines = d.lines ?? 1;
  const before = d.stockFrom ? await unitsDeducted(d.stockFrom.url, o.items) : 0;
  // Batch sizes over the measured window: read when it opens and right after it closes.
  let batchesBefore: Promise<Map<string, [number, number]>> = Promise.resolve(new Map());
  const cpuAt: Record<string, number[]> = {};
  const pgCpu = d.onPostgres ? postgresCpuMeter(o.services) : () => null;
  const pgCpuAt: Array<number | null> = [];
  let ticksStart = cpuTicks();
  let ticksEnd = ticksStart;
  const mode = d.ratePerSecond ? `open loop at ${round(d.ratePerSecond, 0)} orders/s over` : "at";
  o.log(`  ${d.label}: ${o.warmupS}s warm-up + ${o.durationS}s ${mode} ${d.connections} connection(s)`);
  const load = await runLoad({
    host: "127.0.0.1",
    port: d.target.port,
    connections: d.connections,
    warmupMs: o.warmupS * 1000,
    durationMs: o.durationS * 1000,
    ...(d.ratePerSecond ? { ratePerSecond: d.ratePerSecond } : {}),
    request: (conn, seq) => ({
      method: "POST",
      path: "/api/orders",
      headers: { "content-type": "application/json", "idempotency-key": `${tag}-${conn}-${seq}` },
      body: orderBody(seq, o.items, lines),
    }),
    onWindow: (edge) => {
      d.onWindow?.(edge);
      for (const p of d.watched) (cpuAt[p.name] ??= []).push(p.cpuSeconds());
      pgCpuAt.push(pgCpu());
      if (edge === "start") {
        ticksStart = cpuTicks();
        batchesBefore = groupCommitTotals(d.watched);
      } else ticksEnd = cpuTicks();
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
  const batchSizes = batchMeans(await batchesBefore, await groupCommitTotals(d.watched));
  let stock: RunResult["stock"] = null;
  if (d.stockFrom) {
    const deducted = (await unitsDeducted(d.stockFrom.url, o.items)) - before;
    const confirmed = load.allStatuses["201"] ?? 0;
    stock = { confirmed, deducted, ok: confirmed * lines === deducted };
  }
  const reference = limit && lines === 1 ? limit : null;
  const ratio = reference ? round(load.perSecond / reference.tps, 3) : null;
  return {
    label: d.label,
    base: d.base ?? null,
    lines,
    load,
    processes,
    machineBusyPct: busyPct(ticksStart, ticksEnd),
    ratioToLimit: ratio,
    ratioToOrderScript: ratio,
    reference: reference ? { script: "order", tps: reference.tps, latencyMs: reference.latencyMs } : null,
    batchSizes,
    ownLimit: null,
    openLoop: null,
    postgresCpuMsPerRequest,
    stock,
    checks: [],
    notes: [],
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

/** What a scenario runs against: the limit, and whether its servers come from the `--against` tree. */
interface Context {
  limit: LimitResult | null;
  /** The `--against` commit (its runs are labelled `before ·` and measure no limit of their own). */
  base: string | null;
  root: string | undefined;
  /** One endpoint subscribed to every event during the load (runs labelled `webhook ·`, no limit or open loop of their own). */
  webhook?: boolean;
}

const labelFor = (c: Context, label: string) => (c.base ? `before · ${label}` : c.webhook ? `webhook · ${label}` : label);
/** A run that is only the comparison's other half: it measures no limit and no open loop. */
const pairedOnly = (c: Context) => !!c.base || !!c.webhook;

/** A loopback webhook receiver: answers every POST 204 at once and counts them. */
function startReceiver(): { url: string; count: () => number; stop: () => void } {
  let count = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch() {
      count++;
      return new Response(null, { status: 204 });
    },
  });
  return { url: `http://127.0.0.1:${server.port}/hooks`, count: () => count, stop: () => server.stop(true) };
}

async function outboxEvents(databaseUrl: string): Promise<number> {
  const c = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
  await c.connect();
  try {
    return Number((await c.query("select count(*)::int as n from orders.outbox_events")).rows[0].n);
  } finally {
    await c.end();
  }
}

/** Waits until the receiver has every event the outbox holds, or until it stops getting any for `quietMs`. */
async function drainWebhooks(received: () => number, events: () => Promise<number>, quietMs = 10_000, maxMs = 120_000): Promise<number> {
  const start = performance.now();
  let last = received();
  let lastChange = start;
  for (;;) {
    const n = received();
    if (n >= (await events())) break;
    const now = performance.now();
    if (n !== last) [last, lastChange] = [n, now];
    if (now - lastChange > quietMs || now - start > maxMs) break;
    await Bun.sleep(250);
  }
  return Math.round(performance.now() - start);
}

/** A fresh `all` role on PostgreSQL and an emptied Redis DB, with the bench's items created. */
async function startAllRole(o: BenchOptions, c: Context, databaseUrl: string, name: string): Promise<RoleProcess> {
  await flushRedis(o.services);
  const server = await startRole({
    name: "all",
    env: serverEnv(o, { VALERIX_ROLE: "all", DATABASE_URL: databaseUrl, REDIS_URL: redisUrl(o.services) }),
    bunFlags: o.bunFlags, logFile: join(o.workDir, `${name}${c.base ? "-before" : ""}.log`), root: c.root,
  });
  await createItems(server.url, o.items);
  return server;
}

/** The mean batch sizes of the order path's three statements, as the limit replays them. */
function orderPathSizes(run: RunResult): BatchSizes | null {
  const { claim, deduct, transition } = run.batchSizes;
  return claim && deduct && transition ? { claim, deduct, transition } : null;
}

/**
 * PostgreSQL alone running the run's own group-committed statements at the batch sizes the run
 * measured, with as many clients as the server keeps order-path statements in flight (three kinds,
 * GROUP_COMMIT_IN_FLIGHT of each). The run's ratio is taken against it.
 */
async function attachOwnLimit(o: BenchOptions, c: Context, run: RunResult): Promise<void> {
  const sizes = orderPathSizes(run);
  if (!o.limit || pairedOnly(c) || !sizes) return;
  const clients = 3 * Number(o.serverEnv.GROUP_COMMIT_IN_FLIGHT ?? 2);
  // One prepared batch per pgbench transaction: room for four times the app's rate (the run
  // fails rather than measure empty batches if PostgreSQL alone goes faster than that).
  const smallest = Math.max(1, Math.floor(Math.min(sizes.claim, sizes.deduct, sizes.transition)));
  const batches = Math.ceil((Math.max(500, 4 * run.load.perSecond) * (o.warmupS + o.durationS + 2)) / smallest);
  const l = await limitRun(o, "order-batch", clients, { lines: run.lines, sizes, batches });
  if (!l.ordersPerSecond) throw new Error("the own-statement limit recorded no orders");
  run.ownLimit = { clients, sizes, ordersPerSecond: l.ordersPerSecond, latencyMs: l.latencyMs, postgresCpuMsPerOrder: l.postgresCpuMsPerTransaction };
  run.ratioToLimit = round(run.load.perSecond / l.ordersPerSecond, 3);
}

/** The same server at half the closed-loop run's orders/s, arrivals at a fixed rate. */
async function attachOpenLoop(o: BenchOptions, c: Context, run: RunResult, d: DriveOptions): Promise<void> {
  if (!o.openLoop || pairedOnly(c) || run.load.perSecond <= 0) return;
  const open = await drive(o, { ...d, ratePerSecond: run.load.perSecond / 2 }, null);
  run.openLoop = open.load;
  if (run.stock && open.stock) {
    const confirmed = run.stock.confirmed + open.stock.confirmed;
    const deducted = run.stock.deducted + open.stock.deducted;
    run.stock = { confirmed, deducted, ok: run.stock.ok && open.stock.ok };
  }
}

/** `all` role on PostgreSQL and Redis, orders of `lines` lines. */
async function allRole(o: BenchOptions, c: Context, lines: number): Promise<RunResult[]> {
  const name = lines === 1 ? "all" : "lines";
  const db = await createDatabase(o.services, name);
  let server: RoleProcess | undefined;
  const receiver = c.webhook ? startReceiver() : null;
  let run: RunResult;
  try {
    server = await startAllRole(o, c, db.url, name);
    const label = labelFor(c, lines === 1 ? `all · ${o.connections} conns` : `all · ${lines} lines · ${o.connections} conns`);
    const d: DriveOptions = { label, lines, base: c.base, target: server, watched: [server], connections: o.connections, stockFrom: server, onPostgres: true };
    const inWindow: number[] = [];
    if (receiver) {
      await postJson(`${server.url}/api/admin/webhooks`, { url: receiver.url, events: ["*"] }, { ...AUTH, "idempotency-key": randomUUID() }, [201]);
      d.onWindow = () => inWindow.push(receiver.count());
    }
    run = await drive(o, d, pairedOnly(c) ? null : c.limit);
    await attachOpenLoop(o, c, run, { ...d, label: `${label} · open loop` });
    if (receiver) {
      const drainMs = await drainWebhooks(receiver.count, () => outboxEvents(db.url));
      const [a = 0, b = 0] = inWindow;
      run.webhook = { events: await outboxEvents(db.url), deliveredInWindow: b - a, delivered: receiver.count(), drainMs };
      const w = run.webhook;
      run.notes.push(
        `webhooks: ${w.deliveredInWindow} delivered in the measured window (${round(w.deliveredInWindow / o.durationS, 0)}/s), ` +
          `${w.delivered} of ${w.events} outbox events in all, ${w.drainMs} ms after the load`,
      );
    }
  } finally {
    receiver?.stop();
    await server?.stop();
    await db.drop();
  }
  await attachOwnLimit(o, c, run);
  const rss = run.processes[0]!.peakRssMb;
  // A `before ·` run measures no limit of its own: its statements are not this tree's.
  if (run.webhook) run.checks.push({ name: "every event sent", target: "all", actual: `${run.webhook.delivered} / ${run.webhook.events}`, pass: run.webhook.delivered >= run.webhook.events });
  if (!pairedOnly(c)) run.checks.push({ name: "ratio to limit", target: "≥ 0.6", actual: String(run.ratioToLimit ?? "n/a"), pass: (run.ratioToLimit ?? 0) >= 0.6 });
  run.checks.push(
    { name: "p99", target: "< 50 ms", actual: `${run.load.latencyMs.p99} ms`, pass: run.load.latencyMs.p99 < 50 },
    { name: "every answer 201", target: "201 only", actual: statusText(run.load.allStatuses), pass: only(run.load.allStatuses, "201") && run.load.errors === 0 },
    { name: "peak RSS", target: "< 200 MB", actual: `${rss} MB`, pass: rss < 200 },
    { name: "stock = Σ confirmed", target: "equal", actual: `${run.stock?.deducted} / ${run.stock?.confirmed}${lines > 1 ? ` × ${lines}` : ""}`, pass: !!run.stock?.ok },
  );
  if (run.openLoop) {
    const l = run.openLoop;
    run.checks.push({ name: "open loop answers", target: "201 only", actual: statusText(l.allStatuses), pass: only(l.allStatuses, "201") && l.errors === 0 });
  }
  return [run];
}

const scenarioAll = (o: BenchOptions, c: Context) => allRole(o, c, 1);
const scenarioLines = (o: BenchOptions, c: Context) => allRole(o, c, Math.min(o.lines, o.items));

/** Inventory and orders as two processes, the port over HTTP. */
async function scenarioSplit(o: BenchOptions, c: Context): Promise<RunResult[]> {
  const db = await createDatabase(o.services, "split");
  await flushRedis(o.services);
  let inventory: RoleProcess | undefined;
  let orders: RoleProcess | undefined;
  let run: RunResult;
  const suffix = c.base ? "-before" : "";
  try {
    const shared = { DATABASE_URL: db.url, REDIS_URL: redisUrl(o.services) };
    inventory = await startRole({
      name: "inventory", env: serverEnv(o, { VALERIX_ROLE: "inventory", ...shared }), bunFlags: o.bunFlags, logFile: join(o.workDir, `split-inventory${suffix}.log`), root: c.root,
    });
    orders = await startRole({
      name: "orders",
      env: serverEnv(o, { VALERIX_ROLE: "orders", INVENTORY_URL: inventory.url, ...shared }),
      bunFlags: o.bunFlags, logFile: join(o.workDir, `split-orders${suffix}.log`), root: c.root,
    });
    await createItems(inventory.url, o.items);
    run = await drive(
      o,
      { label: labelFor(c, `split · ${o.connections} conns`), base: c.base, target: orders, watched: [orders, inventory], connections: o.connections, stockFrom: inventory, onPostgres: true },
      c.base ? null : c.limit,
    );
  } finally {
    await orders?.stop();
    await inventory?.stop();
    await db.drop();
  }
  await attachOwnLimit(o, c, run);
  if (!c.base) run.checks.push({ name: "ratio to limit", target: "≥ 0.4", actual: String(run.ratioToLimit ?? "n/a"), pass: (run.ratioToLimit ?? 0) >= 0.4 });
  run.checks.push(
    { name: "every answer 201", target: "201 only", actual: statusText(run.load.allStatuses), pass: only(run.load.allStatuses, "201") && run.load.errors === 0 },
    { name: "stock = Σ confirmed", target: "equal", actual: `${run.stock?.deducted} / ${run.stock?.confirmed}`, pass: !!run.stock?.ok },
  );
  return [run];
}

/** No DATABASE_URL, no REDIS_URL: PGlite on disk and the in-memory store, as a fresh install runs. */
async function scenarioEmbedded(o: BenchOptions, c: Context): Promise<RunResult[]> {
  const dataDir = join(o.workDir, `embedded-data-${randomUUID().slice(0, 8)}`);
  let server: RoleProcess | undefined;
  try {
    // The first start runs initdb, whose memory stays in the peak RSS; measure a reopened data
    // folder, as every later start runs, and report the first start's peak next to it.
    const env = serverEnv(o, { VALERIX_ROLE: "all", VALERIX_DATA_DIR: dataDir });
    const logFile = join(o.workDir, `embedded${c.base ? "-before" : ""}.log`);
    const first = await startRole({ name: "embedded (first start)", env, bunFlags: [], logFile, readyTimeoutMs: 180_000, root: c.root });
    await createItems(first.url, o.items);
    const firstPeak = first.peakRssMb();
    await first.stop();
    server = await startRole({ name: "embedded", env, bunFlags: o.bunFlags, logFile, readyTimeoutMs: 180_000, root: c.root });
    const run = await drive(
      o,
      { label: labelFor(c, `embedded · ${o.connections} conns`), base: c.base, target: server, watched: [server], connections: o.connections, stockFrom: server, onPostgres: false },
      null,
    );
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
 * Then pgbench runs the 202 path's statement at the same concurrencies, and its group-committed
 * form at the batch size the full-concurrency run measured.
 */
async function scenarioBreaker(o: BenchOptions, c: Context): Promise<RunResult[]> {
  const levels = [...new Set([o.connections, 1])];
  // The server's statements in flight (GROUP_COMMIT_IN_FLIGHT, default 2): the batched floor's clients.
  const inFlight = Number(o.serverEnv.GROUP_COMMIT_IN_FLIGHT ?? 2);
  const db = await createDatabase(o.services, "breaker");
  let server: RoleProcess | undefined;
  const runs: RunResult[] = [];
  try {
    server = await startAllRole(o, c, db.url, "breaker");
    await postJson(`${server.url}/api/admin/chaos`, { crash_rate: 1, crash_mode: 503, ttl_s: 3600 }, AUTH);
    let opened = false;
    for (let i = 0; i < 200 && !opened; i++) {
      await postJson(`${server.url}/api/orders`, { item_id: String(FIRST_ITEM), quantity: 1 }, { "idempotency-key": `trip-${i}-${randomUUID()}` }, [202]);
      if (i % 5 === 4) opened = (await breakerState(server.url)) === 1;
    }
    if (!opened) throw new Error("the breaker did not open under crash_rate 1");
    for (const connections of levels) {
      const label = labelFor(c, `breaker open · ${connections} conn${connections === 1 ? "" : "s"}`);
      runs.push(await drive(o, { label, base: c.base, target: server, watched: [server], connections, stockFrom: server, onPostgres: true }, null));
    }
  } finally {
    await server?.stop();
    await db.drop();
  }
  for (const [i, run] of runs.entries()) {
    const connections = levels[i]!;
    if (c.limit && !c.base) {
      const floor = await limitRun(o, "queued", connections);
      run.reference = { script: "queued", tps: floor.tps, latencyMs: floor.latencyMs };
      run.ratioToLimit = run.ratioToOrderScript = round(run.load.perSecond / floor.tps, 3);
      if (connections > 1) {
        const orders = Math.max(1, Math.round(run.batchSizes.claim_queued ?? QUEUED_BATCH_ORDERS));
        const batched = await limitRun(o, "queued-batch", inFlight, undefined, orders);
        run.batchedReference = { orders, clients: inFlight, tps: batched.tps, latencyMs: batched.latencyMs };
      }
    }
    const bound = connections === 1 ? 5 : 15;
    run.checks.push(
      { name: "p99", target: `< ${bound} ms`, actual: `${run.load.latencyMs.p99} ms`, pass: run.load.latencyMs.p99 < bound },
      { name: "every answer 202", target: "202 only", actual: statusText(run.load.allStatuses), pass: only(run.load.allStatuses, "202") && run.load.errors === 0 },
      { name: "nothing deducted", target: "0", actual: String(run.stock?.deducted), pass: run.stock?.deducted === 0 },
    );
  }
  return runs;
}

const RUNNERS: Record<ScenarioName, (o: BenchOptions, c: Context) => Promise<RunResult[]>> = {
  all: scenarioAll,
  lines: scenarioLines,
  split: scenarioSplit,
  embedded: scenarioEmbedded,
  breaker: scenarioBreaker,
};

async function limitRun(o: BenchOptions, script: LimitScript, clients: number, batch?: { lines: number; sizes: BatchSizes; batches: number }, queuedOrders?: number): Promise<LimitResult> {
  const pgbench = findPgbench();
  if (!pgbench) throw new Error("pgbench not found: install PostgreSQL's client tools or set BENCH_PGBENCH");
  const db: ScratchDatabase = await createDatabase(o.services, script === "order" || script === "order-batch" ? "limit" : "floor");
  try {
    await prepareLimitDatabase(db.url, FIRST_ITEM, o.items, STOCK);
    const what = batch ? ` ${batch.lines} line(s), orders per statement ${batch.sizes.claim}/${batch.sizes.deduct}/${batch.sizes.transition}` : queuedOrders ? ` ${queuedOrders} orders per statement` : "";
    o.log(`  pgbench (${script}${what}): ${o.warmupS}s warm-up + ${o.durationS}s, ${clients} client(s), -M prepared`);
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
      ...(batch ? { batch } : {}),
      ...(queuedOrders ? { queuedOrders } : {}),
    });
  } finally {
    await db.drop();
  }
}

/**
 * Runs the limit, then each scenario; a failing scenario is reported, the others still run.
 * With `base`, each one-line scenario also runs on that tree, right before or after the current
 * one, so before/after share the machine's state as closely as one run can.
 */
export async function runBench(o: BenchOptions): Promise<BenchResult> {
  mkdirSync(o.workDir, { recursive: true });
  const result: BenchResult = {
    version: 2,
    startedAt: new Date().toISOString(),
    machine: machineFacts(),
    postgres: await postgresFacts(o.services),
    redis: await redisVersion(o.services),
    options: {
      durationS: o.durationS, warmupS: o.warmupS, connections: o.connections, items: o.items, lines: o.lines,
      logLevel: o.logLevel, serverEnv: o.serverEnv, against: o.base?.rev ?? null, webhook: !!o.webhook,
    },
    limit: null,
    scenarios: [],
  };
  if (o.limit) {
    o.log("limit");
    result.limit = await limitRun(o, "order", o.connections);
  }
  const current: Context = { limit: result.limit, base: null, root: undefined };
  for (const name of o.scenarios) {
    const contexts = [current];
    if (o.base && ONE_LINE.includes(name)) {
      const before: Context = { limit: result.limit, base: o.base.rev, root: o.base.root };
      if (o.base.first) contexts.unshift(before);
      else contexts.push(before);
    }
    if (o.webhook && WITH_WEBHOOK.includes(name)) {
      const subscribed: Context = { ...current, webhook: true };
      if (o.webhook.first) contexts.unshift(subscribed);
      else contexts.push(subscribed);
    }
    for (const c of contexts) {
      o.log(c.base ? `${name} (before: ${c.base})` : c.webhook ? `${name} (one endpoint subscribed)` : name);
      try {
        result.scenarios.push({ name, base: c.base, runs: await RUNNERS[name](o, c) });
      } catch (err) {
        result.scenarios.push({ name, base: c.base, runs: [], error: (err as Error).message });
      }
    }
  }
  return result;
}
