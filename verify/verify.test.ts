import { afterAll, describe, expect, test } from "bun:test";
import { plugin } from "bun";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { checkInvariants, type InvariantName, type InvariantVerdict } from "./invariants.ts";
import { backoffMs, readAnswer, sendOrder, transportErrorKind, type CarefulClientOptions } from "./careful-client.ts";
import { planItems, planOrders } from "./load-driver.ts";
import { parseOptions, replayCommand, UsageError } from "./options.ts";
import { listeningPort } from "./processes.ts";
import { renderBar } from "./progress.ts";
import { buildReport, reportJson, type RunData } from "./report.ts";
import { renderMarkdown } from "./report-markdown.ts";
import { percentile, summarize } from "./stats.ts";
import { chaosTtlS } from "./run-chaos.ts";
import { counterBy } from "./system-api.ts";
import type { Answer, FinalObservation, ItemObservation, LedgerRow, OrderRecord } from "./types.ts";
import { resetResponse } from "../chaos/http-middleware.ts";
import { validateChaosConfig } from "../chaos/chaos.config.ts";
import { BACKENDS, startSystem } from "../tests/support/system.ts";

const ROOT = resolve(import.meta.dir, "..");

// ---------------------------------------------------------------------------------------------
// A small, consistent world the invariant checker must accept; each test below breaks one thing.
// ---------------------------------------------------------------------------------------------

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const at = (ms: number) => new Date(T0 + ms).toISOString();

function answer(status: number, orderId: string | null, orderStatus: string | null, kind: Answer["kind"] = "order"): Answer {
  return { lane: "main", status, kind, order_id: orderId, order_status: orderStatus, at_ms: 10 };
}

function final(status: FinalObservation["status"], path: string[]): FinalObservation {
  return {
    status,
    reason: null,
    server_attempts: path.length - 1,
    created_at: at(0),
    updated_at: at(path.length * 100),
    history: path.map((s, i) => ({ status: s, reason: null, at: at(i * 100) })),
    final_seen_ms: 0,
  };
}

function rec(n: number, item: string, quantity: number, answers: Answer[], f: FinalObservation | null): OrderRecord {
  return {
    index: n,
    key: `k${n}`,
    item_id: item,
    quantity,
    duplicate: false,
    attempts: answers.map((a) => ({ lane: a.lane, at_ms: 0, duration_ms: 5, status: a.status, order_id: a.order_id })),
    answers,
    sent_ms: 0,
    answered_ms: answers.length ? 10 : null,
    reconciled: false,
    final: f,
  };
}

function world() {
  const orders: OrderRecord[] = [
    rec(1, "a", 2, [answer(201, id(1), "confirmed")], final("confirmed", ["pending", "confirmed"])),
    rec(2, "a", 1, [answer(202, id(2), "queued")], final("confirmed", ["pending", "queued", "queued", "confirmed"])),
    rec(3, "b", 3, [answer(422, id(3), "rejected")], final("rejected", ["pending", "rejected"])),
    rec(4, "b", 1, [answer(202, id(4), "queued")], final("failed", ["pending", "queued", "failed"])),
    rec(5, "b", 1, [answer(202, id(5), "queued")], final("rejected", ["pending", "queued", "rejected"])),
  ];
  const items: ItemObservation[] = [
    { item_id: "a", initial: 10, current: 7 },
    { item_id: "b", initial: 5, current: 5 },
  ];
  const ledger: LedgerRow[] = [
    { order_id: null, item_id: "a", type: "create", quantity_change: 10, outcome: "applied" },
    { order_id: null, item_id: "b", type: "create", quantity_change: 5, outcome: "applied" },
    { order_id: id(1), item_id: "a", type: "deduct", quantity_change: -2, outcome: "applied" },
    { order_id: id(2), item_id: "a", type: "deduct", quantity_change: -1, outcome: "applied" },
    { order_id: id(3), item_id: "b", type: "deduct", quantity_change: 0, outcome: "insufficient_stock" },
    // Order 4: the deduction committed, its answer was lost, the worker gave up and released it.
    { order_id: id(4), item_id: "b", type: "deduct", quantity_change: -1, outcome: "applied" },
    { order_id: id(4), item_id: "b", type: "release", quantity_change: 1, outcome: "applied" },
    { order_id: id(5), item_id: "b", type: "deduct", quantity_change: 0, outcome: "insufficient_stock" },
  ];
  return { orders, items, ledger: ledger as LedgerRow[] | null, settleBoundMs: 60_000 };
}

