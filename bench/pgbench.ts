import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
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
 * A new order's parameters as order.repository.ts `claim()` and `claimQueued()` pass them ($1–$10):
 * key, fingerprint, order id, item, quantity, time, key TTL, request id, lines, hold seconds.
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
  // No hold: a sale.
  10: "null",
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
    10: "null",
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
  const claim = bindParams(sql, { ...CLAIM_BINDINGS, 9: ":body", 10: ":reason", 11: CLAIM_BINDINGS[9]!, 12: "null" });
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
    12: same("null", "int"),
  });
  const claim = sql.replace("${BATCH_INPUT_SQL}", bound);
  const { defines } = queuedScript(o);
  return { script: [`${claim};`, ""].join("\n"), defines };
}

/** Mean orders per statement of the order path's three group-committed statements. */
export interface BatchSizes {
  claim: number;
  deduct: number;
  transition: number;
}

export interface BatchScriptOptions extends OrderScriptOptions {
  /** Lines per order (distinct items, spread as the HTTP load spreads them). */
  lines: number;
  sizes: BatchSizes;
  /** Prepared batches (one per pgbench transaction, never reused): more than the run can take. */
  batches: number;
}

/** pgbench picks a whole batch size each transaction: floor or ceil of `mean`, so the sizes average to it. */
function drawSize(name: string, mean: number): string {
  const m = Math.max(1, mean);
  const low = Math.floor(m);
  const high = Math.round((m - low) * 1000);
  return high === 0 ? `\\set ${name} ${low}` : `\\set ${name} case when random(1, 1000) <= ${high} then ${low + 1} else ${low} end`;
}

/**
 * The order path as the application runs it under group commit, with nothing in front of
 * PostgreSQL: per pgbench transaction, the claim of `claim` new orders in one statement
 * (CLAIM_BATCH_SQL), the deduction of `deduct` orders' lines in one statement (DEDUCT_SQL) and the
 * confirmation of `transition` orders in one (TRANSITION_BATCH_SQL), each committing on its own as
 * the app's do. Sizes are the means the application's `group_commit_batch_orders` histogram
 * reported for the run.
 *
 * The app sends its parameters as arrays; pgbench has no arrays, and building them in SQL costs
 * PostgreSQL more than reading the app's, so `setup` prepares them: one row per transaction in
 * `bench_batches` (keys, order ids, items and lines spread as the HTTP load spreads them), taken
 * in turn through a sequence (`\\gset`, one extra round trip of a `nextval`), each statement
 * reading its slices by primary key. `check` tells whether the run took more rows than prepared.
 */
export function orderBatchScript(o: BatchScriptOptions): { script: string; defines: Record<string, string>; setup: string[]; check: string } {
  const orders = readStatements(ORDER_REPOSITORY);
  const inventory = readStatements(INVENTORY_REPOSITORY);
  const { CLAIM_BATCH_SQL: claimSql, BATCH_INPUT_SQL: input, TRANSITION_BATCH_SQL: transitionSql } = orders;
  const deductSql = inventory.DEDUCT_SQL;
  if (!claimSql || !input || !transitionSql || !deductSql) {
    throw new Error(`expected CLAIM_BATCH_SQL, BATCH_INPUT_SQL, TRANSITION_BATCH_SQL in ${ORDER_REPOSITORY}, DEDUCT_SQL in ${INVENTORY_REPOSITORY}`);
  }
  const count = o.lastItem - o.firstItem + 1;
  if (o.lines < 1 || o.lines > count) throw new RangeError(`lines must be between 1 and the ${count} items`);
  const stride = itemStride(count, o.lines);
  const most = Math.ceil(Math.max(1, o.sizes.claim, o.sizes.deduct, o.sizes.transition));
  const L = o.lines;
  const one = L === 1;
  // Line l of order g of batch b: the item `stride` × l after the order's first (as bench/harness.ts `orderBody`).
  const item = (line: string) => `(${o.firstItem} + ((hashtext(b || '-' || g) & 2147483647) + ${line} * ${stride}) % ${count})::text`;
  const orderIds = `array(select md5(b || '-' || g)::uuid from generate_series(1, ${most}) g)`;
  const setup = [
    `create table bench_batches (id bigint primary key, keys text[], order_ids uuid[], item_ids text[], quantities int[], lines text[],
       line_orders uuid[], line_items text[], line_quantities int[])`,
    `insert into bench_batches
     select b,
       array(select b || '-' || g from generate_series(1, ${most}) g),
       ${orderIds},
       array(select ${one ? item("0") : "null::text"} from generate_series(1, ${most}) g),
       array(select ${one ? "1" : "null::int"} from generate_series(1, ${most}) g),
       array(select (select json_agg(json_build_object('item_id', ${item("l")}, 'quantity', 1) order by l)::text from generate_series(0, ${L - 1}) l)
             from generate_series(1, ${most}) g),
       array(select md5(b || '-' || g)::uuid from generate_series(1, ${most}) g, generate_series(0, ${L - 1}) l order by g, l),
       array(select ${item("l")} from generate_series(1, ${most}) g, generate_series(0, ${L - 1}) l order by g, l),
       array_fill(1, array[${most * L}])
     from generate_series(1, ${o.batches}) b`,
    `create sequence bench_batch_seq`,
  ];
  // `[1 : :n]`, spaced: pgbench would read `1::n` as a cast, not a variable.
  const slice = (column: string, n: string, per = 1) => `(select ${column}[1 : ${per === 1 ? `:${n}` : `:${n} * ${per}`}] from bench_batches where id = :b)`;
  const fill = (expr: string, type: string, n: string) => `array_fill(${expr}::${type}, array[:${n}::int])`;
  // order.repository.ts `batchParams()`: a one-line order also fills item_id and quantity.
  const claim = claimSql.replace(
    "${BATCH_INPUT_SQL}",
    bindParams(input, {
      1: slice("keys", "nc"),
      2: fill(":fp", "text", "nc"),
      3: slice("order_ids", "nc"),
      4: slice("item_ids", "nc"),
      5: slice("quantities", "nc"),
      6: fill("now()", "timestamptz", "nc"),
      7: fill(":ttl", "int", "nc"),
      8: slice("keys", "nc"),
      9: fill("null", "text", "nc"),
      10: fill("null", "text", "nc"),
      11: slice("lines", "nc"),
      12: fill("null", "int", "nc"),
    }),
  );
  // inventory.repository.ts `deductParams()`: one element per line.
  const deduct = bindParams(deductSql, { 1: slice("line_orders", "nd", L), 2: slice("line_items", "nd", L), 3: slice("line_quantities", "nd", L) });
  // order.repository.ts OrderWriter's transition batch: pending → confirmed with the 201 body.
  const confirm = bindParams(transitionSql, {
    1: slice("order_ids", "nt"),
    2: fill("'confirmed'", "text", "nt"),
    3: fill("null", "text", "nt"),
    4: fill("now()", "timestamptz", "nt"),
    5: fill("0", "int", "nt"),
    6: fill("'pending'", "text", "nt"),
    7: fill("201", "int", "nt"),
    8: fill(":body", "text", "nt"),
    9: fill("null", "text", "nt"),
    10: fill("null", "timestamptz", "nt"),
  });
  const { defines } = orderScript(o);
  const script = [
    drawSize("nc", Math.min(o.sizes.claim, most)),
    drawSize("nd", Math.min(o.sizes.deduct, most)),
    drawSize("nt", Math.min(o.sizes.transition, most)),
    `select nextval('bench_batch_seq') as b`,
    `\\gset`,
    `${claim};`,
    `${deduct};`,
    `${confirm};`,
    "",
  ].join("\n");
  return { script, defines, setup, check: `select last_value <= ${o.batches} as ok from bench_batch_seq` };
}

