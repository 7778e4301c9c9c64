import { afterAll, describe, expect, test } from "bun:test";
import { plugin } from "bun";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { checkInvariants, LEDGER_INVARIANTS, type InvariantName, type InvariantVerdict } from "./invariants.ts";
import { backoffMs, orderBody, readAnswer, readCancelAnswer, sendCancel, sendOrder, transportErrorKind, type CarefulClientOptions } from "./careful-client.ts";
import { planItems, planOrders, planRestocks, runCancel } from "./load-driver.ts";
import { cancelAfterHeal } from "./settle.ts";
import { parseOptions, replayCommand, UsageError } from "./options.ts";
import { listeningPort } from "./processes.ts";
import { prepareRedis, redisAnswers, REDIS_CLAIM_KEY } from "./backing-services.ts";
import { renderBar } from "./progress.ts";
import { buildReport, reportJson, type RunData } from "./report.ts";
import { renderMarkdown } from "./report-markdown.ts";
import { percentile, summarize } from "./stats.ts";
import { chaosTtlS } from "./run-chaos.ts";
import { counterBy } from "./system-api.ts";
import type { Answer, CancelAnswer, CancelRecord, FinalObservation, ItemObservation, LedgerRow, OrderLine, OrderRecord, RestockRecord } from "./types.ts";
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
const tx = (n: number) => `2026-01-01 00:00:${String(n).padStart(2, "0")}.000001+00`;

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

const L = (spec: string): OrderLine[] =>
  spec.split(",").map((p) => {
    const [item, q] = p.trim().split("×");
    return { item_id: item!.trim(), quantity: Number(q) };
  });

function rec(n: number, lines: string, answers: Answer[], f: FinalObservation | null): OrderRecord {
  return {
    index: n,
    key: `k${n}`,
    lines: L(lines),
    form: "lines",
    duplicate: false,
    attempts: answers.map((a) => ({ lane: a.lane, at_ms: 0, duration_ms: 5, status: a.status, order_id: a.order_id })),
    answers,
    sent_ms: 0,
    answered_ms: answers.length ? 10 : null,
    reconciled: false,
    cancel: null,
    final: f,
  };
}

const cAnswer = (lane: CancelAnswer["lane"], key: string, status: number, orderStatus: string | null, kind: CancelAnswer["kind"] = status === 409 ? "not_cancellable" : "order", replayed = false): CancelAnswer => ({
  lane,
  key,
  status,
  kind,
  order_status: orderStatus,
  replayed,
  at_ms: 20,
});

function cancelOf(n: number, orderAnswer: number, answers: CancelAnswer[], over: Partial<CancelRecord> = {}): CancelRecord {
  return {
    moment: "immediate",
    delay_ms: 0,
    key: `k${n}-cancel`,
    replay: answers.some((a) => a.lane === "cancel_replay"),
    second_key: answers.some((a) => a.lane === "cancel_second") ? `k${n}-cancel-2` : null,
    reason: null,
    order_answer: orderAnswer,
    sent_ms: 15,
    attempts: answers.map((a) => ({ lane: a.lane, at_ms: 15, duration_ms: 5, status: a.status })),
    answers,
    ...over,
  };
}

const row = (order: number | null, item: string, type: LedgerRow["type"], change: number, t: number): LedgerRow => ({
  order_id: order === null ? null : id(order),
  item_id: item,
  type,
  quantity_change: change,
  tx_at: tx(t),
});