const verdict = (vs: InvariantVerdict[], name: InvariantName) => vs.find((v) => v.name === name)!;
const failing = (vs: InvariantVerdict[]) => vs.filter((v) => v.status === "fail").map((v) => v.name);

describe("invariant checker", () => {
  test("a consistent run passes every invariant, ledger included", () => {
    const vs = checkInvariants(world());
    expect(vs).toHaveLength(12);
    expect(failing(vs)).toEqual([]);
    expect(vs.every((v) => v.status === "pass")).toBe(true);
    expect(verdict(vs, "accepted_orders_final").checked).toBe(4);
  });

  test("without the ledger its three checks are skipped, not passed", () => {
    const w = world();
    w.ledger = null;
    const vs = checkInvariants(w);
    expect(vs.filter((v) => v.status === "skipped").map((v) => v.name)).toEqual(["one_deduction_per_order", "deductions_match_orders", "ledger_matches_stock"]);
    expect(failing(vs)).toEqual([]);
  });

  test("an order that never got an answer", () => {
    const w = world();
    w.orders.push(rec(6, "a", 1, [], null));
    expect(failing(checkInvariants(w))).toEqual(["every_order_answered"]);
  });

  test("an answer outside the contract: key reported reused, or a stray 4xx", () => {
    const w = world();
    w.orders[0]!.answers.push(answer(422, null, null, "key_reused"));
    w.orders[1]!.answers.push(answer(404, null, null, "client_error"));
    const v = verdict(checkInvariants(w), "no_unexpected_answers");
    expect(v.status).toBe("fail");
    expect(v.breach_count).toBe(2);
  });

  test("one key answered with two order ids", () => {
    const w = world();
    w.orders[0]!.answers.push(answer(201, id(99), "confirmed"));
    expect(verdict(checkInvariants(w), "one_order_per_key").breaches[0]!.subject).toBe("k1");
  });

  test("one order id answered for two keys", () => {
    const w = world();
    w.orders.push(rec(7, "a", 2, [answer(201, id(1), "confirmed")], final("confirmed", ["pending", "confirmed"])));
    const v = verdict(checkInvariants(w), "no_order_for_two_keys");
    expect(v.status).toBe("fail");
    expect(v.breaches[0]!.subject).toBe(id(1));
  });

  test("an accepted order still queued after the bound, and one that vanished", () => {
    const w = world();
    w.orders[1]!.final = final("queued", ["pending", "queued"]);
    w.orders[3]!.final = { ...final("missing", []), history: [] };
    const v = verdict(checkInvariants(w), "accepted_orders_final");
    expect(v.breach_count).toBe(2);
    expect(v.breaches.map((b) => b.detail).join("\n")).toMatch(/still queued 60 s after healing[\s\S]*lost/);
  });

  test("a 201 that ends rejected, and a 422 that ends confirmed", () => {
    const w = world();
    w.orders[0]!.final = final("rejected", ["pending", "rejected"]);
    w.orders[2]!.final = final("confirmed", ["pending", "confirmed"]);
    expect(verdict(checkInvariants(w), "answers_kept").breach_count).toBe(2);
  });

  test("a history that skips the state machine", () => {
    const w = world();
    w.orders[3]!.final = final("failed", ["pending", "failed"]);
    const v = verdict(checkInvariants(w), "legal_transitions");
    expect(v.status).toBe("fail");
    expect(v.breaches[0]!.detail).toContain("pending → failed");
  });

  test("stock that moved without a confirmed order (a double deduction)", () => {
    const w = world();
    w.items[0]!.current = 6;
    expect(failing(checkInvariants(w))).toContain("stock_conservation");
    expect(verdict(checkInvariants(w), "stock_conservation").breaches[0]!.detail).toContain("off by 1");
  });

  test("oversell: stock below zero, or more confirmed than there was", () => {
    const w = world();
    w.items[1]!.current = -1;
    expect(verdict(checkInvariants(w), "no_oversell").status).toBe("fail");
    const w2 = world();
    w2.items[0]!.initial = 2;
    expect(verdict(checkInvariants(w2), "no_oversell").breaches[0]!.detail).toContain("confirmed 3 units of 2");
  });

  test("two applied deductions for one order", () => {
    const w = world();
    w.ledger!.push({ order_id: id(1), item_id: "a", type: "deduct", quantity_change: -2, outcome: "applied" });
    expect(verdict(checkInvariants(w), "one_deduction_per_order").breaches[0]!.subject).toBe(id(1));
  });

  test("a failed order whose deduction stands, a confirmed one without any, and a deduction nobody ordered", () => {
    const w = world();
    w.ledger = w.ledger!.filter((r) => !(r.order_id === id(4) && r.type === "release"));
    w.ledger = w.ledger.filter((r) => r.order_id !== id(2));
    w.ledger.push({ order_id: id(42), item_id: "a", type: "deduct", quantity_change: -1, outcome: "applied" });
    const v = verdict(checkInvariants(w), "deductions_match_orders");
    expect(v.breach_count).toBe(3);
    const text = v.breaches.map((b) => `${b.subject}: ${b.detail}`).join("\n");
    expect(text).toContain(`${id(4)}: failed, yet its deduction`);
    expect(text).toContain(`${id(2)}: confirmed without an applied deduction`);
    expect(text).toContain(`${id(42)}: applied deduction of 1 × a for an order no client was told about`);
  });

  test("a confirmed order whose deduction is for another quantity", () => {
    const w = world();
    w.ledger!.find((r) => r.order_id === id(1))!.quantity_change = -1;
    expect(verdict(checkInvariants(w), "deductions_match_orders").breaches[0]!.detail).toContain("confirmed 2 × a, deducted 1 × a");
  });

  test("a ledger that does not add up to the stock", () => {
    const w = world();
    w.ledger!.push({ order_id: null, item_id: "b", type: "restock", quantity_change: 4, outcome: "applied" });
    const v = verdict(checkInvariants(w), "ledger_matches_stock");
    expect(v.breaches).toEqual([{ subject: "b", detail: "movements sum to 9, stock is 5" }]);
  });

  test("breach lists are capped, counts are not", () => {
    const w = world();
    for (let i = 0; i < 30; i++) w.orders.push(rec(100 + i, "a", 1, [], null));
    const v = verdict(checkInvariants({ ...w, maxBreaches: 5 }), "every_order_answered");
    expect(v.breach_count).toBe(30);
    expect(v.breaches).toHaveLength(5);
  });
});

