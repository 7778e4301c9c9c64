import { mkdirSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LogLevel } from "../src/config.ts";
import { runBench, SCENARIOS, type BenchOptions, type BenchResult, type RunResult, type ScenarioName } from "./harness.ts";
import { REPO_ROOT } from "./server-process.ts";
import { servicesFromEnv } from "./services.ts";

/**
 * `npm run bench [-- options]`: the throughput harness. See docs/benchmarks.md.
 *
 *   --duration S        measured seconds per run (15)
 *   --warmup S          warm-up seconds before each run (3)
 *   --connections N     concurrent keep-alive connections, and pgbench clients (32)
 *   --items N           items the orders spread over (100)
 *   --lines N           lines per order in the lines scenario (3)
 *   --scenarios a,b     any of all, lines, split, embedded, breaker (all five)
 *   --no-limit          skip pgbench (ratios print as n/a)
 *   --no-open-loop      skip the fixed-rate run at half the measured rate (all, lines)
 *   --against REV       also run the one-line scenarios on commit REV's tree (git archive into the
 *                       work dir, node_modules linked), each right next to the current tree's:
 *                       before/after in one run, printed as ratios
 *   --webhook-compare   also run all and lines with one endpoint subscribed to every event (a
 *                       loopback receiver answering 204), back to back with the plain runs:
 *                       with ÷ without in one run, and the webhooks delivered during and after
 *   --log-level L       LOG_LEVEL of the servers (info, the shipped default)
 *   --env K=V           extra environment for the servers; repeatable
 *   --bun-flag F        extra flag for the servers' bun runtime, e.g. --cpu-prof-md; repeatable
 *   --rounds N          repeat the whole run N times and add a summary of medians (1); on a
 *                       shared machine the medians of paired runs are steadier than one run;
 *                       with --against (--webhook-compare), which tree (variant) goes first
 *                       alternates between rounds
 *   --json FILE         also write the full result as JSON (an array when rounds > 1)
 *   --work-dir DIR      server logs and the pgbench script (a fresh temp folder)
 *
 * Environment: BENCH_PG_URL (a maintenance URL on the PostgreSQL to use), BENCH_REDIS_URL,
 * BENCH_REDIS_DB (15; flushed before each scenario), BENCH_PGBENCH (path to pgbench).
 */

export type CliOptions = BenchOptions & { json: string | null; rounds: number; against: string | null };

export function parseArgs(argv: string[], env = process.env): CliOptions {
  const opts: CliOptions = {
    durationS: 15,
    warmupS: 3,
    connections: 32,
    items: 100,
    lines: 3,
    scenarios: SCENARIOS,
    limit: true,
    openLoop: true,
    base: null,
    webhook: null,
    against: null,
    logLevel: "info",
    serverEnv: {},
    bunFlags: [],
    services: servicesFromEnv(env),
    workDir: join(tmpdir(), `valerix-bench-${Date.now()}`),
    log: (line) => console.error(line),
    json: null,
    rounds: 1,
  };
  const num = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`${flag} needs a number ≥ ${min}, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--duration":
        opts.durationS = num(flag, value(), 1);
        break;
      case "--warmup":
        opts.warmupS = num(flag, value(), 0);
        break;
      case "--connections":
        opts.connections = Math.round(num(flag, value(), 1));
        break;
      case "--items":
        opts.items = Math.round(num(flag, value(), 1));
        break;
      case "--lines":
        opts.lines = Math.round(num(flag, value(), 1));
        if (opts.lines > 50) throw new Error("--lines takes at most 50 (an order's limit)");
        break;
      case "--no-open-loop":
        opts.openLoop = false;
        break;
      case "--against":
        opts.against = value();
        break;
      case "--webhook-compare":
        opts.webhook = { first: false };
        break;
      case "--scenarios": {
        const names = value().split(",").map((s) => s.trim()).filter(Boolean);
        for (const n of names) if (!SCENARIOS.includes(n as ScenarioName)) throw new Error(`unknown scenario "${n}" (${SCENARIOS.join(", ")})`);
        opts.scenarios = names as ScenarioName[];
        break;
      }
      case "--no-limit":
        opts.limit = false;
        break;
      case "--log-level":
        opts.logLevel = value() as LogLevel;
        break;
      case "--env": {
        const kv = value();
        const eq = kv.indexOf("=");
        if (eq < 1) throw new Error(`--env takes KEY=VALUE, got ${kv}`);
        opts.serverEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
        break;
      }
      case "--bun-flag":
        opts.bunFlags.push(value());
        break;
      case "--rounds":
        opts.rounds = Math.round(num(flag, value(), 1));
        break;
      case "--json":
        opts.json = value();
        break;
      case "--work-dir":
        opts.workDir = value();
        break;
      default:
        throw new Error(`unknown option ${flag}`);
    }
  }
  return opts;
}

/**
 * Commit `rev`'s tree, extracted with `git archive` into the work dir (no worktree is registered),
 * with this checkout's node_modules linked in. Returns its folder and the commit's short id.
 */
export function extractCheckout(rev: string, workDir: string): { rev: string; root: string } {
  const git = (args: string[]): Buffer => {
    const r = Bun.spawnSync(["git", ...args], { cwd: REPO_ROOT, stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr.toString().trim()}`);
    return r.stdout;
  };
  const short = git(["rev-parse", "--short", `${rev}^{commit}`]).toString().trim();
  const root = join(workDir, `checkout-${short}`);
  mkdirSync(root, { recursive: true });
  const tar = Bun.spawnSync(["tar", "-x", "-C", root], { stdin: git(["archive", "--format=tar", short]), stderr: "pipe" });
  if (tar.exitCode !== 0) throw new Error(`tar: ${tar.stderr.toString().trim()}`);
  symlinkSync(realpathSync(join(REPO_ROOT, "node_modules")), join(root, "node_modules"));
  return { rev: short, root };
}