function world() {
  const orders: OrderRecord[] = [
    rec(1, "a×2, b×1", [answer(201, id(1), "confirmed")], final("confirmed", ["pending", "confirmed"])),
    rec(2, "a×1", [answer(202, id(2), "queued")], final("confirmed", ["pending", "queued", "queued", "confirmed"])),
    rec(3, "b×3, c×1", [answer(422, id(3), "rejected")], final("rejected", ["pending", "rejected"])),
    rec(4, "b×1", [answer(202, id(4), "queued")], final("failed", ["pending", "queued", "failed"])),
    rec(5, "b×1, a×1", [answer(202, id(5), "queued")], final("rejected", ["pending", "queued", "rejected"])),
    // Confirmed, then cancelled by its client: both lines deducted, both given back.
    rec(6, "a×1, c×2", [answer(201, id(6), "confirmed")], final("cancelled", ["pending", "confirmed", "cancelling", "cancelled"])),
    // Queued, cancelled while inventory was away (202), finished by the worker; never deducted.
    rec(7, "c×1", [answer(202, id(7), "queued")], final("cancelled", ["pending", "queued", "cancelling", "cancelled"])),
  ];
  orders[0]!.form = "one_item";
  orders[5]!.cancel = cancelOf(6, 201, [cAnswer("cancel", "k6-cancel", 200, "cancelled"), cAnswer("cancel_replay", "k6-cancel", 200, "cancelled", "order", true), cAnswer("cancel_second", "k6-cancel-2", 200, "cancelled")]);
  orders[6]!.cancel = cancelOf(7, 202, [cAnswer("cancel", "k7-cancel", 202, "cancelling"), cAnswer("cancel_second", "k7-cancel-2", 200, "cancelled")]);
  // A cancel of a refused order: 409, and again with the same key.
  orders[2]!.cancel = cancelOf(3, 422, [cAnswer("cancel", "k3-cancel", 409, "rejected"), cAnswer("cancel_replay", "k3-cancel", 409, "rejected", "not_cancellable", true)]);
  const items: ItemObservation[] = [
    { item_id: "a", initial: 10, current: 7, db_quantity: 7 },
    { item_id: "b", initial: 5, current: 8, db_quantity: 8 },
    { item_id: "c", initial: 8, current: 8, db_quantity: 8 },
  ];
  const ledger: LedgerRow[] = [
    row(null, "a", "create", 10, 0),
    row(null, "b", "create", 5, 0),
    row(null, "c", "create", 8, 0),
    row(1, "a", "deduct", -2, 1),
    row(1, "b", "deduct", -1, 1),
    row(2, "a", "deduct", -1, 2),
    // Order 4: the deduction committed, its answer was lost, the worker gave up and released it.
    row(4, "b", "deduct", -1, 4),
    row(4, "b", "release", 1, 5),
    row(null, "b", "restock", 4, 6),
    row(6, "a", "deduct", -1, 7),
    row(6, "c", "deduct", -2, 7),
    row(6, "a", "release", 1, 8),
    row(6, "c", "release", 2, 8),
  ];
  const restocks: RestockRecord[] = [{ item_id: "b", quantity: 4, at_ms: 5, status: 200 }];
  return { orders, items, ledger: ledger as LedgerRow[] | null, restocks, settleBoundMs: 60_000 };
}

const verdict = (vs: InvariantVerdict[], name: InvariantName) => vs.find((v) => v.name === name)!;
const failing = (vs: InvariantVerdict[]) => vs.filter((v) => v.status === "fail").map((v) => v.name);
const details = (v: InvariantVerdict) => v.breaches.map((b) => `${b.subject}: ${b.detail}`).join("\n");