describe("statistics", () => {
  test("nearest-rank percentiles", () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(summarize(hundred)).toEqual({ count: 100, p50: 50, p95: 95, p99: 99, max: 100, mean: 51 });
  });
});

describe("careful client", () => {
  // A scripted server: per key, answers in turn (a status, "reset", or "hang").
  const seen: Array<{ key: string | null; requestId: string | null; body: string }> = [];
  let script: Array<number | "reset" | "hang"> = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      seen.push({ key: req.headers.get("idempotency-key"), requestId: req.headers.get("x-request-id"), body: await req.text() });
      const step = script.shift() ?? 201;
      if (step === "reset") return resetResponse();
      if (step === "hang") {
        await Bun.sleep(500);
        return new Response("late", { status: 201 });
      }
      const body =
        step === 201 || step === 202
          ? { order_id: id(1), status: step === 201 ? "confirmed" : "queued" }
          : step === 422
            ? { type: "https://valerix.dev/problems/insufficient-stock", status: 422, order_id: id(1), order_status: "rejected" }
            : { type: "https://valerix.dev/problems/x", status: step };
      return new Response(JSON.stringify(body), { status: step, headers: { "content-type": "application/json" } });
    },
  });
  afterAll(() => server.stop(true));

  const opts = (over: Partial<CarefulClientOptions> = {}): CarefulClientOptions => ({
    baseUrl: `http://127.0.0.1:${server.port}`,
    timeoutMs: 200,
    maxAttempts: 8,
    backoffBaseMs: 100,
    backoffCapMs: 2000,
    elapsed: () => performance.now(),
    sleep: async () => {}, // backoff values are tested on their own below
    ...over,
  });

  test("retries 503, 409, a reset connection and a timeout with the same key, then keeps the 201", async () => {
    seen.length = 0;
    script = [503, 409, "reset", "hang", 201];
    const r = await sendOrder(opts(), { key: "order-1", item_id: "a", quantity: 2 }, "main", () => 0.5);
    expect(r.attempts.map((a) => a.status)).toEqual([503, 409, 0, 0, 201]);
    expect(r.attempts.map((a) => a.error ?? null)).toEqual([null, null, "reset", "timeout", null]);
    expect(r.answer).toMatchObject({ status: 201, kind: "order", order_id: id(1), order_status: "confirmed" });
    expect(new Set(seen.map((s) => s.key))).toEqual(new Set(["order-1"]));
    expect(new Set(seen.map((s) => s.body)).size).toBe(1);
    expect(seen.map((s) => s.requestId)).toEqual(["order-1.m1", "order-1.m2", "order-1.m3", "order-1.m4", "order-1.m5"]);
  });

  test("a 422 is an answer: no retry", async () => {
    script = [422];
    const r = await sendOrder(opts(), { key: "order-2", item_id: "a", quantity: 1 }, "main", () => 0.5);
    expect(r.attempts).toHaveLength(1);
    expect(r.answer).toMatchObject({ status: 422, kind: "order", order_status: "rejected" });
  });

  test("gives up after maxAttempts and says so, every attempt kept", async () => {
    script = [503, 503, 503];
    const r = await sendOrder(opts({ maxAttempts: 3 }), { key: "order-3", item_id: "a", quantity: 1 }, "main", () => 0.5);
    expect(r.answer).toBeNull();
    expect(r.attempts.map((a) => a.status)).toEqual([503, 503, 503]);
  });

  test("backoff is capped and jittered; transport errors are named; answers are read", () => {
    expect(backoffMs(0, 100, 2000, () => 0.5)).toBe(50);
    expect(backoffMs(3, 100, 2000, () => 0.5)).toBe(400);
    expect(backoffMs(10, 100, 2000, () => 0.999)).toBeLessThanOrEqual(2000);
    expect(transportErrorKind(new DOMException("t", "TimeoutError"))).toBe("timeout");
    expect(transportErrorKind(Object.assign(new Error("socket closed"), { code: "ECONNRESET" }))).toBe("reset");
    expect(readAnswer(422, JSON.stringify({ type: "https://valerix.dev/problems/idempotency-key-reused" })).kind).toBe("key_reused");
    expect(readAnswer(400, "{}").kind).toBe("client_error");
  });
});

