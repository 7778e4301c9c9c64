import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import pg from "pg";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hasPostgres, hasRedis } from "../tests/support/services.ts";
import { orderBody, runBench, type BenchResult, type RunResult } from "./harness.ts";
import { runLoad } from "./load.ts";
import { cpuMsPer, postgresCpuSeconds } from "./machine.ts";
import { bindParams, findPgbench, orderBatchScript, orderScript, parsePgbench, queuedBatchScript, queuedScript, readStatements } from "./pgbench.ts";
import { beforeAfter, formatResult, formatSummary, parseArgs, withWebhook } from "./run.ts";
import { servicesFromEnv } from "./services.ts";
import { percentile, summarize } from "./stats.ts";
import { parseCostArgs, rotation, summarizeCost, type Measured } from "./outbox-cost.ts";

// The harness is checked for producing well-formed results, never for how fast anything is:
// timings on a shared two-core machine say nothing a test could rely on.

describe("stats", () => {
  test("nearest-rank percentiles", () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 50)).toBe(50);
    expect(percentile(sorted, 99)).toBe(99);
    expect(percentile(sorted, 100)).toBe(100);
    expect(percentile(new Float64Array(0), 99)).toBe(0);
    expect(summarize([3, 1, 2])).toEqual({ p50: 2, p95: 3, p99: 3, max: 3, mean: 2 });
  });

  test("CPU per unit of work between two readings, or null without both or without work", () => {
    expect(cpuMsPer(10, 10.5, 1000)).toBe(0.5);
    expect(cpuMsPer(0, 0.0012346, 1)).toBe(1.235);
    expect(cpuMsPer(null, 3, 10)).toBeNull();
    expect(cpuMsPer(1, null, 10)).toBeNull();
    expect(cpuMsPer(1, 2, 0)).toBeNull();
  });
});