describe("invariant checker", () => {
  test("a consistent run passes every invariant, ledger included", () => {
    const vs = checkInvariants(world());
    expect(vs).toHaveLength(16);
    expect(failing(vs)).toEqual([]);
    expect(vs.every((v) => v.status === "pass")).toBe(true);
    expect(verdict(vs, "accepted_orders_final").checked).toBe(6);
    expect(verdict(vs, "cancel_answers_consistent").checked).toBe(3);
    expect(verdict(vs, "cancelled_has_no_standing_deduction").checked).toBe(2);
    expect(verdict(vs, "no_line_deducted_twice").checked).toBe(6);
  });

  test("without the ledger its six checks are skipped, not passed", () => {
    const w = world();
    w.ledger = null;
    const vs = checkInvariants(w);
    expect(vs.filter((v) => v.status === "skipped").map((v) => v.name)).toEqual([...LEDGER_INVARIANTS]);
    expect(LEDGER_INVARIANTS).toHaveLength(6);
    // The restock the runner was told of stands in for the ledger's.
    expect(failing(vs)).toEqual([]);
  });

  test("an order that never got an answer", () => {
    const w = world();
    w.orders.push(rec(8, "a×1", [], null));
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
    w.orders.push(rec(9, "a×2, b×1", [answer(201, id(1), "confirmed")], final("confirmed", ["pending", "confirmed"])));
    const v = verdict(checkInvariants(w), "no_order_for_two_keys");
    expect(v.status).toBe("fail");
    expect(v.breaches[0]!.subject).toBe(id(1));
  });

  test("an accepted order still queued after the bound, one still cancelling, and one that vanished", () => {
    const w = world();
    w.orders[1]!.final = final("queued", ["pending", "queued"]);
    w.orders[3]!.final = { ...final("missing", []), history: [] };
    w.orders[6]!.final = final("cancelling", ["pending", "queued", "cancelling"]);
    const v = verdict(checkInvariants(w), "accepted_orders_final");
    expect(v.breach_count).toBe(3);
    expect(details(v)).toMatch(/still queued 60 s after healing[\s\S]*lost[\s\S]*still cancelling/);
  });

  test("a 201 that ends rejected, a 422 that ends confirmed or cancelled, and a cancelled order nobody cancelled", () => {
    const w = world();
    w.orders[0]!.final = final("rejected", ["pending", "rejected"]);
    w.orders[2]!.final = final("confirmed", ["pending", "confirmed"]);
    w.orders[4]!.final = final("cancelled", ["pending", "queued", "cancelling", "cancelled"]);
    const v = verdict(checkInvariants(w), "answers_kept");
    expect(v.breach_count).toBe(3);
    expect(details(v)).toContain("k5: ended cancelled, yet its client never asked to cancel it");
    const w2 = world();
    w2.orders[4]!.answers = [answer(422, id(5), "rejected")];
    w2.orders[4]!.final = final("cancelled", ["pending", "queued", "cancelling", "cancelled"]);
    w2.orders[4]!.cancel = cancelOf(5, 422, []);
    expect(details(verdict(checkInvariants(w2), "answers_kept"))).toContain("answered 422 but ended cancelled");
  });

  test("a history that skips the state machine, or leaves cancelled", () => {
    const w = world();
    w.orders[3]!.final = final("failed", ["pending", "failed"]);
    w.orders[5]!.final = final("cancelled", ["pending", "confirmed", "cancelled"]);
    const v = verdict(checkInvariants(w), "legal_transitions");
    expect(v.breach_count).toBe(2);
    expect(details(v)).toContain("pending → failed");
    expect(details(v)).toContain("confirmed → cancelled");
  });

  test("cancel answers that contradict the order, their replays or their second key", () => {
    const cases: Array<[string, (w: ReturnType<typeof world>) => void, string]> = [
      ["200 not cancelled", (w) => (w.orders[5]!.cancel!.answers[0]!.order_status = "cancelling"), "200 (cancel) with status cancelling, not cancelled"],
      ["202 not cancelling", (w) => (w.orders[6]!.cancel!.answers[0]!.order_status = "confirmed"), "202 (cancel) with status confirmed, not cancelling"],
      [
        "409 for an order that was cancellable",
        (w) => {
          w.orders[0]!.cancel = cancelOf(1, 201, [cAnswer("cancel", "k1-cancel", 409, "confirmed")]);
        },
        "409 (cancel) not cancellable, with status confirmed",
      ],
      ["409 for an order that then ended confirmed", (w) => (w.orders[2]!.final = final("confirmed", ["pending", "confirmed"])), "not cancellable, yet the order ended confirmed"],
      ["a replay with another status", (w) => (w.orders[5]!.cancel!.answers[1]!.status = 202), "the same key answered 200, then 202"],
      ["a replay without the replay header", (w) => (w.orders[5]!.cancel!.answers[1]!.replayed = false), "answered 200 without Idempotent-Replayed"],
      ["a second key that forgot the cancel", (w) => (w.orders[5]!.cancel!.answers[2]!.status = 202), "a cancelled order answered a second key 202, not 200"],
      [
        "an accepted cancel whose order did not end cancelled",
        (w) => {
          w.orders[6]!.final = final("confirmed", ["pending", "queued", "confirmed"]);
        },
        "cancel accepted, yet the order is confirmed",
      ],
      ["a cancel never answered", (w) => (w.orders[6]!.cancel!.answers = []), "the cancel never got an answer"],
      ["a 404 for an order that exists", (w) => (w.orders[5]!.cancel!.answers[0] = cAnswer("cancel", "k6-cancel", 404, null, "not_found")), "answer outside the cancel contract (not found)"],
      [
        "a cancel of a refused order accepted",
        (w) => {
          w.orders[2]!.cancel = cancelOf(3, 422, [cAnswer("cancel", "k3-cancel", 200, "cancelled")]);
        },
        "accepted a cancel of an order answered 422",
      ],
    ];
    for (const [name, breakIt, want] of cases) {
      const w = world();
      breakIt(w);
      const v = verdict(checkInvariants(w), "cancel_answers_consistent");
      expect({ name, status: v.status, text: details(v).includes(want) ? want : details(v) }).toEqual({ name, status: "fail", text: want });
    }
  });

  test("stock that moved without a standing order (a double deduction), and a restock the ledger lacks", () => {
    const w = world();
    w.items[0]!.current = 6;
    const v = verdict(checkInvariants(w), "stock_conservation");
    expect(v.breaches[0]!.detail).toContain("off by 1");
    const w2 = world();
    w2.ledger = w2.ledger!.filter((r) => r.type !== "restock");
    w2.items[1]!.current = 4;
    w2.items[1]!.db_quantity = 4;
    expect(details(verdict(checkInvariants(w2), "stock_conservation"))).toContain("the ledger holds restocks of 0, the runner was told of 4");
  });

  test("stock conservation counts adjustments and gives back cancelled orders' lines", () => {
    const w = world();
    w.ledger!.push(row(null, "b", "adjust", -2, 9));
    w.items[1]!.current = 6;
    w.items[1]!.db_quantity = 6;
    expect(failing(checkInvariants(w))).toEqual([]);
    // Counting the cancelled order 6 as standing would take a and c below their stock.
    const w2 = world();
    w2.orders[5]!.final = final("confirmed", ["pending", "confirmed"]);
    w2.orders[5]!.cancel = null;
    expect(verdict(checkInvariants(w2), "stock_conservation").breach_count).toBe(2);
  });

  test("oversell: stock below zero, or more standing than there ever was", () => {
    const w = world();
    w.items[1]!.current = -1;
    expect(verdict(checkInvariants(w), "no_oversell").status).toBe("fail");
    const w2 = world();
    w2.items[0]!.initial = 2;
    expect(verdict(checkInvariants(w2), "no_oversell").breaches[0]!.detail).toContain("confirmed 3 units of 2");
    const w3 = world();
    w3.items[2]!.db_quantity = -3;
    expect(details(verdict(checkInvariants(w3), "no_oversell"))).toContain("quantity in the database is -3");
  });

  test("one order deducted by two transactions", () => {
    const w = world();
    w.ledger!.find((r) => r.order_id === id(1) && r.item_id === "b")!.tx_at = tx(3);
    const vs = checkInvariants(w);
    expect(failing(vs)).toEqual(["one_deduction_per_order"]);
    expect(verdict(vs, "one_deduction_per_order").breaches[0]).toEqual({ subject: id(1), detail: "deducted in 2 transactions (2 rows)" });
  });

  test("a line deducted twice, and one released twice", () => {
    const w = world();
    w.ledger!.push(row(1, "a", "deduct", -2, 1));
    w.ledger!.push(row(6, "c", "release", 2, 8));
    const v = verdict(checkInvariants(w), "no_line_deducted_twice");
    expect(v.breach_count).toBe(2);
    expect(details(v)).toContain(`${id(1)}: line a deducted 2 times`);
    expect(details(v)).toContain(`${id(6)}: line c released 2 times`);
  });

  test("an order with some of its lines deducted, or another quantity", () => {
    const w = world();
    w.ledger = w.ledger!.filter((r) => !(r.order_id === id(1) && r.item_id === "b"));
    const v = verdict(checkInvariants(w), "lines_all_or_nothing");
    expect(v.breaches).toEqual([{ subject: id(1), detail: "ordered a × 2, b × 1; deducted a × 2" }]);
    // A refused order that took one of its lines is as wrong.
    const w2 = world();
    w2.ledger!.push(row(5, "b", "deduct", -1, 10));
    expect(verdict(checkInvariants(w2), "lines_all_or_nothing").breaches[0]!.subject).toBe(id(5));
    const w3 = world();
    w3.ledger!.find((r) => r.order_id === id(2))!.quantity_change = -3;
    expect(verdict(checkInvariants(w3), "lines_all_or_nothing").breaches[0]!.detail).toBe("ordered a × 1; deducted a × 3");
  });

  test("a failed order whose deduction stands, a confirmed one without any, and a deduction nobody ordered", () => {
    const w = world();
    w.ledger = w.ledger!.filter((r) => !(r.order_id === id(4) && r.type === "release"));
    w.ledger = w.ledger.filter((r) => r.order_id !== id(2));
    w.ledger.push(row(42, "a", "deduct", -1, 11));
    const v = verdict(checkInvariants(w), "deductions_match_orders");
    expect(v.breach_count).toBe(3);
    const text = details(v);
    expect(text).toContain(`${id(4)}: failed, yet deductions stand: b -1`);
    expect(text).toContain(`${id(2)}: confirmed without an applied deduction`);
    expect(text).toContain(`${id(42)}: deduction of 1 × a for an order no client was told about`);
  });

  test("a confirmed order released, and a release larger than its deduction", () => {
    const w = world();
    w.ledger!.push(row(1, "b", "release", 1, 12));
    expect(details(verdict(checkInvariants(w), "deductions_match_orders"))).toContain(`${id(1)}: confirmed, but its deduction was released`);
    const w2 = world();
    w2.ledger!.find((r) => r.order_id === id(4) && r.type === "release")!.quantity_change = 2;
    expect(details(verdict(checkInvariants(w2), "deductions_match_orders"))).toContain(`${id(4)}: b: released 1 more than was deducted`);
  });

  test("a cancelled order with a line still deducted", () => {
    const w = world();
    w.ledger = w.ledger!.filter((r) => !(r.order_id === id(6) && r.type === "release" && r.item_id === "c"));
    const v = verdict(checkInvariants(w), "cancelled_has_no_standing_deduction");
    expect(v.breaches).toEqual([{ subject: id(6), detail: "cancelled, yet its movements sum to c -2" }]);
    // A cancelled order that was never deducted has nothing to give back, and passes.
    expect(verdict(checkInvariants(world()), "cancelled_has_no_standing_deduction").status).toBe("pass");
  });

  test("a ledger that does not add up to the stock, as the API or the database shows it", () => {
    const w = world();
    w.ledger!.push(row(null, "c", "restock", 4, 13));
    w.restocks.push({ item_id: "c", quantity: 4, at_ms: 9, status: 0 });
    const v = verdict(checkInvariants(w), "ledger_sums_match_stock");
    expect(v.breaches).toEqual([
      { subject: "c", detail: "movements sum to 12, the API shows stock 8" },
      { subject: "c", detail: "movements sum to 12, the database holds 8" },
    ]);
    const w2 = world();
    w2.items[0]!.db_quantity = 9;
    expect(verdict(checkInvariants(w2), "ledger_sums_match_stock").breaches).toEqual([{ subject: "a", detail: "movements sum to 7, the database holds 9" }]);
  });

  test("breach lists are capped, counts are not", () => {
    const w = world();
    for (let i = 0; i < 30; i++) w.orders.push(rec(100 + i, "a×1", [], null));
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
  let script: Array<number | "reset" | "hang" | { status: number; body: unknown; replayed?: boolean }> = [];
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      seen.push({ key: req.headers.get("idempotency-key"), requestId: req.headers.get("x-request-id"), body: await req.text() });
      const step = script.shift() ?? 201;
      if (step === "reset") return resetResponse();
      if (typeof step === "object") {
        const headers: Record<string, string> = { "content-type": "application/json" };
        if (step.replayed) headers["idempotent-replayed"] = "true";
        return new Response(JSON.stringify(step.body), { status: step.status, headers });
      }
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
    const r = await sendOrder(opts(), { key: "order-1", lines: L("a×2"), form: "one_item" }, "main", () => 0.5);
    expect(r.attempts.map((a) => a.status)).toEqual([503, 409, 0, 0, 201]);
    expect(r.attempts.map((a) => a.error ?? null)).toEqual([null, null, "reset", "timeout", null]);
    expect(r.answer).toMatchObject({ status: 201, kind: "order", order_id: id(1), order_status: "confirmed" });
    expect(new Set(seen.map((s) => s.key))).toEqual(new Set(["order-1"]));
    expect(new Set(seen.map((s) => s.body)).size).toBe(1);
    // The one-item form: the seed's body.
    expect(JSON.parse(seen[0]!.body)).toEqual({ item_id: "a", quantity: 2 });
    expect(seen.map((s) => s.requestId)).toEqual(["order-1.m1", "order-1.m2", "order-1.m3", "order-1.m4", "order-1.m5"]);
  });

  test("order bodies: lines, or the seed's one-item form only for one line", () => {
    expect(JSON.parse(orderBody({ lines: L("a×1, b×2") }))).toEqual({ lines: [{ item_id: "a", quantity: 1 }, { item_id: "b", quantity: 2 }] });
    expect(JSON.parse(orderBody({ lines: L("a×3"), form: "lines" }))).toEqual({ lines: [{ item_id: "a", quantity: 3 }] });
    expect(JSON.parse(orderBody({ lines: L("a×3"), form: "one_item" }))).toEqual({ item_id: "a", quantity: 3 });
    expect(JSON.parse(orderBody({ lines: L("a×3, b×1"), form: "one_item" }))).toHaveProperty("lines");
  });

  test("a cancel retries a 409 still in flight, a 503 and a reset with its own key, and stops at 409 not cancellable", async () => {
    seen.length = 0;
    const inFlight = { status: 409, body: { type: "https://valerix.dev/problems/idempotency-key-in-use", status: 409 } };
    const notCancellable = { status: 409, body: { type: "https://valerix.dev/problems/order-not-cancellable", status: 409, order_id: id(1), order_status: "rejected" } };
    script = [inFlight, 503, "reset", notCancellable];
    const r = await sendCancel(opts(), { order_id: id(1), key: "order-1-cancel", reason: "changed my mind" }, "cancel", () => 0.5);
    expect(r.attempts.map((a) => a.status)).toEqual([409, 503, 0, 409]);
    expect(r.answer).toMatchObject({ status: 409, kind: "not_cancellable", order_status: "rejected", key: "order-1-cancel", replayed: false });
    expect(new Set(seen.map((s) => s.key))).toEqual(new Set(["order-1-cancel"]));
    expect(JSON.parse(seen[0]!.body)).toEqual({ reason: "changed my mind" });
    expect(seen.map((s) => s.requestId)).toEqual(["order-1-cancel.c1", "order-1-cancel.c2", "order-1-cancel.c3", "order-1-cancel.c4"]);
  });

  test("a cancel answer: 200 and 202 with the order's state, a replay noted, a stray status kept as such", async () => {
    script = [{ status: 200, body: { order_id: id(1), status: "cancelled" }, replayed: true }];
    const r = await sendCancel(opts(), { order_id: id(1), key: "c-2" }, "cancel_replay", () => 0.5);
    expect(r.answer).toMatchObject({ status: 200, kind: "order", order_status: "cancelled", replayed: true, lane: "cancel_replay" });
    expect(readCancelAnswer(202, JSON.stringify({ order_id: id(1), status: "cancelling" }))).toEqual({ kind: "order", order_status: "cancelling", retry: false });
    expect(readCancelAnswer(404, "{}")).toMatchObject({ kind: "not_found", retry: false });
    expect(readCancelAnswer(422, JSON.stringify({ type: "https://valerix.dev/problems/idempotency-key-reused" }))).toMatchObject({ kind: "key_reused", retry: false });
    expect(readCancelAnswer(200, "{}")).toMatchObject({ kind: "client_error", retry: false });
  });

  test("a 422 is an answer: no retry", async () => {
    script = [422];
    const r = await sendOrder(opts(), { key: "order-2", lines: L("a×1, b×2") }, "main", () => 0.5);
    expect(r.attempts).toHaveLength(1);
    expect(r.answer).toMatchObject({ status: 422, kind: "order", order_status: "rejected" });
  });

  test("gives up after maxAttempts and says so, every attempt kept", async () => {
    script = [503, 503, 503];
    const r = await sendOrder(opts({ maxAttempts: 3 }), { key: "order-3", lines: L("a×1") }, "main", () => 0.5);
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
    // Without the new options: one line each, nothing cancelled, as before.
    expect(a.every((p) => p.lines.length === 1 && p.lines[0]!.quantity >= 1 && p.lines[0]!.quantity <= 3 && p.cancel === null)).toBe(true);
  });

  test("multi-line plans: 1–4 distinct items per order, the one-item form only for one line, cancels at every moment", () => {
    const o = { orders: 2000, items: 8, seed: 42, runId: "r1", duplicateRate: 0.05, unknownRate: 0.01, maxLines: 4, oneItemRate: 0.5, cancelRate: 0.1, restocks: 4 };
    const items = planItems(o);
    // Expected demand per item: 2000 orders × 2.5 lines × 2 units / 8 items = 1250.
    expect(items.map((i) => i.stock).slice(0, 2)).toEqual([875, 2500]);
    const plan = planOrders(o, items);
    expect(planOrders(o, items)).toEqual(plan);
    const byCount = new Map<number, number>();
    for (const p of plan) byCount.set(p.lines.length, (byCount.get(p.lines.length) ?? 0) + 1);
    expect([...byCount.keys()].sort()).toEqual([1, 2, 3, 4]);
    for (const n of [1, 2, 3, 4]) expect(byCount.get(n)!).toBeGreaterThan(400);
    expect(plan.every((p) => new Set(p.lines.map((l) => l.item_id)).size === p.lines.length)).toBe(true);
    expect(plan.every((p) => p.form === "lines" || p.lines.length === 1)).toBe(true);
    const oneItem = plan.filter((p) => p.form === "one_item").length;
    expect(oneItem).toBeGreaterThan(byCount.get(1)! * 0.4);
    expect(oneItem).toBeLessThan(byCount.get(1)! * 0.6);
    // Items overlap: every item is on hundreds of orders.
    for (const it of items) expect(plan.filter((p) => p.lines.some((l) => l.item_id === it.item_id)).length).toBeGreaterThan(400);
    const unknown = plan.filter((p) => p.lines.some((l) => l.item_id === "chaos-r1-missing"));
    expect(unknown.length).toBeGreaterThan(5);
    expect(unknown.some((p) => p.lines.length > 1)).toBe(true);
    const cancels = plan.filter((p) => p.cancel);
    expect(cancels.length).toBeGreaterThan(150);
    expect(cancels.length).toBeLessThan(250);
    expect(new Set(cancels.map((p) => p.cancel!.moment))).toEqual(new Set(["immediate", "delayed", "after_heal"]));
    expect(cancels.every((p) => p.cancel!.key !== p.key && p.cancel!.second_key !== p.cancel!.key)).toBe(true);
    expect(cancels.some((p) => p.cancel!.replay) && cancels.some((p) => p.cancel!.second_key)).toBe(true);
    const delays = cancels.filter((p) => p.cancel!.moment === "delayed").map((p) => p.cancel!.delay_ms);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(500);
    expect(Math.max(...delays)).toBeLessThanOrEqual(5000);
    const restocks = planRestocks(o, items);
    expect(restocks.map((r) => r.before_index)).toEqual([400, 800, 1200, 1600]);
    expect(restocks.every((r) => r.quantity >= 10 && r.quantity <= 50 && items.some((i) => i.item_id === r.item_id))).toBe(true);
  });

  test("options: defaults, and refusals with a reason", () => {
    const o = parseOptions(["--scenario", "extreme", "--orders", "300", "--seed", "7"], {})!;
    expect(o).toMatchObject({ scenario: "extreme", orders: 300, seed: 7, concurrency: 24, target: null, progress: "auto", maxLines: 4, oneItemRate: 0.5, cancelRate: 0.1, restocks: 4 });
    expect(replayCommand(o)).not.toContain("--cancel-rate");
    const o2 = parseOptions(["--max-lines", "2", "--cancel-rate", "0.3", "--one-item-rate", "1", "--restocks", "0", "--seed", "1"], {})!;
    expect(o2).toMatchObject({ maxLines: 2, cancelRate: 0.3, oneItemRate: 1, restocks: 0 });
    expect(replayCommand(o2)).toContain("--max-lines 2 --one-item-rate 1 --cancel-rate 0.3 --restocks 0");
    expect(() => parseOptions(["--cancel-rate", "1.5"], {})).toThrow(/--cancel-rate/);
    expect(() => parseOptions(["--max-lines", "0"], {})).toThrow(/--max-lines/);
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
      const r = rec(200 + i, "a×1", [answer(202, id(200 + i), "queued")], final("rejected", ["pending", "queued", "rejected"]));
      r.attempts.unshift({ lane: "main", at_ms: 0, duration_ms: 1500, status: 503 });
      w.orders.push(r);
    }
    const verdicts = checkInvariants(w);
    const data: RunData = {
      tool: "t",
      command: "npm run chaos -- --seed 1",
      options: { scenario: "moderate", seed: 1, concurrency: 4, max_attempts: 8, duplicate_rate: 0.05, delay_threshold_ms: 1000, items: 3, max_lines: 4, cancel_rate: 0.1, unknown_rate: 0.01 },
      runId: "r",
      startedAt: at(0),
      finishedAt: at(10_000),
      environment: { mode: "spawned", database: "postgres", key_value: "Redis (DB 3)", retry_queue: "Redis Streams", urls: { orders: "o", inventory: "i", chaos: "i" }, runtime: "bun", platform: "linux", cpus: 2 },
      chaos: { requested: { preset: "moderate" }, active: { preset: "moderate", pattern: "random", seed: 1, routes: "deduct", crash_rate: 0.15, crash_mode: "mix" }, applied_ms: 0, healed_ms: 1, event_counts: { crash_503: 4 }, recent_events: [] },
      phases: { load: 5000, settle: 2000 },
      items: w.items,
      records: w.orders,
      restocks: w.restocks,
      verdicts,
      settle: { bound_ms: 60_000, unfinished: 0, reconciled: 0 },
      ledger: { create: 3, deduct: 6, release: 3, restock: 1 },
      ledgerSums: { a: 7, b: 8, c: 8 },
      server: null,
      delayThresholdMs: 1000,
      jsonOrders: "affected",
    };
    const report = buildReport(data);
    expect(report.verdict).toBe("pass");
    expect(report.summary.affected).toMatchObject({ total: 64, queued: 64, delayed: 60, retried: 60 });
    expect(report.affected_orders).toHaveLength(64);
    expect(report.orders).toHaveLength(64);
    expect(report.summary.first_answer_by_status).toEqual({ "201": 2, "202": 64, "422": 1 });
    expect(report.summary.lines).toEqual({ orders_by_line_count: { "1": 63, "2": 4 }, one_item_form: 1, lines_total: 71 });
    expect(report.summary.cancels).toMatchObject({
      planned: { immediate: 3 },
      sent: { immediate: 3 },
      first_answer_by_order_answer: { "201→200": 1, "202→202": 1, "422→409": 1 },
      accepted: 2,
      ended_cancelled: 2,
    });
    expect(report.summary.cancels.answers_by_lane).toEqual({ "cancel 200": 1, "cancel 202": 1, "cancel 409": 1, "cancel_replay 200": 1, "cancel_replay 409": 1, "cancel_second 200": 2 });
    expect(report.items.find((i) => i.item_id === "a")).toMatchObject({ initial: 10, standing: 3, current: 7, db_quantity: 7, ledger_sum: 7, restocked: 0 });
    expect(report.items.find((i) => i.item_id === "b")).toMatchObject({ standing: 1, restocked: 4 });
    const md = renderMarkdown(report, { maxAffectedRows: 50 });
    expect(md).toContain("— PASS");
    expect(md).toContain("Invariants: 16 hold, 0 broken.");
    expect(md).toContain("(`cancelled_has_no_standing_deduction`) | ✅ holds | 2 | 0 |");
    expect(md).toContain("### Queued (202), longest to a final state first: 64");
    expect(md).toContain("… 14 more in the JSON report");
    expect(md).toContain("### Delayed, slowest first: 60");
    expect(md).toContain("## Cancellations");
    expect(md).toContain("| 422→409 | 1 |");
    expect(report.summary.latency_ms.cancels_by_first_answer).toMatchObject({ "200": { count: 1, p50: 5 }, "202": { count: 1 }, "409": { count: 1 } });
    expect(md).toContain("| cancel answered 202, first request to answer | 1 | 5 | 5 | 5 | 5 |");
    expect(md).toContain("| a | 10 | 0 | 3 | 7 | 7 | 7 |");
    expect(md).toContain("inventory's ledger for the run (movement rows, one per line): create 3, deduct 6, release 3, restock 1");
    expect(md).toContain("crash 15 % (mix)");
    const capped = buildReport({ ...data, jsonMaxOrders: 10 });
    expect(capped.orders).toHaveLength(10);
    expect(capped.orders_omitted).toBe(54);
    const parsed = JSON.parse(reportJson(report)) as typeof report;
    expect(parsed.affected_orders).toHaveLength(64);
    expect(parsed.invariants.map((v) => v.name)).toEqual(verdicts.map((v) => v.name));
    // A breach fails the report's verdict, and so the run's exit code.
    const broken = world();
    broken.ledger = broken.ledger!.filter((r) => !(r.order_id === id(6) && r.type === "release"));
    const failed = buildReport({ ...data, verdicts: checkInvariants(broken) });
    expect(failed.verdict).toBe("fail");
    expect(renderMarkdown(failed)).toContain("**cancelled_has_no_standing_deduction** (1):");
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

describe("cancels after healing", () => {
  const stubbed = () => {
    const sent: Array<{ url: string; key: string; requestId: string }> = [];
    const client: CarefulClientOptions = {
      baseUrl: "http://orders.test",
      timeoutMs: 1000,
      maxAttempts: 3,
      backoffBaseMs: 1,
      backoffCapMs: 1,
      elapsed: () => 100,
      sleep: async () => {},
      fetch: (async (url: string, init: RequestInit) => {
        const h = init.headers as Record<string, string>;
        sent.push({ url, key: h["idempotency-key"]!, requestId: h["x-request-id"]! });
        const replay = sent.filter((s) => s.key === h["idempotency-key"]).length > 1;
        return new Response(JSON.stringify({ order_id: id(1), status: "cancelled" }), { status: 200, headers: replay ? { "idempotent-replayed": "true" } : {} });
      }) as unknown as typeof fetch,
    };
    return { sent, client };
  };

  test("resend: cancels never answered (same key) and cancels whose order had no id during the load; after_heal: only those planned for it", async () => {
    const { sent, client } = stubbed();
    const w = world();
    const withCancel = (n: number, moment: CancelRecord["moment"], sentMs: number | null, answers: CancelAnswer[] = [], replay = false, second = false) => {
      const r = rec(n, "a×1", [answer(201, id(n), "confirmed")], final("confirmed", ["pending", "confirmed"]));
      r.cancel = cancelOf(n, 201, answers, { moment, sent_ms: sentMs, replay, second_key: second ? `k${n}-cancel-2` : null });
      return r;
    };
    const unanswered = withCancel(20, "immediate", 50, [], true);
    const noIdYet = withCancel(21, "delayed", null);
    const late = withCancel(22, "after_heal", null, [], false, true);
    const done = withCancel(23, "immediate", 50, [cAnswer("cancel", "k23-cancel", 200, "cancelled")]);
    const noId = withCancel(24, "immediate", null);
    noId.answers = [];
    const records = [...w.orders, unanswered, noIdYet, late, done, noId];
    expect(await cancelAfterHeal(records, client, 1, 4, "resend")).toBe(2);
    expect(sent.map((s) => s.requestId).sort()).toEqual(["k20-cancel.r1", "k20-cancel.x1", "k21-cancel.c1"]);
    expect(sent.find((s) => s.key === "k20-cancel")!.url).toBe(`http://orders.test/api/orders/${id(20)}/cancel`);
    expect(unanswered.cancel!.answers.map((a) => `${a.lane} ${a.status}${a.replayed ? " replayed" : ""}`)).toEqual(["cancel_reconcile 200", "cancel_replay 200 replayed"]);
    expect(noIdYet.cancel!.sent_ms).toBe(100);
    expect(late.cancel!.sent_ms).toBeNull();
    sent.length = 0;
    expect(await cancelAfterHeal(records, client, 1, 4, "after_heal")).toBe(1);
    expect(sent.map((s) => s.requestId)).toEqual(["k22-cancel.c1", "k22-cancel-2.s1"]);
    expect(late.cancel!.order_answer).toBe(201);
    // Nothing is owed twice.
    sent.length = 0;
    await runCancel(done, client, 1);
    expect(await cancelAfterHeal(records, client, 1, 4, "resend")).toBe(0);
    expect(sent).toEqual([]);
  });
});

const REDIS_URL = "redis://127.0.0.1:6379";
const REDIS_UP = await redisAnswers(REDIS_URL);

describe("the run's Redis DB", () => {
  // Without a Redis server the runner uses the in-memory store, and there is no DB to claim.
  test.skipIf(!REDIS_UP)("two runs starting together claim two DBs, and a claimed DB is never taken or emptied by another", async () => {
    const url = REDIS_URL;
    const [a, b] = await Promise.all([prepareRedis(url, undefined, "test-a"), prepareRedis(url, undefined, "test-b")]);
    try {
      expect(a.index).not.toBe(b.index);
      const c = await prepareRedis(url, undefined, "test-c");
      await c.flush();
      expect([a.index, b.index]).not.toContain(c.index);
      // The claim is what keeps the DB from looking empty while the run's own keys are gone.
      const client = new Bun.RedisClient(a.url);
      try {
        expect(await client.get(REDIS_CLAIM_KEY)).toBe("test-a");
        expect(Number(await client.send("DBSIZE", []))).toBe(1);
      } finally {
        client.close();
      }
    } finally {
      await a.flush();
      await b.flush();
    }
  });
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
    expect(report.invariants.map((v: InvariantVerdict) => v.status)).toEqual(Array(16).fill("pass"));
    // The mix reached the system: orders of several lines, the one-item body, cancels answered.
    expect(Object.keys(report.summary.lines.orders_by_line_count).length).toBeGreaterThan(1);
    expect(report.summary.lines.one_item_form).toBeGreaterThan(0);
    expect(report.summary.cancels.accepted).toBeGreaterThan(0);
    expect(report.summary.cancels.ended_cancelled).toBe(report.summary.cancels.accepted);
    const injected = Object.values(report.chaos.event_counts as Record<string, number>).reduce((s, n) => s + n, 0);
    expect(injected).toBeGreaterThan(0);
    expect(readFileSync(`${prefix}.md`, "utf8")).toContain("— PASS");
  }, 120_000);
});