describe("plan, options, progress, report", () => {
  test("the same seed gives the same orders; another seed other orders", () => {
    const o = { orders: 500, items: 4, seed: 42, runId: "r1", duplicateRate: 0.05, unknownRate: 0.01 };
    const items = planItems(o);
    expect(items.map((i) => i.stock)).toEqual([175, 500, 175, 500]);
    const a = planOrders(o, items);
    expect(planOrders(o, items)).toEqual(a);
    expect(planOrders({ ...o, seed: 43 }, items)).not.toEqual(a);
    expect(new Set(a.map((p) => p.key)).size).toBe(500);
    const dups = a.filter((p) => p.duplicate).length;
    expect(dups).toBeGreaterThan(5);
    expect(dups).toBeLessThan(60);
    expect(a.every((p) => p.quantity >= 1 && p.quantity <= 3)).toBe(true);
  });

  test("options: defaults, and refusals with a reason", () => {
    const o = parseOptions(["--scenario", "extreme", "--orders", "300", "--seed", "7"], {})!;
    expect(o).toMatchObject({ scenario: "extreme", orders: 300, seed: 7, concurrency: 24, target: null, progress: "auto" });
    expect(parseOptions(["--help"], {})).toBeNull();
    expect(() => parseOptions(["--scenario", "apocalypse"], {})).toThrow(UsageError);
    expect(() => parseOptions(["--orders", "0"], {})).toThrow(/--orders/);
    expect(() => parseOptions(["--inventory-url", "http://x"], {})).toThrow(/only apply with --target/);
    expect(() => parseOptions(["--chaos", "[1]"], {})).toThrow(/JSON object/);
    expect(parseOptions(["--target", "http://h:3000/"], { ADMIN_TOKEN: "t" })).toMatchObject({ target: "http://h:3000", adminToken: "t" });
    // The experiment outlives the planned load with room to spare, but not by much.
    expect(chaosTtlS({ orders: 2000, rate: 50 })).toBe(300);
    expect(chaosTtlS({ orders: 2000, rate: 5 })).toBe(1320);
    expect(chaosTtlS({ orders: 2000, rate: 0 })).toBe(1800);
  });

  test("options: --env settings reach the started roles and the replay command; the runner's own wiring is refused", () => {
    const o = parseOptions(["--scenario", "extreme", "--seed", "3", "--env", "RETRY_MAX_ATTEMPTS=2", "--env", "RETRY_MAX_DELAY_MS=400"], {})!;
    expect(o.roleEnv).toEqual({ RETRY_MAX_ATTEMPTS: "2", RETRY_MAX_DELAY_MS: "400" });
    expect(replayCommand(o)).toEndWith("--env RETRY_MAX_ATTEMPTS=2 --env RETRY_MAX_DELAY_MS=400");
    expect(parseOptions([], {})!.roleEnv).toEqual({});
    expect(() => parseOptions(["--env", "retry=2"], {})).toThrow(/NAME=VALUE/);
    expect(() => parseOptions(["--env", "DATABASE_URL=postgres://elsewhere"], {})).toThrow(/set by the runner itself/);
  });

  test("progress bar and the start-up line and metrics the runner reads", () => {
    const line = renderBar({ done: 50, total: 200, answers: { "201": 40, "202": 10 }, retried: 3 }, 5, 100);
    expect(line).toContain(" 50/200 201:40 202:10 retried:3 10/s eta 15s");
    expect(listeningPort(`noise\n{"level":30,"port":41234,"msg":"valerix listening"}\n`)).toBe(41234);
    expect(listeningPort(`{"level":30,"msg":"valerix listening"`)).toBeNull();
    const text = 'circuit_breaker_transitions_total{from="closed",to="open"} 3\ncircuit_breaker_transitions_total{from="half-open",to="open"} 2\n';
    expect(counterBy(text, "circuit_breaker_transitions_total", "to")).toEqual({ open: 5 });
    expect(counterBy(text, "circuit_breaker_transitions_total", "to", { from: "closed" })).toEqual({ open: 3 });
  });

  test("the report: verdict, capped affected list in Markdown, whole list in JSON", () => {
    const w = world();
    for (let i = 0; i < 60; i++) {
      const r = rec(200 + i, "a", 1, [answer(202, id(200 + i), "queued")], final("rejected", ["pending", "queued", "rejected"]));
      r.attempts.unshift({ lane: "main", at_ms: 0, duration_ms: 1500, status: 503 });
      w.orders.push(r);
    }
    const verdicts = checkInvariants(w);
    const data: RunData = {
      tool: "t",
      command: "npm run chaos -- --seed 1",
      options: { scenario: "moderate", seed: 1, concurrency: 4, max_attempts: 8, duplicate_rate: 0.05, delay_threshold_ms: 1000 },
      runId: "r",
      startedAt: at(0),
      finishedAt: at(10_000),
      environment: { mode: "spawned", database: "postgres", key_value: "Redis (DB 3)", retry_queue: "Redis Streams", urls: { orders: "o", inventory: "i", chaos: "i" }, runtime: "bun", platform: "linux", cpus: 2 },
      chaos: { requested: { preset: "moderate" }, active: { preset: "moderate", pattern: "random", seed: 1, routes: "deduct", crash_rate: 0.15, crash_mode: "mix" }, applied_ms: 0, healed_ms: 1, event_counts: { crash_503: 4 }, recent_events: [] },
      phases: { load: 5000, settle: 2000 },
      items: w.items,
      records: w.orders,
      verdicts,
      settle: { bound_ms: 60_000, unfinished: 0, reconciled: 0 },
      ledger: { "create:applied": 2, "deduct:applied": 3, "deduct:insufficient_stock": 2, "release:applied": 1 },
      server: null,
      delayThresholdMs: 1000,
      jsonOrders: "affected",
    };
    const report = buildReport(data);
    expect(report.verdict).toBe("pass");
    expect(report.summary.affected).toMatchObject({ total: 63, queued: 63, delayed: 60, retried: 60 });
    expect(report.affected_orders).toHaveLength(63);
    expect(report.orders).toHaveLength(63);
    expect(report.summary.first_answer_by_status).toEqual({ "201": 1, "202": 63, "422": 1 });
    const md = renderMarkdown(report, { maxAffectedRows: 50 });
    expect(md).toContain("— PASS");
    expect(md).toContain("### Queued (202), longest to a final state first: 63");
    expect(md).toContain("… 13 more in the JSON report");
    expect(md).toContain("### Delayed, slowest first: 60");
    expect(md).toContain("inventory's ledger for the run: create applied 2, deduct applied 3, deduct insufficient_stock 2, release applied 1");
    expect(md).toContain("crash 15 % (mix)");
    const capped = buildReport({ ...data, jsonMaxOrders: 10 });
    expect(capped.orders).toHaveLength(10);
    expect(capped.orders_omitted).toBe(53);
    const parsed = JSON.parse(reportJson(report)) as typeof report;
    expect(parsed.affected_orders).toHaveLength(63);
    expect(parsed.invariants.map((v) => v.name)).toEqual(verdicts.map((v) => v.name));
  });
});