describe("pgbench script", () => {
  test("reads the application's statements from the repositories", () => {
    const orders = readStatements("modules/orders/internal/order.repository.ts");
    const inventory = readStatements("modules/inventory/internal/inventory.repository.ts");
    expect(orders.CLAIM_SQL).toContain("insert into orders.idempotency_keys");
    expect(orders.TRANSITION_SQL).toContain("update orders.orders");
    expect(orders.CLAIM_QUEUED_SQL).toContain("'queued'");
    expect(inventory.DEDUCT_SQL).toContain("update inventory.inventory");
  });

  test("binds every placeholder, $10 apart from $1", () => {
    expect(bindParams("select $1, $10, $1::int", { 1: ":a", 10: ":b" })).toBe("select :a, :b, :a::int");
    expect(() => bindParams("select $2", { 1: ":a" })).toThrow("no binding for $2");
  });

  test("the order script chains claim → deduct → confirm through the claimed order id", () => {
    const { script, defines } = orderScript({ firstItem: 1, lastItem: 9 });
    const parts = script.split("\\gset");
    expect(parts).toHaveLength(2);
    expect(parts[0]).toContain("insert into orders.idempotency_keys");
    expect(parts[1]).toContain(":order_id::uuid");
    expect(script).not.toMatch(/\$\d/);
    for (const name of script.matchAll(/(?<![:\w]):([a-z_]+)/g)) {
      if (["order_id", "item", "key"].includes(name[1]!)) continue;
      expect(defines[name[1]!], `variable :${name[1]}`).toBeDefined();
    }
    expect(queuedScript({ firstItem: 1, lastItem: 9 }).script).toContain("'queued'");
  });

  test("the batched 202 script is the group-committed statement with every array bound", () => {
    const { script, defines } = queuedBatchScript({ firstItem: 1, lastItem: 9 }, 8);
    expect(script).toContain("insert into orders.idempotency_keys");
    expect(script).toContain("unnest(");
    expect(script).not.toContain("${");
    expect(script).not.toMatch(/\$\d/);
    expect(script.match(/generate_series\(1, 8\)/g)).toHaveLength(4);
    for (const name of script.matchAll(/(?<![:\w]):([a-z_]+)/g)) expect(defines[name[1]!], `variable :${name[1]}`).toBeDefined();
  });

  test("the own-statement limit replays the three batch statements at the measured sizes, lines included", () => {
    const { script, defines, setup, check } = orderBatchScript({ firstItem: 1, lastItem: 9, lines: 3, sizes: { claim: 4.25, deduct: 4, transition: 3.5 }, batches: 10 });
    expect(script).toContain("\\set nc case when random(1, 1000) <= 250 then 5 else 4 end");
    expect(script).toContain("\\set nd 4\n");
    expect(script).toContain("insert into orders.idempotency_keys");
    expect(script).toContain("insert into inventory.order_accounts");
    expect(script).toContain("update orders.orders o set status = r.to_status");
    // Three lines per order: the deduction reads three array elements per order of its batch.
    expect(script).toContain("line_items[1 : :nd * 3]");
    expect(setup.join("\n")).toContain("generate_series(1, 10) b");
    expect(check).toContain("<= 10");
    expect(script).not.toContain("${");
    expect(script).not.toMatch(/\$\d/);
    for (const name of script.matchAll(/(?<![:\w]):([a-z_]+)/g)) {
      if (["b", "nc", "nd", "nt"].includes(name[1]!)) continue;
      expect(defines[name[1]!], `variable :${name[1]}`).toBeDefined();
    }
    expect(() => orderBatchScript({ firstItem: 1, lastItem: 2, lines: 3, sizes: { claim: 1, deduct: 1, transition: 1 }, batches: 10 })).toThrow(RangeError);
  });

  test("an order of several lines names distinct items; one line keeps the seed's body", () => {
    expect(JSON.parse(orderBody(7, 5, 1))).toEqual({ item_id: expect.any(String), quantity: 1 });
    for (let seq = 0; seq < 50; seq++) {
      const { lines } = JSON.parse(orderBody(seq, 5, 3)) as { lines: Array<{ item_id: string }> };
      expect(new Set(lines.map((l) => l.item_id)).size).toBe(3);
    }
  });

  test("parses pgbench's report", () => {
    const out = `transaction type: order.pgbench.sql
number of clients: 32
number of transactions actually processed: 28125
number of failed transactions: 0 (0.000%)
latency average = 17.061 ms
tps = 1875.536712 (without initial connection time)
statement latencies in milliseconds and failures:
         0.001           0  \\set item random(100001, 100100)
         5.712           0  with claim as (
         5.601           0  with ins as (
`;
    const p = parsePgbench(out);
    expect(p.tps).toBeCloseTo(1875.54, 1);
    expect(p.latencyAvgMs).toBe(17.061);
    expect(p.transactions).toBe(28125);
    expect(p.failed).toBe(0);
    expect(p.statements.map((s) => s.command)).toEqual(["\\set item random(100001, 100100)", "with claim as (", "with ins as ("]);
  });
});

describe("load generator", () => {
  let server: ReturnType<typeof Bun.serve>;
  beforeAll(() => {
    let n = 0;
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        const body = (await req.json()) as { i: number };
        // Every third answer is chunked, so both framings are read.
        if (n++ % 3 === 0) return new Response(new Blob([JSON.stringify(body)]).stream(), { status: 201 });
        return new Response(JSON.stringify({ key: req.headers.get("idempotency-key") }), { status: body.i % 2 ? 201 : 202 });
      },
    });
  });
  afterAll(() => server.stop(true));

  test("counts every answer by status over keep-alive connections", async () => {
    const r = await runLoad({
      host: "127.0.0.1",
      port: server.port!,
      connections: 3,
      warmupMs: 100,
      durationMs: 400,
      request: (conn, seq) => ({ method: "POST", path: "/", headers: { "idempotency-key": `${conn}-${seq}`, "content-type": "application/json" }, body: JSON.stringify({ i: seq }) }),
    });
    expect(r.errors).toBe(0);
    expect(r.requests).toBeGreaterThan(0);
    expect(Object.keys(r.statuses).sort()).toEqual(["201", "202"]);
    const counted = Object.values(r.statuses).reduce((a, b) => a + b, 0);
    expect(counted).toBe(r.requests);
    expect(r.latencyMs.p50).toBeGreaterThan(0);
    expect(r.latencyMs.max).toBeGreaterThanOrEqual(r.latencyMs.p99);
  });

  test("an open loop sends at most what falls due at its rate", async () => {
    const r = await runLoad({
      host: "127.0.0.1",
      port: server.port!,
      connections: 3,
      warmupMs: 100,
      durationMs: 400,
      ratePerSecond: 50,
      request: (conn, seq) => ({ method: "POST", path: "/", headers: { "idempotency-key": `${conn}-${seq}`, "content-type": "application/json" }, body: JSON.stringify({ i: seq }) }),
    });
    expect(r.errors).toBe(0);
    expect(r.ratePerSecond).toBe(50);
    // Requests fall due every 20 ms: 20 in the 400 ms window, counted by when each was due.
    expect(r.requests).toBeGreaterThan(0);
    expect(r.requests).toBeLessThanOrEqual(20);
    expect(Object.values(r.statuses).reduce((a, b) => a + b, 0)).toBe(r.requests);
  });
});