const pad = (s: string | number, n: number) => String(s).padStart(n);
const ms = (l: { p50: number; p95: number; p99: number; max: number }) => `${pad(l.p50.toFixed(1), 8)}${pad(l.p95.toFixed(1), 8)}${pad(l.p99.toFixed(1), 8)}${pad(l.max.toFixed(1), 8)}`;
const sizesText = (s: Partial<Record<string, number>>) =>
  Object.entries(s)
    .map(([k, v]) => `${k} ${v}`)
    .join(" · ");

const serverCpu = (run: RunResult) => run.processes.reduce((a, p) => a + p.cpuMsPerRequest, 0);

export interface Pair {
  label: string;
  before: RunResult;
  after: RunResult;
  throughput: number;
  p99: number;
  cpu: number | null;
  postgresCpu: number | null;
}

const ratio = (a: number, b: number | null) => (b ? Math.round((a / b) * 1000) / 1000 : null);

/**
 * Runs labelled `prefix · X` paired with the plain run `X` of the same result: (plain ÷ prefixed
 * for `before`, prefixed ÷ plain for `webhook`, always after ÷ before): orders/s, p99, and the
 * servers' and PostgreSQL's CPU per order, the steadiest on a busy machine.
 */
function pairs(r: BenchResult, prefix: "before" | "webhook"): Pair[] {
  const runs = r.scenarios.flatMap((s) => s.runs);
  const marked = (x: RunResult) => x.label.startsWith(`${prefix} · `);
  const out: Pair[] = [];
  for (const m of runs.filter(marked)) {
    const label = m.label.slice(prefix.length + 3);
    const plain = runs.find((x) => !x.base && x.label === label);
    if (!plain) continue;
    const [before, after] = prefix === "before" ? [m, plain] : [plain, m];
    if (!before.load.perSecond || !before.load.latencyMs.p99) continue;
    out.push({
      label,
      before,
      after,
      throughput: ratio(after.load.perSecond, before.load.perSecond)!,
      p99: ratio(after.load.latencyMs.p99, before.load.latencyMs.p99)!,
      cpu: ratio(serverCpu(after), serverCpu(before)),
      postgresCpu: after.postgresCpuMsPerRequest === null ? null : ratio(after.postgresCpuMsPerRequest, before.postgresCpuMsPerRequest),
    });
  }
  return out;
}

/** Current run ÷ `before ·` run of the same label, per label (none without --against). */
export const beforeAfter = (r: BenchResult): Pair[] => pairs(r, "before");
/** `webhook ·` run (one endpoint subscribed) ÷ the plain run of the same label (none without --webhook-compare). */
export const withWebhook = (r: BenchResult): Pair[] => pairs(r, "webhook");