describe("k6 scripts", () => {
  const dir = join(ROOT, "verify", "k6");
  const files = readdirSync(dir).filter((f) => f.endsWith(".js"));

  test("parse as JavaScript and import only k6 modules and each other", () => {
    expect(files.sort()).toEqual(["chaos.js", "lib.js", "load.js"]);
    const t = new Bun.Transpiler({ loader: "js" });
    for (const f of files) {
      const src = readFileSync(join(dir, f), "utf8");
      expect(() => t.transformSync(src)).not.toThrow();
      for (const imp of t.scan(src).imports) expect(imp.path).toMatch(/^(k6(\/[a-z]+)?|\.\/lib\.js)$/);
    }
  });

  test("the chaos body and thresholds they use are ones the system accepts and defines", async () => {
    // k6's runtime modules exist only inside k6: stand-ins so the scripts can be loaded here.
    const metric = (kind: string) => class { constructor(readonly name: string) { (globalThis as any).__k6Metrics.push([kind, name]); } add() {} };
    (globalThis as any).__k6Metrics = [];
    (globalThis as any).__ENV = { PRESET: "extreme", SEED: "9" };
    plugin({
      name: "k6 stand-ins",
      setup(build) {
        build.module("k6", () => ({ exports: { check: () => true, sleep: () => {} }, loader: "object" }));
        build.module("k6/http", () => ({ exports: { default: {} }, loader: "object" }));
        build.module("k6/execution", () => ({ exports: { default: { scenario: { iterationInTest: 0 } } }, loader: "object" }));
        build.module("k6/metrics", () => ({ exports: { Counter: metric("counter"), Rate: metric("rate"), Trend: metric("trend") }, loader: "object" }));
      },
    });
    const chaos = await import(join(dir, "chaos.js"));
    const load = await import(join(dir, "load.js"));
    const v = validateChaosConfig(chaos.CHAOS_BODY, { defaultSeed: 1 });
    expect(v.ok).toBe(true);
    if (v.ok) expect(v.config).toMatchObject({ preset: "extreme", seed: 9 });
    const defined = new Set(((globalThis as any).__k6Metrics as string[][]).map(([, n]) => n));
    for (const o of [chaos.options, load.options]) {
      for (const name of Object.keys(o.thresholds)) {
        const base = name.replace(/\{.*\}$/, "");
        if (!base.startsWith("http_")) expect(defined.has(base)).toBe(true);
      }
    }
  });

  test("every API path they call is in the running server's OpenAPI document", async () => {
    const sys = await startSystem(BACKENDS[BACKENDS.length - 1]!);
    try {
      const spec = (await (await sys.get("/swagger/json")).json()) as { paths: Record<string, unknown> };
      const paths = Object.keys(spec.paths).map((p) => p.replace(/\/$/, ""));
      const used = new Set<string>();
      for (const f of files) for (const m of readFileSync(join(dir, f), "utf8").matchAll(/"(\/api\/[a-z/]*)"/g)) used.add(m[1]!);
      expect(used.size).toBeGreaterThanOrEqual(4);
      for (const u of used) {
        const prefix = u.replace(/\/$/, "");
        expect({ path: u, known: paths.some((p) => p === prefix || p.startsWith(`${prefix}/`)) }).toEqual({ path: u, known: true });
      }
    } finally {
      await sys.stop();
    }
  }, 60_000);
});