describe("command line", () => {
  test("reads options and refuses unknown ones", () => {
    const o = parseArgs(["--duration", "2", "--connections", "4", "--scenarios", "all,lines,breaker", "--no-limit", "--no-open-loop", "--against", "635be51", "--env", "A=b=c"]);
    expect(o.durationS).toBe(2);
    expect(o.openLoop).toBe(false);
    expect(o.against).toBe("635be51");
    expect(o.connections).toBe(4);
    expect(o.scenarios).toEqual(["all", "lines", "breaker"]);
    expect(o.limit).toBe(false);
    expect(o.serverEnv).toEqual({ A: "b=c" });
    expect(o.webhook).toBeNull();
    expect(parseArgs(["--webhook-compare"]).webhook).toEqual({ first: false });
    expect(() => parseArgs(["--scenarios", "nope"])).toThrow("unknown scenario");
    expect(() => parseArgs(["--fast"])).toThrow("unknown option");
  });
});

/** A run with just the figures the comparisons read. */
function fakeRun(label: string, perSecond: number, p99: number, serverCpu: number, pgCpu: number | null, extra: Partial<RunResult> = {}): RunResult {
  const latency = { p50: p99 / 2, p95: p99, p99, max: p99, mean: p99 / 2 };
  return {
    label, base: null, lines: 1,
    load: { perSecond, latencyMs: latency, requests: perSecond, allStatuses: { "201": perSecond }, statuses: {}, errors: 0, clientCpuPct: 0 } as unknown as RunResult["load"],
    processes: [{ name: "all", peakRssMb: 100, cpuPct: 50, cpuMsPerRequest: serverCpu }],
    machineBusyPct: 50, ratioToLimit: null, ratioToOrderScript: null, reference: null, batchSizes: {}, ownLimit: null, openLoop: null,
    postgresCpuMsPerRequest: pgCpu, stock: null, checks: [], notes: [], ...extra,
  };
}

function fakeResult(runs: RunResult[]): BenchResult {
  return {
    version: 2, startedAt: "2026-01-01T00:00:00Z",
    machine: { cpuModel: "cpu", cores: 2, memoryGb: 4, loadAverage: "1", bun: "1" } as unknown as BenchResult["machine"],
    postgres: { version: "17" }, redis: "7",
    options: { durationS: 10, warmupS: 1, connections: 32, items: 100, lines: 3, logLevel: "info", serverEnv: {}, against: null, webhook: true },
    limit: null,
    scenarios: [{ name: "all", base: null, runs }],
  };
}