const pairLine = (p: Pair) =>
  `  ${p.label.padEnd(26)} orders/s ${p.before.load.perSecond.toFixed(0)} → ${p.after.load.perSecond.toFixed(0)} = ${p.throughput.toFixed(2)}` +
  ` · p99 ${p.before.load.latencyMs.p99.toFixed(1)} → ${p.after.load.latencyMs.p99.toFixed(1)} ms = ${p.p99.toFixed(2)}` +
  (p.cpu === null ? "" : ` · server CPU ${serverCpu(p.before).toFixed(2)} → ${serverCpu(p.after).toFixed(2)} ms/order = ${p.cpu.toFixed(2)}`) +
  (p.postgresCpu === null ? "" : ` · PostgreSQL CPU ${p.before.postgresCpuMsPerRequest} → ${p.after.postgresCpuMsPerRequest} ms/order = ${p.postgresCpu.toFixed(2)}`);

export function formatResult(r: BenchResult): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(`Valerix benchmark · ${r.startedAt}`);
  out.push(`${m.cpuModel} · ${m.cores} cores · ${m.memoryGb} GB · load ${m.loadAverage} at start · bun ${m.bun} · PostgreSQL ${r.postgres.version} · Redis ${r.redis}`);
  out.push(
    `${r.options.connections} connections · ${r.options.durationS} s measured after ${r.options.warmupS} s warm-up · ${r.options.items} items · LOG_LEVEL=${r.options.logLevel}` +
      (r.options.against ? ` · before = ${r.options.against}` : "") +
      (r.options.webhook ? " · webhook runs: one endpoint subscribed to every event" : "") +
      (Object.keys(r.options.serverEnv).length ? ` · ${Object.entries(r.options.serverEnv).map(([k, v]) => `${k}=${v}`).join(" ")}` : ""),
  );
  out.push("");
  if (r.limit) {
    const l = r.limit;
    out.push(`pgbench, one order per commit (claim, deduct, confirm), -M prepared, ${l.clients} clients`);
    out.push(
      `  ${l.tps.toFixed(0)} orders/s · p50 ${l.latencyMs.p50} ms · p95 ${l.latencyMs.p95} ms · p99 ${l.latencyMs.p99} ms · ${l.transactions} orders · ${l.failed} failed`,
    );
    const sql = l.statements.filter((s) => !s.command.startsWith("\\"));
    if (sql.length) out.push(`  per statement: ${sql.map((s) => `${s.command.replace(/\s*\($/, "")} ${s.ms} ms`).join(" · ")}`);
    if (l.postgresCpuMsPerTransaction !== null) out.push(`  PostgreSQL CPU: ${l.postgresCpuMsPerTransaction} ms per order`);
    out.push("");
  }
  out.push(
    `${"run".padEnd(34)}${pad("orders/s", 9)}${pad("ratio", 7)}${pad("p50", 8)}${pad("p95", 8)}${pad("p99", 8)}${pad("max", 8)}  ${"RSS MB".padEnd(10)}${"CPU ms/order".padEnd(14)}CPU % server · client · machine`,
  );
  for (const s of r.scenarios) {
    if (s.error) out.push(`${(s.base ? `before · ${s.name}` : s.name).padEnd(34)}ERROR ${s.error}`);
    for (const run of s.runs) {
      const l = run.load.latencyMs;
      out.push(
        `${run.label.padEnd(34)}${pad(run.load.perSecond.toFixed(0), 9)}${pad(run.ratioToLimit?.toFixed(2) ?? "—", 7)}${ms(l)}  ` +
          `${run.processes.map((p) => p.peakRssMb.toFixed(0)).join("+").padEnd(10)}` +
          `${run.processes.map((p) => p.cpuMsPerRequest.toFixed(2)).join("+").padEnd(14)}` +
          `${run.processes.map((p) => p.cpuPct.toFixed(0)).join("+")} · ${run.load.clientCpuPct.toFixed(0)} · ${run.machineBusyPct.toFixed(0)}`,
      );
      if (run.openLoop) {
        const o = run.openLoop;
        out.push(`${`  open loop, ${o.ratePerSecond?.toFixed(0)}/s due`.padEnd(34)}${pad(o.perSecond.toFixed(0), 9)}${pad("", 7)}${ms(o.latencyMs)}`);
      }
      if (run.ownLimit) {
        const b = run.ownLimit;
        out.push(`${`  limit: own SQL, ${b.clients} clients`.padEnd(34)}${pad(b.ordersPerSecond.toFixed(0), 9)}${pad("", 7)}${ms(b.latencyMs)}`);
      }
      if (run.reference?.script === "queued") {
        const f = run.reference;
        out.push(`${"  pgbench, same statement".padEnd(34)}${pad(f.tps.toFixed(0), 9)}${pad("", 7)}${ms(f.latencyMs)}`);
      }
      if (run.batchedReference) {
        const b = run.batchedReference;
        out.push(`${`  pgbench, batched ${b.orders}×${b.clients}`.padEnd(34)}${pad((b.tps * b.orders).toFixed(0), 9)}${pad("", 7)}${ms(b.latencyMs)}`);
      }
    }
  }
  for (const s of r.scenarios) {
    for (const run of s.runs) {
      if (Object.keys(run.batchSizes).length) out.push(`${run.label}: orders per statement over the measured window: ${sizesText(run.batchSizes)}`);
      if (run.ownLimit && run.ratioToOrderScript !== null) out.push(`${run.label}: ratio to pgbench's one order per commit ${run.ratioToOrderScript.toFixed(2)}`);
      for (const n of run.notes) out.push(`${run.label}: ${n}`);
    }
  }
  const pgCpu = r.scenarios.flatMap((s) => s.runs.flatMap((run) => (run.postgresCpuMsPerRequest === null ? [] : [`${run.label} ${run.postgresCpuMsPerRequest}`])));
  if (pgCpu.length) out.push(`PostgreSQL CPU ms per answered request: ${pgCpu.join(" · ")}${r.limit?.postgresCpuMsPerTransaction != null ? ` (one order per commit: ${r.limit.postgresCpuMsPerTransaction})` : ""}`);
  const ownCpu = r.scenarios.flatMap((s) => s.runs.flatMap((run) => (run.ownLimit?.postgresCpuMsPerOrder == null ? [] : [`${run.label} ${run.ownLimit.postgresCpuMsPerOrder}`])));
  if (ownCpu.length) out.push(`PostgreSQL CPU ms per order, own SQL alone: ${ownCpu.join(" · ")}`);
  out.push("(latency in ms; ratio: to the limit below the run, PostgreSQL alone running the app's own group-committed");
  out.push(" claim, deduct and confirm statements at the batch sizes the run measured, with 3 × GROUP_COMMIT_IN_FLIGHT clients;");
  out.push(" its latency is one claim+deduct+confirm chain of a batch; for the 202 path: to pgbench running its one statement;");
  out.push(" open loop: requests due at a fixed rate, half the run's orders/s, latency counted from when each was due;");
  out.push(" batched N×C: the 202 statement's group-committed form, N orders per statement, C clients, in orders/s;");
  out.push(" CPU ms/order: server CPU per answered request; machine CPU: % of all cores; split lists orders+inventory)");
  const ba = beforeAfter(r);
  if (ba.length) {
    out.push("");
    out.push(`before (${r.options.against}) → after (this tree), same run: after ÷ before`);
    for (const p of ba) out.push(pairLine(p));
  }
  const wh = withWebhook(r);
  if (wh.length) {
    out.push("");
    out.push("no subscriber → one endpoint subscribed to every event, same run: with ÷ without");
    for (const p of wh) out.push(pairLine(p));
  }
  out.push("");
  out.push("targets");
  for (const s of r.scenarios) {
    for (const run of s.runs) {
      for (const c of run.checks) {
        out.push(`  ${c.pass ? "PASS" : "FAIL"}  ${run.label.padEnd(34)}${c.name.padEnd(20)}${c.target.padEnd(10)} ${c.actual}`);
      }
    }
  }
  return out.join("\n");
}