describe("verification run, end to end", () => {
  const out = mkdtempSync(join(tmpdir(), "valerix-chaos-test-"));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  test("150 orders under the moderate preset, seed 42: every invariant holds, exit code 0", async () => {
    const prefix = join(out, "report");
    const proc = Bun.spawn(
      [process.execPath, join(ROOT, "verify", "run.ts"), "--scenario", "moderate", "--orders", "150", "--seed", "42", "--concurrency", "16", "--settle-timeout", "45", "--out", prefix, "--plain"],
      { cwd: ROOT, stdout: "pipe", stderr: "pipe" },
    );
    const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    if (code !== 0) console.error(stderr);
    expect(code).toBe(0);
    const report = JSON.parse(readFileSync(`${prefix}.json`, "utf8"));
    expect(report.verdict).toBe("pass");
    expect(report.summary.logical_orders).toBe(150);
    // The ledger was read: no invariant may be skipped in a run that started the system itself.
    expect(report.invariants.map((v: InvariantVerdict) => v.status)).toEqual(Array(12).fill("pass"));
    const injected = Object.values(report.chaos.event_counts as Record<string, number>).reduce((s, n) => s + n, 0);
    expect(injected).toBeGreaterThan(0);
    expect(readFileSync(`${prefix}.md`, "utf8")).toContain("— PASS");
  }, 120_000);
});