describe("with a subscribed endpoint ÷ without", () => {
  const tally = { events: 4000, deliveredInWindow: 3000, delivered: 4000, drainMs: 300 };
  const plain = fakeRun("all · 32 conns", 1000, 40, 0.2, 0.5);
  const subscribed = fakeRun("webhook · all · 32 conns", 900, 50, 0.3, 0.6, { webhook: tally });

  test("pairs the webhook run with the plain run of its label: orders/s, p99, server and PostgreSQL CPU", () => {
    const [p, ...rest] = withWebhook(fakeResult([subscribed, plain]));
    expect(rest).toEqual([]);
    expect(p!.label).toBe("all · 32 conns");
    expect(p!.before).toBe(plain);
    expect(p!.after).toBe(subscribed);
    expect([p!.throughput, p!.p99, p!.cpu, p!.postgresCpu]).toEqual([0.9, 1.25, 1.5, 1.2]);
    // Not a before/after pair, and no pair without its plain run.
    expect(beforeAfter(fakeResult([subscribed, plain]))).toEqual([]);
    expect(withWebhook(fakeResult([subscribed]))).toEqual([]);
  });

  test("prints the ratios and the webhooks delivered, per run and as medians over rounds", () => {
    const r = fakeResult([plain, subscribed]);
    const text = formatResult(r);
    expect(text).toContain("no subscriber → one endpoint subscribed to every event, same run: with ÷ without");
    expect(text).toContain("orders/s 1000 → 900 = 0.90 · p99 40.0 → 50.0 ms = 1.25 · server CPU 0.20 → 0.30 ms/order = 1.50 · PostgreSQL CPU 0.5 → 0.6 ms/order = 1.20");
    const other = fakeResult([plain, fakeRun("webhook · all · 32 conns", 1100, 40, 0.2, 0.5, { webhook: { ...tally, deliveredInWindow: 3500 } })]);
    const summary = formatSummary([r, other]);
    expect(summary).toContain("with webhook ÷ without, all · 32 conns: orders/s 1.00 (0.90, 1.10) · p99 1.13 (1.25, 1.00) · server CPU per order 1.25 (1.50, 1.00) · PostgreSQL CPU per order 1.10 (1.20, 1.00)");
    expect(summary).toContain("webhook · all · 32 conns: webhooks delivered in the measured window (3000, 3500), in all 4000/4000, 4000/4000");
  });
});

const pgbench = findPgbench();

describe.skipIf(!hasPostgres || !hasRedis || !pgbench)("a short run on the real services", () => {
  const workDir = mkdtempSync(join(tmpdir(), "valerix-bench-test-"));
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  test.skipIf(postgresCpuSeconds() === null)("counts the CPU a query costs PostgreSQL, the backend's own and not the client's", async () => {
    const client = new pg.Client({ connectionString: servicesFromEnv().pgAdminUrl });
    await client.connect();
    try {
      const before = postgresCpuSeconds();
      const started = performance.now();
      await client.query("select sum(i) from generate_series(1, 3000000) i");
      const elapsedS = (performance.now() - started) / 1000;
      const used = postgresCpuSeconds()! - before!;
      // A backend summing three million rows is busy for most of the query's wall time, even on a
      // machine shared with other work; a meter that missed it would read about zero.
      expect(used).toBeGreaterThan(elapsedS * 0.2);
      expect(used).toBeLessThan(elapsedS * 2 + 0.05);
    } finally {
      await client.end();
    }
  });

  test("produces a well-formed result for the all role against its pgbench limit", async () => {
    const result = await runBench({
      durationS: 1,
      warmupS: 0.5,
      connections: 4,
      items: 5,
      lines: 3,
      scenarios: ["all"],
      limit: true,
      openLoop: true,
      base: null,
      webhook: null,
      logLevel: "warn",
      serverEnv: {},
      bunFlags: [],
      services: servicesFromEnv(),
      workDir,
      log: () => {},
    });
    expect(result.limit?.tps).toBeGreaterThan(0);
    expect(result.limit?.failed).toBe(0);
    expect(result.limit?.latencyMs.p50).toBeGreaterThan(0);
    const scenario = result.scenarios[0]!;
    expect(scenario.error).toBeUndefined();
    const run = scenario.runs[0]!;
    expect(run.load.requests).toBeGreaterThan(0);
    // Stock never runs out and chaos is off: every order is confirmed, and stock moved once for
    // each, over the closed-loop run and the open-loop one on the same server.
    expect(Object.keys(run.load.allStatuses)).toEqual(["201"]);
    const confirmed = run.load.allStatuses["201"]! + (run.openLoop?.allStatuses["201"] ?? 0);
    expect(run.stock).toEqual({ confirmed, deducted: confirmed, ok: true });
    expect(run.ratioToOrderScript).toBeGreaterThan(0);
    // The limit replays the run's own batch statements at the sizes it measured.
    expect(run.batchSizes.claim).toBeGreaterThanOrEqual(1);
    expect(run.ownLimit?.sizes.deduct).toBe(run.batchSizes.deduct!);
    expect(run.ownLimit?.ordersPerSecond).toBeGreaterThan(0);
    expect(run.ratioToLimit).toBe(Math.round((run.load.perSecond / run.ownLimit!.ordersPerSecond) * 1000) / 1000);
    expect(run.openLoop?.ratePerSecond).toBeCloseTo(run.load.perSecond / 2, 5);
    expect(Object.keys(run.openLoop!.allStatuses)).toEqual(["201"]);
    expect(run.processes[0]!.peakRssMb).toBeGreaterThan(0);
    expect(run.checks.map((c) => c.name)).toContain("ratio to limit");
    // The test's PostgreSQL runs on this machine, so its CPU is read from /proc for both.
    expect(result.limit?.postgresCpuMsPerTransaction).toBeGreaterThan(0);
    expect(run.postgresCpuMsPerRequest).toBeGreaterThan(0);
    const text = formatResult(result);
    expect(text).toContain("PostgreSQL CPU ms per answered request: all · 4 conns");
    expect(text).toContain("all · 4 conns");
    expect(text).toContain("pgbench, one order per commit");
    expect(text).toContain("limit: own SQL, 6 clients");
    expect(text).toContain("open loop");
    expect(text).toMatch(/(PASS|FAIL) {2}all · 4 conns/);
    // A before/after pairs runs by label.
    const before = { ...run, base: "abc1234", label: `before · ${run.label}`, load: { ...run.load, perSecond: run.load.perSecond / 2 } };
    const paired = beforeAfter({ ...result, scenarios: [{ name: "all", base: "abc1234", runs: [before] }, ...result.scenarios] });
    expect(paired.map((p) => [p.label, p.throughput])).toEqual([[run.label, 2]]);
  }, 120_000);

  test("with --webhook-compare, the subscribed run's relay sends every event to the loopback receiver", async () => {
    const result = await runBench({
      durationS: 1, warmupS: 0.5, connections: 4, items: 5, lines: 3, scenarios: ["all"], limit: false, openLoop: false,
      base: null, webhook: { first: true }, logLevel: "warn", serverEnv: {}, bunFlags: [], services: servicesFromEnv(), workDir, log: () => {},
    });
    expect(result.scenarios.map((s) => [s.error, s.runs.map((r) => r.label)])).toEqual([
      [undefined, ["webhook · all · 4 conns"]],
      [undefined, ["all · 4 conns"]],
    ]);
    const subscribed = result.scenarios[0]!.runs[0]!;
    // Two events per confirmed order (created, confirmed), all of them received.
    expect(subscribed.webhook!.events).toBe(2 * subscribed.stock!.confirmed);
    expect(subscribed.webhook!.delivered).toBeGreaterThanOrEqual(subscribed.webhook!.events);
    expect(subscribed.checks.find((c) => c.name === "every event sent")?.pass).toBe(true);
    expect(result.scenarios[1]!.runs[0]!.webhook).toBeUndefined();
    expect(withWebhook(result).map((p) => p.label)).toEqual(["all · 4 conns"]);
  }, 120_000);
});

