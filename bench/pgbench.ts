import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase } from "../platform/db.ts";
import { migrateModule } from "../migrations/index.ts";
import { cpuMsPer } from "./machine.ts";
import { REPO_ROOT } from "./server-process.ts";
import type { ScratchDatabase } from "./services.ts";
import { summarize, type LatencySummary } from "./stats.ts";

/**
 * The limit: PostgreSQL running, with nothing in front of it, the statements one order costs.
 * The SQL is read out of the repositories' source, so the limit follows the application when its
 * statements change. Parameters become pgbench variables (prepared, like the app's named
 * statements); where pgbench cannot produce a value the app passes (a fresh uuid, the current
 * time, a null) a SQL expression stands in for the parameter.
 */

export const ORDER_REPOSITORY = "modules/orders/internal/order.repository.ts";
export const INVENTORY_REPOSITORY = "modules/inventory/internal/inventory.repository.ts";

/** `const NAME_SQL = \`…\`` constants of a source file, by name. */
export function readStatements(relPath: string): Record<string, string> {
  const text = readFileSync(join(REPO_ROOT, relPath), "utf8");
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/const\s+([A-Z0-9_]+_SQL)\s*=\s*`([^`]*)`/g)) out[m[1]!] = m[2]!.trim();
  return out;
}

/** Replaces `$n` by `params[n]`; every placeholder must be bound. */
export function bindParams(sql: string, params: Record<number, string>): string {
  return sql.replace(/\$(\d+)/g, (_, n: string) => {
    const v = params[Number(n)];
    if (v === undefined) throw new Error(`no binding for $${n} in:\n${sql}`);
    return v;
  });
}

/**
 * A new order's parameters as order.repository.ts `claim()` and `claimQueued()` pass them ($1–$9):
 * key, fingerprint, order id, item, quantity, time, key TTL, request id, lines.
 */
const CLAIM_BINDINGS: Record<number, string> = {
  1: ":key",
  2: ":fp",
  3: "gen_random_uuid()",
  4: ":item",
  5: ":qty",
  6: "now()",
  7: ":ttl",
  8: ":key",
  // The order's lines as JSON text (`JSON.stringify(o.lines)`): one line of the drawn item.
  9: `json_build_array(json_build_object('item_id', :item::text, 'quantity', :qty::int))::text`,
};

export interface OrderScriptOptions {
  /** First and last numeric item id (items are named by number so pgbench can draw them). */
  firstItem: number;
  lastItem: number;
}

/** The pgbench script for one order: claim (key + order + history), deduct, confirm (+ history + key response). */
export function orderScript(o: OrderScriptOptions): { script: string; defines: Record<string, string> } {
  const orders = readStatements(ORDER_REPOSITORY);
  const inventory = readStatements(INVENTORY_REPOSITORY);
  const claimSql = orders.CLAIM_SQL;
  const transitionSql = orders.TRANSITION_SQL;
  const deductSql = inventory.DEDUCT_SQL;
  if (!claimSql || !transitionSql || !deductSql) {
    throw new Error(`expected CLAIM_SQL and TRANSITION_SQL in ${ORDER_REPOSITORY}, DEDUCT_SQL in ${INVENTORY_REPOSITORY}`);
  }
  const claim = bindParams(claimSql, CLAIM_BINDINGS);
  // inventory.repository.ts `deduct()`: one order of one line, as parallel arrays.
  const deduct = bindParams(deductSql, { 1: "array[:order_id]", 2: "array[:item]", 3: "array[:qty]" });
  // order.repository.ts `transition()` to confirmed, with the 201 body stored on the key.
  const confirm = bindParams(transitionSql, {
    1: ":order_id",
    2: ":to",
    3: "null",
    4: "now()",
    5: ":zero",
    6: ":from",
    7: ":status",
    8: ":body",
    9: "null",
  });
  const script = [
    `\\set item random(${o.firstItem}, ${o.lastItem})`,
    // 60 random bits: a repeat within one run is about as likely as a uuid collision.
    `\\set key random(1, 1000000000000000000)`,
    `${claim}`,
    `\\gset`,
    `${deduct};`,
    `${confirm};`,
    "",
  ].join("\n");
  const at = new Date().toISOString();
  const sampleOrder = {
    order_id: "00000000-0000-4000-8000-000000000000",
    lines: [{ item_id: String(o.lastItem), quantity: 1 }],
    item_id: String(o.lastItem),
    quantity: 1,
    status: "confirmed",
    reason: null,
    message: "Order confirmed.",
    attempts: 0,
    created_at: at,
    updated_at: at,
  };
  return {
    script,
    defines: {
      fp: "Bq0X3nQ9Sx1Jm0zVvK7c5aW3p8yQe2rT6uH1iL4oN9s", // a sha256 in base64url, like fingerprint()
      qty: "1",
      ttl: "86400",
      to: "confirmed",
      zero: "0",
      from: "{pending}",
      status: "201",
      body: JSON.stringify(sampleOrder),
    },
  };
}

/**
 * The 202 path's one statement (order.repository.ts `claimQueued()`): key, queued order, its two
 * history rows and the stored answer. What the app adds on top is the HTTP layer and the enqueue.
 */
export function queuedScript(o: OrderScriptOptions): { script: string; defines: Record<string, string> } {
  const sql = readStatements(ORDER_REPOSITORY).CLAIM_QUEUED_SQL;
  if (!sql) throw new Error(`expected CLAIM_QUEUED_SQL in ${ORDER_REPOSITORY}`);
  const claim = bindParams(sql, { ...CLAIM_BINDINGS, 9: ":body", 10: ":reason", 11: CLAIM_BINDINGS[9]! });
  const { defines } = orderScript(o);
  return {
    script: [`\\set item random(${o.firstItem}, ${o.lastItem})`, `\\set key random(1, 1000000000000000000)`, `${claim};`, ""].join("\n"),
    defines: { ...defines, reason: "inventory_unavailable", body: defines.body!.replace('"confirmed"', '"queued"') },
  };
}

/** Orders per statement in the batched floor: about what the 202 path's statements carry at 32 connections. */
export const QUEUED_BATCH_ORDERS = 8;

/**
 * The 202 path as the application runs it under load: the group-committed form of that statement
 * (`CLAIM_QUEUED_BATCH_SQL`), `QUEUED_BATCH_ORDERS` orders in each. One pgbench transaction is
 * one statement; run it with as many clients as the application keeps statements in flight.
 */
export function queuedBatchScript(o: OrderScriptOptions, orders = QUEUED_BATCH_ORDERS): { script: string; defines: Record<string, string> } {
  const statements = readStatements(ORDER_REPOSITORY);
  const sql = statements.CLAIM_QUEUED_BATCH_SQL;
  const input = statements.BATCH_INPUT_SQL;
  if (!sql || !input) throw new Error(`expected CLAIM_QUEUED_BATCH_SQL and BATCH_INPUT_SQL in ${ORDER_REPOSITORY}`);
  const n = orders;
  const each = (expr: string) => `array(select ${expr} from generate_series(1, ${n}))`;
  const same = (expr: string, type: string) => `array_fill(${expr}::${type}, array[${n}])`;
  // Same $n meaning as in order.repository.ts `claimedIds()` (batchParams).
  const bound = bindParams(input, {
    1: each("md5(random()::text)"),
    2: each("md5(random()::text)"),
    3: each("gen_random_uuid()"),
    4: each(`(${o.firstItem} + floor(random() * ${o.lastItem - o.firstItem + 1}))::int::text`),
    5: same(":qty", "int"),
    6: same("now()", "timestamptz"),
    7: same(":ttl", "int"),
    8: same("null", "text"),
    9: same(":body", "text"),
    10: same(":reason", "text"),
    11: same(`'[{"item_id":"${o.lastItem}","quantity":1}]'`, "text"),
  });
  const claim = sql.replace("${BATCH_INPUT_SQL}", bound);
  const { defines } = queuedScript(o);
  return { script: [`${claim};`, ""].join("\n"), defines };
}

/** The newest pgbench installed with PostgreSQL, or one on PATH; `BENCH_PGBENCH` overrides. */
export function findPgbench(env: Record<string, string | undefined> = process.env): string | null {
  if (env.BENCH_PGBENCH) return env.BENCH_PGBENCH;
  const root = "/usr/lib/postgresql";
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, "bin", "pgbench")))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], "bin", "pgbench");
  }
  return Bun.which("pgbench");
}

/** Applies both modules' migrations and creates `count` items numbered from `firstItem`, each with `stock` units. */
export async function prepareLimitDatabase(url: string, firstItem: number, count: number, stock: number): Promise<void> {
  const database = await openDatabase({ databaseUrl: url, dataDir: "", poolSize: 2 });
  try {
    await migrateModule(database.db, "inventory");
    await migrateModule(database.db, "orders");
    await database.query(
      "seed_items",
      `with items as (
         insert into inventory.inventory (item_id, item_name, quantity)
         select g::text, 'bench item ' || g, $3::int from generate_series($1::int, $2::int) g
         returning item_id, quantity
       )
       insert into inventory.movements (order_id, item_id, type, quantity_change)
       select null, item_id, 'create', quantity from items`,
      [firstItem, firstItem + count - 1, stock],
    );
  } finally {
    await database.close();
  }
}

export interface LimitResult {
  pgbench: string;
  clients: number;
  threads: number;
  durationS: number;
  tps: number;
  latencyAvgMs: number;
  transactions: number;
  failed: number;
  /** From pgbench's per-transaction log. */
  latencyMs: LatencySummary;
  /** Per-statement average latency (ms) as pgbench reports it with -r, first line of each command. */
  statements: Array<{ ms: number; command: string }>;
  /** PostgreSQL's CPU per transaction over the measured run, where it runs on this machine (else null). */
  postgresCpuMsPerTransaction: number | null;
}

export type LimitScript = "order" | "queued" | "queued-batch";

export interface LimitOptions {
  /** Which statements: a whole order (the limit), the 202 path's single statement, or its batched form. */
  script?: LimitScript;
  pgbench: string;
  database: ScratchDatabase;
  workDir: string;
  clients: number;
  warmupS: number;
  durationS: number;
  firstItem: number;
  lastItem: number;
  /** Reads the database server's CPU seconds so far (null: not measurable from here). */
  postgresCpu?: () => number | null;
}

function connectionArgs(url: string): { args: string[]; env: Record<string, string> } {
  const u = new URL(url);
  const env: Record<string, string> = {};
  if (u.password) env.PGPASSWORD = decodeURIComponent(u.password);
  return {
    args: ["-h", u.hostname || "127.0.0.1", "-p", u.port || "5432", "-U", decodeURIComponent(u.username || "postgres"), u.pathname.slice(1)],
    env,
  };
}

async function pgbenchRun(
  o: LimitOptions,
  scriptFile: string,
  defines: Record<string, string>,
  seconds: number,
  report: boolean,
): Promise<{ out: string; latencies: number[] }> {
  const threads = Math.max(1, Math.min(o.clients, navigator.hardwareConcurrency || 2));
  const conn = connectionArgs(o.database.url);
  const args = [o.pgbench, "-n", "-M", "prepared", "-c", String(o.clients), "-j", String(threads), "-T", String(seconds), "-f", scriptFile];
  const logPrefix = join(o.workDir, `pgbench_log_${process.pid}_${Date.now()}`);
  if (report) args.push("-r", "-l", `--log-prefix=${logPrefix}`);
  for (const [k, v] of Object.entries(defines)) args.push("-D", `${k}=${v}`);
  args.push(...conn.args);
  const proc = Bun.spawn(args, { env: { ...process.env, ...conn.env }, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`pgbench exited with ${code}:\n${err.slice(-2000)}\n${out.slice(-2000)}`);
  return { out, latencies: report ? readLogLatencies(logPrefix) : [] };
}

/** Per-transaction latencies (ms) from pgbench's `-l` files, which it then no longer needs. */
function readLogLatencies(prefix: string): number[] {
  const dir = join(prefix, "..");
  const base = prefix.slice(dir.length + 1);
  const out: number[] = [];
  for (const f of readdirSync(dir).filter((n) => n.startsWith(base))) {
    const path = join(dir, f);
    for (const line of readFileSync(path, "utf8").split("\n")) {
      // client_id transaction_no time_us script_no epoch epoch_us
      const us = Number(line.split(" ")[2]);
      if (Number.isFinite(us) && line) out.push(us / 1000);
    }
    rmSync(path);
  }
  return out;
}

export function parsePgbench(out: string): Omit<LimitResult, "pgbench" | "clients" | "threads" | "durationS" | "latencyMs" | "postgresCpuMsPerTransaction"> {
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const statements: LimitResult["statements"] = [];
  const at = out.search(/statement latencies in milliseconds/);
  if (at >= 0) {
    for (const line of out.slice(at).split("\n").slice(1)) {
      const m = /^\s+([\d.]+)\s+(?:\d+\s+)?(\S.*)$/.exec(line);
      if (m) statements.push({ ms: Number(m[1]), command: m[2]!.trim().slice(0, 80) });
    }
  }
  return {
    tps: num(/tps = ([\d.]+)/),
    latencyAvgMs: num(/latency average = ([\d.]+) ms/),
    transactions: num(/number of transactions actually processed: (\d+)/),
    failed: Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0),
    statements,
  };
}

/** Runs the order script against the prepared database: a warm-up, then the measured run. */
export async function measureLimit(o: LimitOptions): Promise<LimitResult> {
  const kind = o.script ?? "order";
  const scripts = { order: orderScript, queued: queuedScript, "queued-batch": queuedBatchScript };
  const { script, defines } = scripts[kind]({ firstItem: o.firstItem, lastItem: o.lastItem });
  const scriptFile = join(o.workDir, `${kind}.pgbench.sql`);
  writeFileSync(scriptFile, script);
  if (o.warmupS > 0) await pgbenchRun(o, scriptFile, defines, Math.max(1, Math.round(o.warmupS)), false);
  const cpuBefore = o.postgresCpu?.() ?? null;
  const { out, latencies } = await pgbenchRun(o, scriptFile, defines, Math.max(1, Math.round(o.durationS)), true);
  const cpuAfter = o.postgresCpu?.() ?? null;
  const parsed = parsePgbench(out);
  if (!Number.isFinite(parsed.tps)) throw new Error(`could not read tps from pgbench:\n${out}`);
  return {
    pgbench: o.pgbench,
    clients: o.clients,
    threads: Math.max(1, Math.min(o.clients, navigator.hardwareConcurrency || 2)),
    durationS: Math.max(1, Math.round(o.durationS)),
    ...parsed,
    latencyMs: summarize(latencies),
    postgresCpuMsPerTransaction: cpuMsPer(cpuBefore, cpuAfter, parsed.transactions),
  };
}
