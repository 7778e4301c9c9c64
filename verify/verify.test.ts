import { afterAll, describe, expect, test } from "bun:test";
import { plugin } from "bun";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { checkInvariants, LEDGER_INVARIANTS, type InvariantName, type InvariantVerdict } from "./invariants.ts";
import { WEBHOOK_INVARIANTS } from "./webhook-invariants.ts";
import { backoffMs, orderBody, readAnswer, readCancelAnswer, readPayAnswer, sendCancel, sendOrder, sendPay, transportErrorKind, type CarefulClientOptions } from "./careful-client.ts";
import { payOffsetMs, planItems, planOrders, planRestocks, runCancel, runHold } from "./load-driver.ts";
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
import type { AccountRow, Answer, CancelAnswer, CancelRecord, FinalObservation, HoldRecord, ItemObservation, LedgerRow, OrderLine, OrderRecord, PayAnswer, RestockRecord } from "./types.ts";
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
    expect(vs).toHaveLength(25);
    expect(failing(vs)).toEqual([]);
    // Without a webhook receiver the five webhook checks are not applicable.
    expect(vs.filter((v) => v.status !== "pass").map((v) => v.name)).toEqual([...WEBHOOK_INVARIANTS]);
    expect(vs.filter((v) => v.status === "skipped").every((v) => v.note?.includes("--webhooks"))).toBe(true);
    expect(verdict(vs, "accepted_orders_final").checked).toBe(6);
    expect(verdict(vs, "cancel_answers_consistent").checked).toBe(3);
    expect(verdict(vs, "cancelled_has_no_standing_deduction").checked).toBe(2);
    expect(verdict(vs, "no_line_deducted_twice").checked).toBe(6);
  });

  test("without the ledger its eight checks are skipped, not passed", () => {
    const w = world();
    w.ledger = null;
    const vs = checkInvariants(w);
    expect(vs.filter((v) => v.status === "skipped").map((v) => v.name)).toEqual([...LEDGER_INVARIANTS, ...WEBHOOK_INVARIANTS]);
    expect(LEDGER_INVARIANTS).toHaveLength(8);
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

// ---------------------------------------------------------------------------------------------
// Holds: the same world with three orders placed with hold_s — one paid in time (the same key
// again, and a second key), one left to expire (then paid too late: 409), one cancelled while
// reserved. Each test below breaks one thing.
// ---------------------------------------------------------------------------------------------

const hrow = (order: number, item: string, type: LedgerRow["type"], change: number, reserved: number, t: number): LedgerRow => ({
  order_id: id(order),
  item_id: item,
  type,
  quantity_change: change,
  reserved_change: reserved,
  tx_at: tx(t),
});

const pAnswer = (lane: PayAnswer["lane"], key: string, status: number, orderStatus: string, over: Partial<PayAnswer> = {}): PayAnswer => ({
  lane,
  key,
  status,
  kind: status === 409 ? "hold_expired" : "order",
  order_status: orderStatus,
  paid_at: status === 409 ? null : at(30_000),
  hold_expires_at: at(60_000),
  replayed: false,
  at_ms: 40,
  ...over,
});

function holdOf(n: number, fate: HoldRecord["fate"], answers: PayAnswer[] = [], over: Partial<HoldRecord> = {}): HoldRecord {
  return {
    hold_s: 60,
    fate,
    pay_moment: fate === "pay" ? "early" : null,
    offset_ms: 0,
    pay_key: `k${n}-pay`,
    replay: answers.some((a) => a.lane === "pay_replay"),
    second_key: answers.some((a) => a.lane === "pay_second") ? `k${n}-pay-2` : null,
    expires_at: at(60_000),
    seen_status: "reserved",
    pay_sent_ms: answers.length ? 30 : null,
    pay_sent_at: answers.length ? at(29_990) : null,
    attempts: answers.map((a) => ({ lane: a.lane, at_ms: 30, duration_ms: 5, status: a.status })),
    answers,
    ...over,
  };
}

const held = (f: FinalObservation, paidAt: string | null = null): FinalObservation => ({ ...f, hold_expires_at: at(60_000), ...(paidAt ? { paid_at: paidAt } : {}) });

function holdWorld() {
  const w = world();
  const reserved = answer(201, null, "reserved");
  const o8 = rec(8, "a×1, c×1", [{ ...reserved, order_id: id(8), hold_expires_at: at(60_000) }], held(final("confirmed", ["pending", "reserved", "confirmed"]), at(30_000)));
  o8.hold = holdOf(8, "pay", [
    pAnswer("pay", "k8-pay", 200, "confirmed"),
    pAnswer("pay_replay", "k8-pay", 200, "confirmed", { replayed: true }),
    pAnswer("pay_second", "k8-pay-2", 200, "confirmed"),
  ]);
  const o9 = rec(9, "b×2", [{ ...reserved, order_id: id(9), hold_expires_at: at(60_000) }], held(final("expired", ["pending", "reserved", "expired"])));
  o9.hold = holdOf(9, "pay", [pAnswer("pay", "k9-pay", 409, "expired"), pAnswer("pay_second", "k9-pay-2", 409, "expired")], { pay_moment: "late", pay_sent_at: at(62_000) });
  const o10 = rec(10, "c×1", [{ ...reserved, order_id: id(10), hold_expires_at: at(60_000) }], held(final("cancelled", ["pending", "reserved", "cancelling", "cancelled"])));
  o10.hold = holdOf(10, "cancel");
  o10.cancel = cancelOf(10, 201, [cAnswer("cancel", "k10-cancel", 200, "cancelled")], { moment: "reserved" });
  w.orders.push(o8, o9, o10);
  // Order 8 sold a × 1 and c × 1; 9 and 10 gave theirs back. Nothing is reserved at the end.
  w.items[0]!.current = 6;
  w.items[0]!.db_quantity = 6;
  w.items[2]!.current = 7;
  w.items[2]!.db_quantity = 7;
  for (const it of w.items) {
    it.reserved = 0;
    it.db_reserved = 0;
  }
  w.ledger!.push(
    hrow(8, "a", "hold", -1, 1, 10),
    hrow(8, "c", "hold", -1, 1, 10),
    hrow(9, "b", "hold", -2, 2, 11),
    hrow(10, "c", "hold", -1, 1, 12),
    hrow(8, "a", "sale", 0, -1, 13),
    hrow(8, "c", "sale", 0, -1, 13),
    hrow(10, "c", "hold_release", 1, -1, 14),
    hrow(9, "b", "hold_release", 2, -2, 15),
  );
  const accounts: AccountRow[] = [
    { order_id: id(8), outcome: "held", settled: "sold", hold_expires_at: at(60_000), released: false },
    { order_id: id(9), outcome: "held", settled: "expired", hold_expires_at: at(60_000), released: true },
    { order_id: id(10), outcome: "held", settled: "cancelled", hold_expires_at: at(60_000), released: true },
  ];
  return { ...w, accounts: accounts as AccountRow[] | null };
}

describe("invariant checker, holds", () => {
  test("holds paid, expired and cancelled pass every invariant; the new ones checked something", () => {
    const vs = checkInvariants(holdWorld());
    expect(failing(vs)).toEqual([]);
    expect(vs.map((v) => v.name)).toContain("no_confirmed_and_released");
    expect(verdict(vs, "holds_settle_once").checked).toBe(3);
    expect(verdict(vs, "pay_answers_consistent").checked).toBe(2);
    expect(verdict(vs, "reserved_matches_live_holds").checked).toBe(3);
    expect(verdict(vs, "stock_conservation").checked).toBe(3);
    expect(verdict(vs, "legal_transitions").checked).toBe(10);
  });

  test("stock_conservation counts reserved units: reserved stock nothing accounts for breaks it", () => {
    const w = holdWorld();
    w.items[1]!.reserved = 2;
    const v = verdict(checkInvariants(w), "stock_conservation");
    expect(v.breach_count).toBe(1);
    expect(v.breaches[0]!.detail).toContain("reserved 2");
    expect(v.breaches[0]!.detail).toContain("off by -2");
    // A live hold: 2 units moved from available to reserved, conservation still holds.
    const w2 = holdWorld();
    w2.items[1]!.current = 6;
    w2.items[1]!.reserved = 2;
    expect(verdict(checkInvariants(w2), "stock_conservation").status).toBe("pass");
    // Counting a paid hold as not sold is off by its lines.
    const w3 = holdWorld();
    w3.orders[7]!.final = held(final("expired", ["pending", "reserved", "expired"]));
    expect(details(verdict(checkInvariants(w3), "stock_conservation"))).toContain("off by 1");
  });

  test("holds_settle_once: sold and released, never settled, a state or an account that tells another story, a hold sold outright", () => {
    const twice = holdWorld();
    twice.ledger!.push(hrow(8, "a", "hold_release", 1, -1, 20), hrow(8, "c", "hold_release", 1, -1, 20));
    expect(details(verdict(checkInvariants(twice), "holds_settle_once"))).toContain("settled twice");
    const never = holdWorld();
    never.ledger = never.ledger!.filter((r) => !(r.type === "hold_release" && r.order_id === id(9)));
    expect(details(verdict(checkInvariants(never), "holds_settle_once"))).toContain("hold never settled");
    const partly = holdWorld();
    partly.ledger = partly.ledger!.filter((r) => !(r.type === "sale" && r.item_id === "c"));
    expect(details(verdict(checkInvariants(partly), "holds_settle_once"))).toContain("held a +1, c +1; sold a +1");
    const story = holdWorld();
    story.orders[8]!.final = held(final("cancelled", ["pending", "reserved", "cancelling", "cancelled"]));
    story.accounts![1] = { ...story.accounts![1]!, settled: "cancelled" };
    story.orders[9]!.final = held(final("expired", ["pending", "reserved", "expired"]));
    const d = details(verdict(checkInvariants(story), "holds_settle_once"));
    expect(d).toContain(`${id(10)}: expired, its hold released in the ledger, yet inventory's account says cancelled`);
    const soldExpired = holdWorld();
    soldExpired.orders[7]!.final = held(final("expired", ["pending", "reserved", "expired"]));
    expect(details(verdict(checkInvariants(soldExpired), "holds_settle_once"))).toContain("expired, yet its hold was sold");
    const outright = holdWorld();
    outright.ledger = outright.ledger!.map((r) => (r.order_id === id(8) && r.type === "hold" ? { ...r, type: "deduct" as const, reserved_change: 0 } : r)).filter((r) => !(r.order_id === id(8) && r.type === "sale"));
    expect(details(verdict(checkInvariants(outright), "holds_settle_once"))).toContain("asked for a hold, yet its lines were sold outright");
    expect(failing(checkInvariants(holdWorld()))).toEqual([]);
  });

  test("no_confirmed_and_released: confirmed with an expiry in its history, a release in the ledger, or an account that says expired", () => {
    const h = holdWorld();
    h.orders[7]!.final = held(final("confirmed", ["pending", "reserved", "expired", "confirmed"]));
    expect(details(verdict(checkInvariants(h), "no_confirmed_and_released"))).toContain("both confirmed and expired in its history");
    const l = holdWorld();
    l.ledger!.push(row(1, "a", "release", 2, 30));
    expect(details(verdict(checkInvariants(l), "no_confirmed_and_released"))).toContain(`${id(1)}: confirmed, yet the ledger released its stock`);
    const a = holdWorld();
    a.accounts![0] = { ...a.accounts![0]!, settled: "expired", released: true };
    expect(details(verdict(checkInvariants(a), "no_confirmed_and_released"))).toContain("inventory's account says expired");
    // Without the ledger the histories are still read.
    const n = holdWorld();
    n.ledger = null;
    n.orders[7]!.final = held(final("confirmed", ["pending", "reserved", "expired", "confirmed"]));
    expect(verdict(checkInvariants(n), "no_confirmed_and_released").status).toBe("fail");
  });

  test("reserved_matches_live_holds: reserved stock no hold explains, and a hold still live after settling", () => {
    const api = holdWorld();
    api.items[0]!.reserved = 1;
    expect(details(verdict(checkInvariants(api), "reserved_matches_live_holds"))).toContain("a: reserved changes sum to 0, the API shows reserved 1");
    const db = holdWorld();
    db.items[1]!.db_reserved = 2;
    expect(details(verdict(checkInvariants(db), "reserved_matches_live_holds"))).toContain("the database holds reserved 2");
    // Order 9's hold never settled: its 2 units are still reserved, in the ledger, the API and the account.
    const live = holdWorld();
    live.ledger = live.ledger!.filter((r) => !(r.type === "hold_release" && r.order_id === id(9)));
    live.accounts![1] = { ...live.accounts![1]!, settled: null, released: false };
    live.items[1]!.current = 6;
    live.items[1]!.db_quantity = 6;
    live.items[1]!.reserved = 2;
    live.items[1]!.db_reserved = 2;
    live.orders[8]!.final = held(final("reserved", ["pending", "reserved"]));
    const v = verdict(checkInvariants(live), "reserved_matches_live_holds");
    expect(v.breach_count).toBe(1);
    expect(v.breaches[0]!.subject).toBe(id(9));
    expect(v.breaches[0]!.detail).toContain("hold still live after settling");
    // A ledger whose reserved changes no live hold explains.
    const drift = holdWorld();
    drift.ledger!.push(hrow(9, "b", "hold", -1, 1, 40));
    expect(details(verdict(checkInvariants(drift), "reserved_matches_live_holds"))).toContain("b: reserved changes sum to 1, live holds hold 0");
  });

  test("pay_answers_consistent: answers that contradict the order, replays and second keys that disagree, paid_at judged against the deadline", () => {
    const w = holdWorld();
    const h8 = w.orders[7]!.hold!;
    h8.answers[0] = pAnswer("pay", "k8-pay", 200, "reserved");
    h8.answers[1] = { ...h8.answers[1]!, replayed: false };
    h8.answers[2] = pAnswer("pay_second", "k8-pay-2", 409, "expired");
    const h9 = w.orders[8]!.hold!;
    h9.answers.push(pAnswer("pay_replay", "k9-pay", 202, "reserved", { paid_at: null }));
    const d = details(verdict(checkInvariants(w), "pay_answers_consistent"));
    expect(d).toContain("200 (pay) with status reserved, not confirmed");
    expect(d).toContain("without Idempotent-Replayed");
    expect(d).toContain("a paid order answered a second key 409, not 200");
    expect(d).toContain("hold-expired, yet the order ended confirmed");
    expect(d).toContain("202 (pay_replay) with status reserved and no paid_at");
    expect(d).toContain("the same key answered 409, then 202");
    // Paid before the deadline (by the server's paid_at), yet expired; paid after it, yet confirmed.
    const early = holdWorld();
    early.orders[8]!.final = held(final("expired", ["pending", "reserved", "expired"]), at(59_999));
    early.orders[8]!.hold!.answers = [pAnswer("pay", "k9-pay", 202, "reserved")];
    early.orders[8]!.hold!.pay_sent_at = at(59_990);
    expect(details(verdict(checkInvariants(early), "pay_answers_consistent"))).toContain("before the deadline");
    const late = holdWorld();
    late.orders[7]!.final = held(final("confirmed", ["pending", "reserved", "confirmed"]), at(60_000));
    late.orders[7]!.hold!.pay_sent_at = at(59_500);
    expect(details(verdict(checkInvariants(late), "pay_answers_consistent"))).toContain("not before the deadline");
    // A payment the server dated before the client sent it; one never answered.
    const back = holdWorld();
    back.orders[7]!.hold!.pay_sent_at = at(45_000);
    expect(details(verdict(checkInvariants(back), "pay_answers_consistent"))).toContain("before the payment was sent");
    const silent = holdWorld();
    silent.orders[8]!.hold!.answers = [];
    expect(details(verdict(checkInvariants(silent), "pay_answers_consistent"))).toContain("never got an answer");
  });

  test("answers, transitions and cancels know holds: only a hold may end expired, reserved leads to paid, expired or cancelled", () => {
    const w = holdWorld();
    w.orders[0]!.final = final("expired", ["pending", "confirmed", "expired"]);
    const vs = checkInvariants(w);
    expect(details(verdict(vs, "answers_kept"))).toContain("ended expired, yet it never asked for a hold");
    expect(details(verdict(vs, "legal_transitions"))).toContain("illegal confirmed → expired");
    const sold = holdWorld();
    sold.orders[7]!.answers[0] = { ...sold.orders[7]!.answers[0]!, order_status: "confirmed" };
    expect(details(verdict(checkInvariants(sold), "answers_kept"))).toContain("asked for a hold, answered 201 confirmed");
    const back = holdWorld();
    back.orders[8]!.final = held(final("expired", ["pending", "reserved", "expired", "reserved"]));
    expect(details(verdict(checkInvariants(back), "legal_transitions"))).toContain("illegal expired → reserved");
    // A cancel of an expired hold may be refused (409); the same of a confirmed order may not.
    const c = holdWorld();
    c.orders[8]!.cancel = cancelOf(9, 201, [cAnswer("cancel", "k9-cancel", 409, "expired")], { moment: "reserved" });
    expect(verdict(checkInvariants(c), "cancel_answers_consistent").status).toBe("pass");
    c.orders[7]!.cancel = cancelOf(8, 201, [cAnswer("cancel", "k8-cancel", 409, "confirmed")], { moment: "reserved" });
    expect(details(verdict(checkInvariants(c), "cancel_answers_consistent"))).toContain("not cancellable, with status confirmed");
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

  test("a pay retries a 409 still in flight, a 503 and a reset with its own key, and stops at 409 hold-expired", async () => {
    seen.length = 0;
    const inFlight = { status: 409, body: { type: "https://valerix.dev/problems/idempotency-key-in-use", status: 409 } };
    const expired = { status: 409, body: { type: "https://valerix.dev/problems/hold-expired", status: 409, order_id: id(1), order_status: "expired", hold_expires_at: at(60_000) } };
    script = [inFlight, 503, "reset", expired];
    const r = await sendPay(opts(), { order_id: id(1), key: "order-1-pay" }, "pay", () => 0.5);
    expect(r.attempts.map((a) => a.status)).toEqual([409, 503, 0, 409]);
    expect(r.answer).toMatchObject({ status: 409, kind: "hold_expired", order_status: "expired", key: "order-1-pay", hold_expires_at: at(60_000), replayed: false });
    expect(seen.map((s) => s.requestId)).toEqual(["order-1-pay.p1", "order-1-pay.p2", "order-1-pay.p3", "order-1-pay.p4"]);
    expect(new Set(seen.map((s) => s.key))).toEqual(new Set(["order-1-pay"]));
    // 200 confirmed, 202 reserved with paid_at, 409 not payable: answers, never retried.
    expect(readPayAnswer(200, JSON.stringify({ order_id: id(1), status: "confirmed", paid_at: at(1) }))).toMatchObject({ kind: "order", order_status: "confirmed", paid_at: at(1), retry: false });
    expect(readPayAnswer(202, JSON.stringify({ order_id: id(1), status: "reserved", paid_at: at(1) }))).toMatchObject({ kind: "order", order_status: "reserved", retry: false });
    expect(readPayAnswer(409, JSON.stringify({ type: "https://valerix.dev/problems/order-not-payable", order_status: "cancelled" }))).toMatchObject({ kind: "not_payable", order_status: "cancelled", retry: false });
    expect(readPayAnswer(404, "{}")).toMatchObject({ kind: "not_found", retry: false });
    expect(readPayAnswer(502, "")).toMatchObject({ retry: true });
    // A hold's order body carries hold_s, in either form; a 201 keeps the deadline it names.
    expect(JSON.parse(orderBody({ lines: L("a×2"), form: "one_item", hold_s: 60 }))).toEqual({ item_id: "a", quantity: 2, hold_s: 60 });
    expect(JSON.parse(orderBody({ lines: L("a×2, b×1"), hold_s: 90 }))).toEqual({ lines: L("a×2, b×1"), hold_s: 90 });
    expect(JSON.parse(orderBody({ lines: L("a×2, b×1") }))).toEqual({ lines: L("a×2, b×1") });
    expect(readAnswer(201, JSON.stringify({ order_id: id(1), status: "reserved", hold_expires_at: at(60_000) }))).toMatchObject({ order_status: "reserved", hold_expires_at: at(60_000) });
  });

  test("a hold's plan: learns the deadline by reading a queued order, then pays near it, the same key again and a second key", async () => {
    seen.length = 0;
    const paid = { status: 200, body: { order_id: id(1), status: "confirmed", paid_at: at(1), hold_expires_at: at(60_000) } };
    script = [paid, { ...paid, replayed: true }, paid];
    let clock = T0;
    const slept: number[] = [];
    const reads = ["queued", "queued", "reserved"];
    const r = rec(1, "a×1", [answer(202, id(1), "queued")], null);
    r.hold = holdOf(1, "pay", [], { pay_moment: "near", offset_ms: -2_000, replay: true, second_key: "k1-pay-2", expires_at: null, seen_status: null });
    await runHold(r, {
      client: opts({ sleep: async (ms) => void (slept.push(ms), (clock += ms)) }),
      seed: 1,
      now: () => clock,
      readOrder: async () => {
        const status = reads.shift() ?? "reserved";
        return status === "reserved" ? { status, hold_expires_at: at(60_000) } : { status };
      },
    });
    expect(r.hold.expires_at).toBe(at(60_000));
    expect(r.hold.seen_status).toBe("reserved");
    // Three reads, 0.5, 1 and 2 s apart, then a wait until 2 s before the deadline.
    expect(slept).toEqual([500, 1_000, 2_000, 60_000 - 3_500 - 2_000]);
    expect(r.hold.pay_sent_at).toBe(at(58_000));
    expect(r.hold.answers.map((a) => `${a.lane} ${a.status}${a.replayed ? " replayed" : ""}`)).toEqual(["pay 200", "pay_replay 200 replayed", "pay_second 200"]);
    expect(seen.map((s) => s.key)).toEqual(["k1-pay", "k1-pay", "k1-pay-2"]);
    // Left to expire, then cancelled 3 s after the deadline it read from the 201: the 409 is kept.
    seen.length = 0;
    script = [{ status: 409, body: { type: "https://valerix.dev/problems/order-not-cancellable", status: 409, order_id: id(3), order_status: "expired" } }];
    clock = T0;
    slept.length = 0;
    const lapsed = rec(3, "a×1", [{ ...answer(201, id(3), "reserved"), hold_expires_at: at(60_000) }], null);
    lapsed.hold = holdOf(3, "expire", [], { expires_at: null, seen_status: null });
    lapsed.cancel = cancelOf(3, 201, [], { moment: "after_expiry", delay_ms: 3_000, sent_ms: null });
    await runHold(lapsed, { client: opts({ sleep: async (ms) => void (slept.push(ms), (clock += ms)) }), seed: 1, now: () => clock, readOrder: async () => ({ status: "reserved", hold_expires_at: at(60_000) }) });
    expect(slept).toEqual([63_000]);
    expect(seen.map((x) => x.key)).toEqual(["k3-cancel"]);
    expect(lapsed.cancel.answers).toMatchObject([{ status: 409, kind: "not_cancellable", order_status: "expired" }]);
    expect(lapsed.hold.pay_sent_ms).toBeNull();
    // An order refused while queued holds nothing: no payment goes out.
    seen.length = 0;
    const refused = rec(2, "a×1", [answer(202, id(2), "queued")], null);
    refused.hold = holdOf(2, "pay", [], { expires_at: null, seen_status: null });
    await runHold(refused, { client: opts(), seed: 1, readOrder: async () => ({ status: "rejected" }) });
    expect(refused.hold.seen_status).toBe("rejected");
    expect(refused.hold.pay_sent_ms).toBeNull();
    expect(seen).toHaveLength(0);
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

  test("holds in the plan: a share of the orders, paid early, near or late, cancelled while reserved, or left to expire", () => {
    const o = { orders: 2000, items: 8, seed: 42, runId: "r1", duplicateRate: 0.05, unknownRate: 0.01, maxLines: 4, cancelRate: 0.1, holdRate: 0.2, holdS: 60 };
    const items = planItems(o);
    const plan = planOrders(o, items);
    expect(planOrders(o, items)).toEqual(plan);
    const holds = plan.filter((p) => p.hold);
    expect(holds.length).toBeGreaterThan(340);
    expect(holds.length).toBeLessThan(460);
    expect(holds.every((p) => p.hold!.hold_s === 60 && p.hold!.pay_key === `${p.key}-pay`)).toBe(true);
    const fates = new Map<string, number>();
    for (const p of holds) fates.set(p.hold!.fate, (fates.get(p.hold!.fate) ?? 0) + 1);
    expect(fates.get("pay")!).toBeGreaterThan(holds.length * 0.45);
    expect(fates.get("cancel")!).toBeGreaterThan(holds.length * 0.08);
    expect(fates.get("expire")!).toBeGreaterThan(holds.length * 0.2);
    const paid = holds.filter((p) => p.hold!.fate === "pay");
    expect(new Set(paid.map((p) => p.hold!.pay_moment))).toEqual(new Set(["early", "near", "late"]));
    expect(paid.some((p) => p.hold!.replay) && paid.some((p) => p.hold!.second_key)).toBe(true);
    // A hold's only cancel is its own: while reserved, or after the deadline for some left to expire; the others keep theirs.
    expect(holds.every((p) => (p.hold!.fate === "cancel") === (p.cancel?.moment === "reserved"))).toBe(true);
    const afterExpiry = holds.filter((p) => p.cancel?.moment === "after_expiry");
    expect(afterExpiry.every((p) => p.hold!.fate === "expire" && p.cancel!.delay_ms >= 2_000 && p.cancel!.delay_ms <= 5_000)).toBe(true);
    expect(afterExpiry.length).toBeGreaterThan(fates.get("expire")! * 0.15);
    expect(afterExpiry.length).toBeLessThan(fates.get("expire")! * 0.35);
    expect(plan.filter((p) => !p.hold).every((p) => p.cancel?.moment !== "reserved" && p.cancel?.moment !== "after_expiry")).toBe(true);
    expect(plan.filter((p) => !p.hold && p.cancel).length).toBeGreaterThan(100);
    // Early: 0.5–15 s after the hold; near: the last 3 s before the deadline; late: 1–4 s after it.
    expect([payOffsetMs("early", 0), payOffsetMs("early", 0.999)]).toEqual([500, 14_985]);
    expect([payOffsetMs("near", 0), payOffsetMs("near", 0.999)]).toEqual([-3_000, -103]);
    expect([payOffsetMs("late", 0), payOffsetMs("late", 0.999)]).toEqual([1_000, 3_997]);
    // Without a hold rate, no holds.
    expect(planOrders({ ...o, holdRate: 0 }, items).some((p) => p.hold)).toBe(false);
    const opt = parseOptions(["--seed", "1"], {})!;
    expect(opt).toMatchObject({ holdRate: 0.2, holdS: 60 });
    expect(replayCommand(opt)).not.toContain("--hold");
    const opt2 = parseOptions(["--seed", "1", "--hold-rate", "0.5", "--hold-s", "90"], {})!;
    expect(replayCommand(opt2)).toContain("--hold-rate 0.5 --hold-s 90");
    expect(() => parseOptions(["--hold-s", "59"], {})).toThrow(/--hold-s/);
    expect(() => parseOptions(["--hold-rate", "2"], {})).toThrow(/--hold-rate/);
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
    expect(md).toContain("Invariants: 20 hold, 0 broken, 5 skipped.");
    expect(md).toContain("- the 5 webhook checks: no webhook receiver in this run (--webhooks)");
    expect(md).toContain("(`cancelled_has_no_standing_deduction`) | ✅ holds | 2 | 0 |");
    expect(md).toContain("### Queued (202), longest to a final state first: 64");
    expect(md).toContain("… 14 more in the JSON report");
    expect(md).toContain("### Delayed, slowest first: 60");
    expect(md).toContain("## Cancellations");
    expect(md).toContain("| 422→409 | 1 |");
    expect(report.summary.latency_ms.cancels_by_first_answer).toMatchObject({ "200": { count: 1, p50: 5 }, "202": { count: 1 }, "409": { count: 1 } });
    expect(md).toContain("| cancel answered 202, first request to answer | 1 | 5 | 5 | 5 | 5 |");
    expect(md).toContain("| a | 10 | 0 | 3 | 7 | – | 7 / – | 7 / – |");
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
    // The ledger was read: no invariant may be skipped in a run that started the system itself (the webhook ones need --webhooks).
    expect(report.invariants.filter((v: InvariantVerdict) => !v.name.startsWith("webhooks_")).map((v: InvariantVerdict) => v.status)).toEqual(Array(21).fill("pass"));
    expect(report.invariants.filter((v: InvariantVerdict) => v.name.startsWith("webhooks_")).map((v: InvariantVerdict) => v.status)).toEqual(Array(5).fill("skipped"));
    // The mix reached the system: orders of several lines, the one-item body, cancels answered.
    expect(Object.keys(report.summary.lines.orders_by_line_count).length).toBeGreaterThan(1);
    expect(report.summary.lines.one_item_form).toBeGreaterThan(0);
    expect(report.summary.cancels.accepted).toBeGreaterThan(0);
    expect(report.summary.cancels.ended_cancelled).toBe(report.summary.cancels.accepted);
    const injected = Object.values(report.chaos.event_counts as Record<string, number>).reduce((s, n) => s + n, 0);
    expect(injected).toBeGreaterThan(0);
    // Holds were made, paid and expired, and every one settled.
    expect(report.summary.holds.reserved).toBeGreaterThan(0);
    expect(report.summary.holds.final_by_fate["pay confirmed"]).toBeGreaterThan(0);
    expect(report.summary.holds.final_by_fate["expire expired"]).toBeGreaterThan(0);
    expect(readFileSync(`${prefix}.md`, "utf8")).toContain("— PASS");
  }, 240_000);
});