describe("outbox trigger cost", () => {
  test("reads its options and rotates which variant goes first", () => {
    expect(parseCostArgs(["--rounds", "2", "--size", "8", "--warmup", "0"])).toMatchObject({ rounds: 2, size: 8, warmupS: 0, clients: 6 });
    expect(() => parseCostArgs(["--size", "0"])).toThrow("positive number");
    expect(() => parseCostArgs(["--fast"])).toThrow("unknown option");
    expect([0, 1, 2].map((r) => rotation(r).join(","))).toEqual(["none,row", "row,none", "none,row"]);
  });

  test("medians per variant and ratios to no trigger within each round", () => {
    const round = (none: number, row: number, cpu: [number, number]): Measured[] => [
      { variant: "none", ordersPerSecond: none, postgresCpuMsPerOrder: cpu[0], p99: 10 },
      { variant: "row", ordersPerSecond: row, postgresCpuMsPerOrder: cpu[1], p99: 20 },
    ];
    const text = summarizeCost([round(1000, 800, [0.4, 0.6]), round(2000, 1000, [0.4, 0.8])]);
    expect(text).toContain("none         1500 orders/s (1000, 2000) · ratio 1.00 · PostgreSQL CPU 0.400 ms/order (0.400, 0.400) · ratio 1.00 · p99 10.0 ms");
    expect(text).toContain("row           900 orders/s (800, 1000) · ratio 0.65 · PostgreSQL CPU 0.700 ms/order (0.600, 0.800) · ratio 1.75 · p99 20.0 ms");
  });
});