const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const listed = (values: number[], digits: number) => values.map((v) => v.toFixed(digits)).join(", ");

/** Medians over rounds, per run label: the numbers to quote from a noisy machine. */
export function formatSummary(results: BenchResult[]): string {
  const out: string[] = [`summary: medians of ${results.length} rounds`];
  const limits = results.flatMap((r) => (r.limit ? [r.limit.tps] : []));
  const limitCpu = results.flatMap((r) => (r.limit?.postgresCpuMsPerTransaction != null ? [r.limit.postgresCpuMsPerTransaction] : []));
  if (limits.length) {
    out.push(
      `  pgbench, 1 order per commit   ${median(limits).toFixed(0)} orders/s   (rounds: ${listed(limits, 0)})` +
        (limitCpu.length ? ` · PostgreSQL CPU ${median(limitCpu).toFixed(2)} ms/order` : ""),
    );
  }
  const labels = [...new Set(results.flatMap((r) => r.scenarios.flatMap((s) => s.runs.map((x) => x.label))))];
  for (const label of labels) {
    const runs = results.flatMap((r) => r.scenarios.flatMap((s) => s.runs.filter((x) => x.label === label)));
    const ratios = runs.flatMap((x) => (x.ratioToLimit === null ? [] : [x.ratioToLimit]));
    const own = runs.flatMap((x) => (x.ownLimit ? [x.ownLimit.ordersPerSecond] : []));
    const open = runs.flatMap((x) => (x.openLoop ? [x.openLoop.latencyMs.p99] : []));
    const pgCpu = runs.flatMap((x) => (x.postgresCpuMsPerRequest === null ? [] : [x.postgresCpuMsPerRequest]));
    out.push(
      `  ${label.padEnd(34)} ${median(runs.map((x) => x.load.perSecond)).toFixed(0)} orders/s` +
        (ratios.length ? ` · ratio ${median(ratios).toFixed(2)} (${listed(ratios, 2)})` : "") +
        (own.length ? ` to ${median(own).toFixed(0)}` : "") +
        ` · p99 ${median(runs.map((x) => x.load.latencyMs.p99)).toFixed(1)} ms` +
        (open.length ? ` · open-loop p99 ${median(open).toFixed(1)} ms (${listed(open, 1)})` : "") +
        ` · server CPU ${median(runs.map(serverCpu)).toFixed(2)} ms/order` +
        (pgCpu.length ? ` · PostgreSQL CPU ${median(pgCpu).toFixed(2)} ms/order` : ""),
    );
  }
  for (const [what, pairing] of [["after ÷ before", beforeAfter], ["with webhook ÷ without", withWebhook]] as const) {
    const all = results.flatMap((r) => pairing(r));
    for (const label of [...new Set(all.map((p) => p.label))]) {
      const mine = all.filter((p) => p.label === label);
      const t = mine.map((p) => p.throughput);
      const p99 = mine.map((p) => p.p99);
      const cpu = mine.flatMap((p) => (p.cpu === null ? [] : [p.cpu]));
      const pgCpu = mine.flatMap((p) => (p.postgresCpu === null ? [] : [p.postgresCpu]));
      out.push(
        `  ${what}, ${label}: orders/s ${median(t).toFixed(2)} (${listed(t, 2)}) · p99 ${median(p99).toFixed(2)} (${listed(p99, 2)})` +
          (cpu.length ? ` · server CPU per order ${median(cpu).toFixed(2)} (${listed(cpu, 2)})` : "") +
          (pgCpu.length ? ` · PostgreSQL CPU per order ${median(pgCpu).toFixed(2)} (${listed(pgCpu, 2)})` : ""),
      );
    }
  }
  const tallies = results.flatMap((r) => r.scenarios.flatMap((s) => s.runs.flatMap((x) => (x.webhook ? [{ label: x.label, ...x.webhook }] : []))));
  for (const label of [...new Set(tallies.map((t) => t.label))]) {
    const mine = tallies.filter((t) => t.label === label);
    out.push(`  ${label}: webhooks delivered in the measured window (${listed(mine.map((t) => t.deliveredInWindow), 0)}), in all ${mine.map((t) => `${t.delivered}/${t.events}`).join(", ")} of the outbox's events`);
  }
  return out.join("\n");
}

if (import.meta.main) {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`bench: ${(err as Error).message}`);
    process.exit(2);
  }
  opts.log(`work dir: ${opts.workDir}`);
  if (opts.against) {
    opts.base = { ...extractCheckout(opts.against, opts.workDir), first: false };
    opts.log(`before: ${opts.base.rev}, extracted to ${opts.base.root}`);
  }
  const results: BenchResult[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    if (opts.rounds > 1) opts.log(`round ${round} of ${opts.rounds}`);
    // Which tree runs first alternates, so a machine getting busier or quieter favours neither.
    if (opts.base) opts.base.first = round % 2 === 0;
    if (opts.webhook) opts.webhook.first = round % 2 === 0;
    const result = await runBench(opts);
    results.push(result);
    console.log(formatResult(result));
    console.log("");
  }
  if (results.length > 1) console.log(formatSummary(results));
  if (opts.json) writeFileSync(opts.json, JSON.stringify(results.length === 1 ? results[0] : results, null, 2));
  process.exit(results.some((r) => r.scenarios.some((s) => s.error)) ? 1 : 0);
}