/** The distance between an order's consecutive lines' items: lines of one order never share an item. */
export function itemStride(items: number, lines: number): number {
  return lines <= 1 ? 0 : Math.max(1, Math.floor(items / lines));
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
  /** PostgreSQL's CPU per transaction (`order-batch`: per order) over the measured run, where it runs on this machine (else null). */
  postgresCpuMsPerTransaction: number | null;
  /**
   * Orders recorded per second over the measured run (`order-batch`, where a transaction carries
   * several orders; counted in `orders.orders`). Null for the other scripts: one order each.
   */
  ordersPerSecond?: number | null;
}

export type LimitScript = "order" | "queued" | "queued-batch" | "order-batch";

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
  /** For `order-batch`: lines per order, the batch sizes to replay, and how many batches to prepare. */
  batch?: { lines: number; sizes: BatchSizes; batches: number };
  /** For `queued-batch`: orders per statement (QUEUED_BATCH_ORDERS). */
  queuedOrders?: number;
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
  const range = { firstItem: o.firstItem, lastItem: o.lastItem };
  const prepared: { script: string; defines: Record<string, string>; setup?: string[]; check?: string } =
    kind === "order-batch"
      ? orderBatchScript({ ...range, ...(o.batch ?? { lines: 1, sizes: { claim: 1, deduct: 1, transition: 1 }, batches: 100_000 }) })
      : kind === "queued-batch"
        ? queuedBatchScript(range, o.queuedOrders ?? QUEUED_BATCH_ORDERS)
        : { order: orderScript, queued: queuedScript }[kind](range);
  const { script, defines, setup = [], check = null } = prepared;
  const scriptFile = join(o.workDir, `${kind}.pgbench.sql`);
  writeFileSync(scriptFile, script);
  for (const statement of setup) await sqlOn(o.database.url, statement);
  if (o.warmupS > 0) await pgbenchRun(o, scriptFile, defines, Math.max(1, Math.round(o.warmupS)), false);
  const countOrders = kind === "order-batch" ? () => orderCount(o.database.url) : async () => 0;
  const ordersBefore = await countOrders();
  const cpuBefore = o.postgresCpu?.() ?? null;
  const { out, latencies } = await pgbenchRun(o, scriptFile, defines, Math.max(1, Math.round(o.durationS)), true);
  const cpuAfter = o.postgresCpu?.() ?? null;
  const ordersAfter = await countOrders();
  if (check && !(await sqlOn(o.database.url, check))[0]?.ok) throw new Error("pgbench took more batches than were prepared; the limit would have run on empty ones");
  const parsed = parsePgbench(out);
  if (!Number.isFinite(parsed.tps)) throw new Error(`could not read tps from pgbench:\n${out}`);
  const orders = ordersAfter - ordersBefore;
  return {
    ordersPerSecond: kind === "order-batch" ? Math.round((orders / Math.max(1, Math.round(o.durationS))) * 10) / 10 : null,
    pgbench: o.pgbench,
    clients: o.clients,
    threads: Math.max(1, Math.min(o.clients, navigator.hardwareConcurrency || 2)),
    durationS: Math.max(1, Math.round(o.durationS)),
    ...parsed,
    latencyMs: summarize(latencies),
    postgresCpuMsPerTransaction: cpuMsPer(cpuBefore, cpuAfter, kind === "order-batch" ? orders : parsed.transactions),
  };
}

async function sqlOn(url: string, text: string): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

const orderCount = async (url: string) => Number((await sqlOn(url, "select count(*)::bigint as n from orders.orders"))[0]!.n);
