import { cancelAccepted, FINAL_STATUSES, isAccepted, orderIdOf, type AccountRow, type ItemObservation, type LedgerRow, type OrderRecord, type RestockRecord, type WebhookObservation } from "./types.ts";
import { STOCK_LOW_TITLE } from "./stock-events.ts";
import { checkWebhooks, WEBHOOK_INVARIANT_TITLES, type WebhookInvariantName } from "./webhook-invariants.ts";

/**
 * The verdict on the data, Jepsen-style: after healing, what the system holds is compared with
 * what its clients were told. Pure: every input is passed in, so each breach kind is unit-tested
 * on synthetic data. Ledger checks need inventory's movements table; without it they are
 * `skipped`, never silently passed.
 *
 * An order *stands* when it ends `confirmed`: its lines are sold. A `cancelled` order gave its
 * stock back; `rejected` and `failed` ones never kept any, nor does an `expired` hold. A hold
 * (`hold` movements) takes a line from available into reserved; it settles once, by a `sale`
 * (paid: the order stands) or a `hold_release` (expired or cancelled: the stock is back).
 */

export type InvariantName =
  | "every_order_answered"
  | "no_unexpected_answers"
  | "one_order_per_key"
  | "no_order_for_two_keys"
  | "accepted_orders_final"
  | "answers_kept"
  | "legal_transitions"
  | "cancel_answers_consistent"
  | "pay_answers_consistent"
  | "stock_conservation"
  | "no_oversell"
  | "no_confirmed_and_released"
  | "one_deduction_per_order"
  | "no_line_deducted_twice"
  | "lines_all_or_nothing"
  | "deductions_match_orders"
  | "cancelled_has_no_standing_deduction"
  | "ledger_sums_match_stock"
  | "holds_settle_once"
  | "reserved_matches_live_holds"
  | "stock_low_matches_ledger"
  | WebhookInvariantName;

export interface Breach {
  /** The key, order id or item the breach is about. */
  subject: string;
  detail: string;
}

export interface InvariantVerdict {
  name: InvariantName;
  /** One line, for the report table. */
  title: string;
  status: "pass" | "fail" | "skipped";
  /** How many subjects (orders, items, ledger rows) were examined. */
  checked: number;
  breach_count: number;
  /** The first breaches, up to `maxBreaches`; `breach_count` has them all. */
  breaches: Breach[];
  note?: string;
}

export interface InvariantInput {
  orders: ReadonlyArray<Pick<OrderRecord, "key" | "lines" | "answers" | "final"> & Partial<Pick<OrderRecord, "cancel" | "hold">>>;
  items: readonly ItemObservation[];
  /** Inventory's movements for the run's items and orders; null when unreachable. */
  ledger: readonly LedgerRow[] | null;
  /** Inventory's accounts of the run's orders (how each hold was settled); checked when given. */
  accounts?: readonly AccountRow[] | null;
  /** Restocks the runner made during the load. */
  restocks?: readonly RestockRecord[];
  /** How long after healing the run waited for final states. */
  settleBoundMs: number;
  maxBreaches?: number;
  /** What the webhook receiver saw, with the events and histories to judge it by (`--webhooks`); the webhook checks are skipped without it. */
  webhooks?: WebhookObservation | null;
}

export const INVARIANT_TITLES: Record<InvariantName, string> = {
  every_order_answered: "Every order got a definitive answer (201, 202 or 422), at the latest after healing",
  no_unexpected_answers: "No answer outside the API contract (key reuse, other 4xx)",
  one_order_per_key: "Every answer for one Idempotency-Key names the same order",
  no_order_for_two_keys: "No order id answers for two keys",
  accepted_orders_final: "Every accepted order (201/202) reached a final state within the bound",
  answers_kept: "Final states keep the promises: 201 ends confirmed (or cancelled by its client; a hold also paid or expired), 422 ends rejected or failed, only a cancelled order is cancelled, only a hold expires",
  legal_transitions: "Each order's history follows the state machine",
  cancel_answers_consistent: "Cancel answers agree with the order: 200 cancelled, 202 cancelling, 409 only rejected/failed, replays and second keys consistent, every accepted cancel ends cancelled",
  pay_answers_consistent: "Pay answers agree with the order: 200 confirmed, 202 reserved with paid_at, 409 hold-expired only expired; replays and second keys agree; paid before the deadline ends confirmed, after it expired",
  stock_conservation: "For every item: initial + restocks + adjustments = available + reserved + Σ lines of standing (sold) orders",
  no_oversell: "No item below zero; standing lines never exceed what the item ever had",
  no_confirmed_and_released: "No order is both confirmed and released or expired (in its history, its ledger or its account)",
  one_deduction_per_order: "Each order deducted (and released) at most once: all its deduct rows come from one transaction",
  no_line_deducted_twice: "No line of an order deducted, or released, twice",
  lines_all_or_nothing: "Every order has all its lines deducted, exactly as ordered, or none",
  deductions_match_orders: "Standing deductions belong to confirmed orders, line for line; failed and rejected orders keep none",
  cancelled_has_no_standing_deduction: "For every cancelled order and item, its deduct and release movements sum to zero",
  ledger_sums_match_stock: "For every item, Σ movements = its stock, as the API and the database show it",
  holds_settle_once: "Every hold ends paid, expired or cancelled, exactly once: a sale or a hold release of all its lines, never both, agreeing with the order's state",
  reserved_matches_live_holds: "For every item, reserved = Σ reserved changes = Σ lines of live holds, in the API and the database; none live after settling",
  stock_low_matches_ledger: STOCK_LOW_TITLE,
  ...WEBHOOK_INVARIANT_TITLES,
};

/** Allowed moves; `queued → queued` is the worker noting another failed attempt. */
const TRANSITIONS: Record<string, readonly string[]> = {
  pending: ["confirmed", "rejected", "queued", "reserved", "cancelling"],
  queued: ["queued", "confirmed", "rejected", "failed", "reserved", "cancelling"],
  reserved: ["confirmed", "expired", "cancelling"],
  confirmed: ["cancelling"],
  cancelling: ["cancelled"],
  cancelled: [],
  rejected: [],
  failed: [],
  expired: [],
};

const REFUSED = new Set(["rejected", "failed"]);

class Collector {
  readonly breaches: Breach[] = [];
  count = 0;
  checked = 0;
  constructor(private readonly max: number) {}
  add(subject: string, detail: string) {
    this.count++;
    if (this.breaches.length < this.max) this.breaches.push({ subject, detail });
  }
  verdict(name: InvariantName, note?: string): InvariantVerdict {
    return {
      name,
      title: INVARIANT_TITLES[name],
      status: this.count === 0 ? "pass" : "fail",
      checked: this.checked,
      breach_count: this.count,
      breaches: this.breaches,
      ...(note ? { note } : {}),
    };
  }
}

const skipped = (name: InvariantName, note: string): InvariantVerdict => ({
  name,
  title: INVARIANT_TITLES[name],
  status: "skipped",
  checked: 0,
  breach_count: 0,
  breaches: [],
  note,
});

/** The invariants that read inventory's ledger, in report order. */
export const LEDGER_INVARIANTS: readonly InvariantName[] = [
  "one_deduction_per_order",
  "no_line_deducted_twice",
  "lines_all_or_nothing",
  "deductions_match_orders",
  "cancelled_has_no_standing_deduction",
  "ledger_sums_match_stock",
  "holds_settle_once",
  "reserved_matches_live_holds",
];

/** A ledger row's change of `reserved_quantity` (rows from before holds have none). */
const rc = (r: Pick<LedgerRow, "reserved_change">) => r.reserved_change ?? 0;
/** Orders that asked for a hold (the plan says so), or whose history shows one. */
const askedHold = (o: InvariantInput["orders"][number]) => !!o.hold || !!o.final?.history.some((h) => h.status === "reserved");

const add = (m: Map<string, number>, k: string, n: number) => m.set(k, (m.get(k) ?? 0) + n);
const describe = (m: ReadonlyMap<string, number>) =>
  [...m.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k} ${v > 0 ? "+" : ""}${v}`)
    .join(", ") || "nothing";

/**
 * Checks every invariant and returns one verdict each, in a fixed order.
 * `checkInvariants({ orders, items, ledger: null, settleBoundMs: 120_000 })` →
 * `[{ name: "every_order_answered", status: "pass", … }, …, { name: "ledger_sums_match_stock", status: "skipped", … }]`.
 */
export function checkInvariants(input: InvariantInput): InvariantVerdict[] {
  return [...checkOrdersAndStock(input), ...checkWebhooks(input.webhooks, input.maxBreaches ?? 100)];
}

function checkOrdersAndStock(input: InvariantInput): InvariantVerdict[] {
  const max = input.maxBreaches ?? 100;
  const c = () => new Collector(max);
  const verdicts: InvariantVerdict[] = [];
  const orders = input.orders;
  const boundS = Math.round(input.settleBoundMs / 1000);

  // every_order_answered
  {
    const v = c();
    for (const o of orders) {
      v.checked++;
      if (o.answers.length === 0) v.add(o.key, "no definitive answer, not even after healing");
    }
    verdicts.push(v.verdict("every_order_answered"));
  }

  // no_unexpected_answers
  {
    const v = c();
    for (const o of orders) {
      for (const a of o.answers) {
        v.checked++;
        if (a.kind === "key_reused") v.add(o.key, `${a.status} idempotency key reported as reused with another body (${a.lane})`);
        else if (a.kind === "client_error") v.add(o.key, `${a.status} answer outside the order contract (${a.lane})`);
      }
    }
    verdicts.push(v.verdict("no_unexpected_answers"));
  }

  // one_order_per_key
  {
    const v = c();
    for (const o of orders) {
      v.checked++;
      const ids = new Set(o.answers.map((a) => a.order_id).filter((id): id is string => !!id));
      if (ids.size > 1) v.add(o.key, `answers named ${ids.size} orders: ${[...ids].join(", ")}`);
    }
    verdicts.push(v.verdict("one_order_per_key"));
  }

  // no_order_for_two_keys
  {
    const v = c();
    const keysByOrder = new Map<string, Set<string>>();
    for (const o of orders) {
      for (const a of o.answers) {
        if (!a.order_id) continue;
        let s = keysByOrder.get(a.order_id);
        if (!s) keysByOrder.set(a.order_id, (s = new Set()));
        s.add(o.key);
      }
    }
    for (const [id, keys] of keysByOrder) {
      v.checked++;
      if (keys.size > 1) v.add(id, `named by ${keys.size} keys: ${[...keys].join(", ")}`);
    }
    verdicts.push(v.verdict("no_order_for_two_keys"));
  }

  // accepted_orders_final
  {
    const v = c();
    for (const o of orders) {
      if (!isAccepted(o)) continue;
      v.checked++;
      const id = orderIdOf(o) ?? "(no order id)";
      if (!o.final) v.add(o.key, `order ${id} accepted but never read back`);
      else if (o.final.status === "missing") v.add(o.key, `order ${id} accepted, then not found (lost)`);
      else if (o.final.status === "unreadable") v.add(o.key, `order ${id} accepted; reading it back kept failing`);
      else if (!FINAL_STATUSES.has(o.final.status)) v.add(o.key, `order ${id} still ${o.final.status} ${boundS} s after healing`);
    }
    verdicts.push(v.verdict("accepted_orders_final"));
  }

  // answers_kept
  {
    const v = c();
    for (const o of orders) {
      const codes = new Set(o.answers.filter((a) => a.kind === "order").map((a) => a.status));
      if (codes.size === 0) continue;
      v.checked++;
      if (codes.has(201) && codes.has(422)) {
        v.add(o.key, "answered both 201 and 422");
        continue;
      }
      const final = o.final?.status;
      if (!final || !FINAL_STATUSES.has(final)) continue; // not final: accepted_orders_final reports it
      const cancelSent = !!o.cancel && o.cancel.sent_ms !== null;
      const hold = askedHold(o);
      if (final === "cancelled" && !cancelSent) v.add(o.key, "ended cancelled, yet its client never asked to cancel it");
      if (codes.has(201) && final !== "confirmed" && final !== "cancelled" && !(hold && final === "expired")) v.add(o.key, `answered 201 but ended ${final}`);
      if (codes.has(422) && (final === "confirmed" || final === "cancelled" || final === "expired")) v.add(o.key, `answered 422 but ended ${final}`);
      if (final === "expired" && !hold) v.add(o.key, "ended expired, yet it never asked for a hold");
      // A hold is never sold outright: its 201 says reserved; one without a hold never says so.
      for (const a of o.answers) {
        if (a.status !== 201 || a.kind !== "order") continue;
        if (o.hold && a.order_status !== "reserved") v.add(o.key, `asked for a hold, answered 201 ${a.order_status}`);
        if (!hold && a.order_status === "reserved") v.add(o.key, "answered 201 reserved without asking for a hold");
      }
    }
    verdicts.push(v.verdict("answers_kept"));
  }

  // legal_transitions
  {
    const v = c();
    for (const o of orders) {
      const h = o.final?.history;
      if (!h || h.length === 0) continue;
      v.checked++;
      const path = h.map((s) => s.status);
      if (path[0] !== "pending") {
        v.add(o.key, `history starts at ${path[0]}: ${path.join(" → ")}`);
        continue;
      }
      for (let i = 1; i < path.length; i++) {
        const from = path[i - 1]!;
        const to = path[i]!;
        if (!(TRANSITIONS[from] ?? []).includes(to)) {
          v.add(o.key, `illegal ${from} → ${to} in ${path.join(" → ")}`);
          break;
        }
      }
      const last = path[path.length - 1];
      if (o.final && FINAL_STATUSES.has(o.final.status) && last !== o.final.status) {
        v.add(o.key, `status ${o.final.status} but history ends at ${last}`);
      }
    }
    verdicts.push(v.verdict("legal_transitions"));
  }

  // cancel_answers_consistent
  {
    const v = c();
    for (const o of orders) {
      const k = o.cancel;
      if (!k || k.sent_ms === null) continue;
      v.checked++;
      const subject = `${o.key} (cancel)`;
      const final = o.final?.status ?? null;
      const firstOf = (key: string) => k.answers.find((a) => a.key === key && a.lane !== "cancel_replay") ?? null;
      const first = firstOf(k.key);
      if (!first) v.add(subject, "the cancel never got an answer, not even after healing");
      const refused = o.answers.some((a) => a.status === 422);
      for (const a of k.answers) {
        const what = `${a.status} (${a.lane})`;
        if (a.kind === "order") {
          if (a.status === 200 && a.order_status !== "cancelled") v.add(subject, `${what} with status ${a.order_status}, not cancelled`);
          else if (a.status === 202 && a.order_status !== "cancelling") v.add(subject, `${what} with status ${a.order_status}, not cancelling`);
          else if (a.status !== 200 && a.status !== 202) v.add(subject, `${what} is no cancel answer`);
          if (refused) v.add(subject, `${what} accepted a cancel of an order answered 422`);
        } else if (a.kind === "not_cancellable") {
          // An expired hold took its stock back by itself: nothing left to cancel.
          const closed = (st: string | null) => REFUSED.has(st ?? "") || (askedHold(o) && st === "expired");
          if (!closed(a.order_status)) v.add(subject, `${what} not cancellable, with status ${a.order_status}`);
          if (final && FINAL_STATUSES.has(final) && !closed(final)) v.add(subject, `${what} not cancellable, yet the order ended ${final}`);
        } else {
          v.add(subject, `${what} answer outside the cancel contract (${a.kind.replace("_", " ")})`);
        }
      }
      const replay = k.answers.find((a) => a.lane === "cancel_replay");
      if (replay && first) {
        if (replay.status !== first.status) v.add(subject, `the same key answered ${first.status}, then ${replay.status}`);
        else if (!replay.replayed) v.add(subject, `the same key sent again was answered ${replay.status} without Idempotent-Replayed`);
      }
      const second = k.second_key ? firstOf(k.second_key) : null;
      if (second && first) {
        if (first.status === 200 && second.status !== 200) v.add(subject, `a cancelled order answered a second key ${second.status}, not 200`);
        if (first.kind === "not_cancellable" && second.kind !== "not_cancellable") v.add(subject, `not cancellable, then a second key answered ${second.status}`);
      }
      if (cancelAccepted(k) && final !== "cancelled") v.add(subject, `cancel accepted, yet the order is ${final ?? "unread"} ${boundS} s after healing`);
    }
    verdicts.push(v.verdict("cancel_answers_consistent"));
  }

  // pay_answers_consistent
  {
    const v = c();
    for (const o of orders) {
      const h = o.hold;
      if (!h || h.pay_sent_ms === null) continue;
      v.checked++;
      const subject = `${o.key} (pay)`;
      const f = o.final;
      const final = f?.status ?? null;
      const firstOf = (key: string, lane: string) => h.answers.find((a) => a.key === key && a.lane === lane) ?? null;
      const first = firstOf(h.pay_key, "pay");
      if (!first) v.add(subject, "the payment never got an answer, not even after healing");
      for (const a of h.answers) {
        const what = `${a.status} (${a.lane})`;
        if (a.kind === "order") {
          if (a.status === 200) {
            if (a.order_status !== "confirmed") v.add(subject, `${what} with status ${a.order_status}, not confirmed`);
            if (final && FINAL_STATUSES.has(final) && final !== "confirmed") v.add(subject, `${what} confirmed the payment, yet the order ended ${final}`);
          } else if (a.status === 202) {
            if (a.order_status !== "reserved" || !a.paid_at) v.add(subject, `${what} with status ${a.order_status}${a.paid_at ? "" : " and no paid_at"}, not reserved with paid_at`);
          } else v.add(subject, `${what} is no pay answer`);
        } else if (a.kind === "hold_expired") {
          if (a.order_status !== "expired") v.add(subject, `${what} hold-expired, with status ${a.order_status}`);
          if (final && FINAL_STATUSES.has(final) && final !== "expired") v.add(subject, `${what} hold-expired, yet the order ended ${final}`);
        } else if (a.kind === "not_payable") {
          if (["reserved", "confirmed", "expired"].includes(a.order_status ?? "")) v.add(subject, `${what} not payable, with status ${a.order_status}`);
        } else v.add(subject, `${what} answer outside the pay contract (${a.kind.replace("_", " ")})`);
      }
      const replay = h.answers.find((a) => a.lane === "pay_replay");
      if (replay && first) {
        if (replay.status !== first.status) v.add(subject, `the same key answered ${first.status}, then ${replay.status}`);
        else if (!replay.replayed) v.add(subject, `the same key sent again was answered ${replay.status} without Idempotent-Replayed`);
      }
      const second = h.second_key ? firstOf(h.second_key, "pay_second") : null;
      if (second && first) {
        if (first.status === 200 && second.status !== 200) v.add(subject, `a paid order answered a second key ${second.status}, not 200`);
        if (first.kind === "hold_expired" && second.kind !== "hold_expired") v.add(subject, `hold-expired, then a second key answered ${second.status} ${second.kind}`);
      }
      // Judged by the moment the server recorded, against the deadline inventory recorded.
      const paidAt = f?.paid_at ? Date.parse(f.paid_at) : NaN;
      const expires = f?.hold_expires_at ? Date.parse(f.hold_expires_at) : NaN;
      const acted = h.answers.some((a) => a.kind === "order");
      if (acted && !Number.isFinite(paidAt)) v.add(subject, `answered ${h.answers.filter((a) => a.kind === "order").map((a) => a.status).join(", ")}, yet the order has no paid_at`);
      if (Number.isFinite(paidAt) && Number.isFinite(expires) && final && FINAL_STATUSES.has(final)) {
        const inTime = paidAt < expires;
        if (inTime && final !== "confirmed") v.add(subject, `paid at ${f!.paid_at}, before the deadline ${f!.hold_expires_at}, yet ended ${final}`);
        if (!inTime && final !== "expired") v.add(subject, `paid at ${f!.paid_at}, not before the deadline ${f!.hold_expires_at}, yet ended ${final}`);
      }
      if (Number.isFinite(paidAt) && h.pay_sent_at && paidAt < Date.parse(h.pay_sent_at) - 1_000) v.add(subject, `paid_at ${f!.paid_at} is before the payment was sent (${h.pay_sent_at})`);
      if (final === "reserved" || final === "queued" || final === "pending") v.add(subject, `paid, yet the order is still ${final} ${boundS} s after healing`);
    }
    verdicts.push(v.verdict("pay_answers_consistent"));
  }

  // Σ lines of standing (confirmed) orders per item, from the final states
  const standingQty = new Map<string, number>();
  for (const o of orders) {
    if (o.final?.status !== "confirmed") continue;
    for (const l of o.lines) add(standingQty, l.item_id, l.quantity);
  }
  const unsettled = orders.filter((o) => o.final && !FINAL_STATUSES.has(o.final.status) && (isAccepted(o) || cancelAccepted(o.cancel ?? null))).length;
  const ledger = input.ledger;

  // Stock that came in after creation: restocks and adjustments, from the ledger when there is one,
  // else the restocks the runner was told happened.
  const acknowledged = new Map<string, number>();
  const unknownRestock = new Map<string, number>();
  for (const r of input.restocks ?? []) {
    if (r.status === 200) add(acknowledged, r.item_id, r.quantity);
    else if (r.status === 0 || r.status >= 500) add(unknownRestock, r.item_id, r.quantity);
  }
  const added = new Map<string, number>();
  if (ledger) for (const r of ledger) if (r.type === "restock" || r.type === "adjust") add(added, r.item_id, r.quantity_change);
  const addedTo = (item: string) => (ledger ? (added.get(item) ?? 0) : (acknowledged.get(item) ?? 0));

  // stock_conservation: initial + restocks + adjustments = available + reserved + Σ sold
  {
    const v = c();
    for (const it of input.items) {
      v.checked++;
      const extra = addedTo(it.item_id);
      const sum = standingQty.get(it.item_id) ?? 0;
      const reserved = it.reserved ?? 0;
      if (it.current === null) v.add(it.item_id, "stock could not be read after healing");
      else if (it.reserved === null) v.add(it.item_id, "reserved stock could not be read after healing");
      else if (it.initial + extra !== it.current + reserved + sum) {
        const off = it.initial + extra - (it.current + reserved + sum);
        v.add(it.item_id, `initial ${it.initial} + restocks/adjustments ${extra} = ${it.initial + extra} ≠ available ${it.current} + reserved ${reserved} + sold ${sum} = ${it.current + reserved + sum} (off by ${off})`);
      }
      if (ledger) {
        // The ledger's restocks are the runner's own: every acknowledged one, and at most the unanswered ones besides.
        const restocked = ledger.filter((r) => r.item_id === it.item_id && r.type === "restock").reduce((s, r) => s + r.quantity_change, 0);
        const ack = acknowledged.get(it.item_id) ?? 0;
        if (restocked < ack || restocked > ack + (unknownRestock.get(it.item_id) ?? 0)) {
          v.add(it.item_id, `the ledger holds restocks of ${restocked}, the runner was told of ${ack}`);
        }
      }
    }
    verdicts.push(v.verdict("stock_conservation", unsettled ? `${unsettled} accepted orders were not final; their deductions may stand` : undefined));
  }

  // no_oversell
  {
    const v = c();
    for (const it of input.items) {
      v.checked++;
      if (it.current !== null && it.current < 0) v.add(it.item_id, `stock is ${it.current}`);
      if (it.db_quantity !== undefined && it.db_quantity !== null && it.db_quantity < 0) v.add(it.item_id, `quantity in the database is ${it.db_quantity}`);
      if (it.reserved != null && it.reserved < 0) v.add(it.item_id, `reserved stock is ${it.reserved}`);
      const sum = standingQty.get(it.item_id) ?? 0;
      const had = it.initial + Math.max(0, addedTo(it.item_id));
      if (sum > had) v.add(it.item_id, `confirmed ${sum} units of ${had} ever in stock`);
    }
    verdicts.push(v.verdict("no_oversell"));
  }

  // no_confirmed_and_released
  {
    const v = c();
    const releasedIds = new Set<string>();
    if (ledger) for (const r of ledger) if (r.order_id && (r.type === "release" || r.type === "hold_release")) releasedIds.add(r.order_id);
    const accountOf = new Map((input.accounts ?? []).map((a) => [a.order_id, a]));
    for (const o of orders) {
      const f = o.final;
      if (!f || !FINAL_STATUSES.has(f.status)) continue;
      v.checked++;
      const id = orderIdOf(o);
      const path = f.history.map((h) => h.status);
      if (path.includes("confirmed") && path.includes("expired")) v.add(id ?? o.key, `both confirmed and expired in its history: ${path.join(" → ")}`);
      if (f.status !== "confirmed") continue;
      if (path.includes("cancelled") || path.includes("expired")) v.add(id ?? o.key, `confirmed, yet its history says ${path.join(" → ")}`);
      if (id && releasedIds.has(id)) v.add(id, "confirmed, yet the ledger released its stock");
      const acc = id ? accountOf.get(id) : undefined;
      if (acc && (acc.released || acc.settled === "expired" || acc.settled === "cancelled")) v.add(id!, `confirmed, yet inventory's account says ${acc.settled ?? "released"}`);
    }
    verdicts.push(v.verdict("no_confirmed_and_released", ledger ? undefined : "histories only (inventory's ledger was not read)"));
  }

  if (!ledger) {
    const note = "inventory's movements table was not readable (give --inventory-db for a deployment)";
    verdicts.push(...LEDGER_INVARIANTS.map((n) => skipped(n, note)));
    return verdicts;
  }

  // A hold takes a line like a deduction (from available into reserved); a hold release gives it
  // back like a release; a sale moves nothing available.
  const deducts = new Map<string, LedgerRow[]>();
  const releases = new Map<string, LedgerRow[]>();
  const sales = new Map<string, LedgerRow[]>();
  for (const r of ledger) {
    if (!r.order_id) continue;
    const m = r.type === "deduct" || r.type === "hold" ? deducts : r.type === "release" || r.type === "hold_release" ? releases : r.type === "sale" ? sales : null;
    if (!m) continue;
    const list = m.get(r.order_id);
    if (list) list.push(r);
    else m.set(r.order_id, [r]);
  }
  const byId = new Map<string, (typeof orders)[number]>();
  for (const o of orders) {
    const id = orderIdOf(o);
    if (id) byId.set(id, o);
  }
  /** Per item: Σ deduct + release of one order (negative while a deduction stands). */
  const standingOf = (id: string) => {
    const m = new Map<string, number>();
    for (const r of [...(deducts.get(id) ?? []), ...(releases.get(id) ?? [])]) add(m, r.item_id, r.quantity_change);
    return m;
  };
  /** Per item: Σ reserved changes of one order (positive while its hold is live). */
  const heldOf = (id: string) => {
    const m = new Map<string, number>();
    for (const r of [...(deducts.get(id) ?? []), ...(releases.get(id) ?? []), ...(sales.get(id) ?? [])]) if (rc(r) !== 0) add(m, r.item_id, rc(r));
    return m;
  };

  // one_deduction_per_order
  {
    const v = c();
    for (const [id, rows] of deducts) {
      v.checked++;
      const txs = new Set(rows.map((r) => r.tx_at));
      if (txs.size > 1) v.add(id, `deducted in ${txs.size} transactions (${rows.length} rows)`);
    }
    for (const [id, rows] of releases) {
      const txs = new Set(rows.map((r) => r.tx_at));
      if (txs.size > 1) v.add(id, `released in ${txs.size} transactions (${rows.length} rows)`);
    }
    for (const [id, rows] of sales) {
      const txs = new Set(rows.map((r) => r.tx_at));
      if (txs.size > 1) v.add(id, `sold in ${txs.size} transactions (${rows.length} rows)`);
    }
    verdicts.push(v.verdict("one_deduction_per_order"));
  }

  // no_line_deducted_twice
  {
    const v = c();
    for (const [kind, m] of [["deducted", deducts], ["released", releases], ["sold", sales]] as const) {
      for (const [id, rows] of m) {
        const perItem = new Map<string, number>();
        for (const r of rows) add(perItem, r.item_id, 1);
        for (const [item, n] of perItem) {
          if (kind === "deducted") v.checked++;
          if (n > 1) v.add(id, `line ${item} ${kind} ${n} times`);
        }
      }
    }
    verdicts.push(v.verdict("no_line_deducted_twice"));
  }

  // lines_all_or_nothing
  {
    const v = c();
    for (const [id, o] of byId) {
      v.checked++;
      const rows = deducts.get(id) ?? [];
      if (rows.length === 0) continue;
      const got = new Map<string, number>();
      for (const r of rows) add(got, r.item_id, -r.quantity_change);
      const want = new Map(o.lines.map((l) => [l.item_id, l.quantity]));
      const same = got.size === want.size && [...want].every(([item, q]) => got.get(item) === q);
      if (!same) {
        v.add(id, `ordered ${o.lines.map((l) => `${l.item_id} × ${l.quantity}`).join(", ")}; deducted ${[...got].map(([i, q]) => `${i} × ${q}`).join(", ")}`);
      }
    }
    verdicts.push(v.verdict("lines_all_or_nothing"));
  }

  // deductions_match_orders
  {
    const v = c();
    const runItems = new Set(input.items.map((i) => i.item_id));
    for (const [id, rows] of deducts) {
      if (!byId.has(id) && rows.some((r) => runItems.has(r.item_id))) {
        v.checked++;
        v.add(id, `deduction of ${rows.map((r) => `${-r.quantity_change} × ${r.item_id}`).join(", ")} for an order no client was told about`);
      }
    }
    for (const [id, o] of byId) {
      v.checked++;
      const d = deducts.get(id) ?? [];
      const rel = releases.get(id) ?? [];
      const standing = standingOf(id);
      const status = o.final?.status;
      if (status === "confirmed") {
        if (d.length === 0) v.add(id, "confirmed without an applied deduction");
        else if (rel.length > 0) v.add(id, "confirmed, but its deduction was released");
        else {
          const off = o.lines.filter((l) => standing.get(l.item_id) !== -l.quantity);
          if (off.length) v.add(id, `confirmed ${o.lines.map((l) => `${l.item_id} × ${l.quantity}`).join(", ")}; standing ${describe(standing)}`);
        }
      } else if (status && (REFUSED.has(status) || status === "expired") && [...standing.values()].some((n) => n !== 0)) {
        v.add(id, `${status}, yet deductions stand: ${describe(standing)}`);
      }
      if (rel.length > 0 && d.length === 0) v.add(id, "a release restored stock that was never deducted");
      for (const [item, n] of standing) if (n > 0) v.add(id, `${item}: released ${n} more than was deducted`);
    }
    verdicts.push(v.verdict("deductions_match_orders"));
  }

  // cancelled_has_no_standing_deduction
  {
    const v = c();
    for (const [id, o] of byId) {
      if (o.final?.status !== "cancelled") continue;
      v.checked++;
      const standing = standingOf(id);
      const left = [...standing].filter(([, n]) => n !== 0);
      if (left.length) v.add(id, `cancelled, yet its movements sum to ${describe(new Map(left))}`);
      const held = [...heldOf(id)].filter(([, n]) => n !== 0);
      if (held.length) v.add(id, `cancelled, yet it still holds ${describe(new Map(held))} reserved`);
    }
    verdicts.push(v.verdict("cancelled_has_no_standing_deduction"));
  }

  // ledger_sums_match_stock
  {
    const v = c();
    const dbRead = input.items.some((it) => it.db_quantity !== undefined);
    for (const it of input.items) {
      v.checked++;
      const rows = ledger.filter((r) => r.item_id === it.item_id);
      const sum = rows.reduce((s, r) => s + r.quantity_change, 0);
      if (!rows.some((r) => r.type === "create")) v.add(it.item_id, "no creation row in the ledger");
      if (it.current !== null && sum !== it.current) v.add(it.item_id, `movements sum to ${sum}, the API shows stock ${it.current}`);
      if (dbRead) {
        if (it.db_quantity === null || it.db_quantity === undefined) v.add(it.item_id, "no quantity in the database");
        else if (sum !== it.db_quantity) v.add(it.item_id, `movements sum to ${sum}, the database holds ${it.db_quantity}`);
      }
    }
    verdicts.push(v.verdict("ledger_sums_match_stock", dbRead ? undefined : "quantities compared with the API only (the database's were not read)"));
  }

  const accountOf = new Map((input.accounts ?? []).map((a) => [a.order_id, a]));

  // holds_settle_once
  {
    const v = c();
    const holdIds = new Set<string>();
    for (const r of ledger) if (r.order_id && r.type === "hold") holdIds.add(r.order_id);
    for (const [id, o] of byId) {
      const takes = deducts.get(id) ?? [];
      if (o.hold && takes.some((r) => r.type === "deduct")) v.add(id, "asked for a hold, yet its lines were sold outright (deduct rows)");
      if (!o.hold && o.hold !== undefined && holdIds.has(id)) v.add(id, "holds stock, yet it never asked for a hold");
    }
    for (const id of holdIds) {
      v.checked++;
      const o = byId.get(id);
      const held = (deducts.get(id) ?? []).filter((r) => r.type === "hold");
      const sold = sales.get(id) ?? [];
      const back = (releases.get(id) ?? []).filter((r) => r.type === "hold_release");
      const restored = (releases.get(id) ?? []).filter((r) => r.type === "release");
      const lines = (rows: LedgerRow[], q: (r: LedgerRow) => number) => {
        const m = new Map<string, number>();
        for (const r of rows) add(m, r.item_id, q(r));
        return m;
      };
      const want = lines(held, (r) => rc(r));
      const same = (m: Map<string, number>) => m.size === want.size && [...want].every(([item, q]) => m.get(item) === q);
      const final = o?.final?.status ?? null;
      const acc = accountOf.get(id);
      let how: "sold" | "released" | null = null;
      if (sold.length && back.length) v.add(id, `settled twice: sold (${sold.length} rows) and released (${back.length} rows)`);
      else if (sold.length) how = "sold";
      else if (back.length) how = "released";
      else v.add(id, `hold never settled: no sale, no hold release (order ${final ?? "unread"})`);
      if (how === "sold" && !same(lines(sold, (r) => -rc(r)))) v.add(id, `held ${describe(want)}; sold ${describe(lines(sold, (r) => -rc(r)))}`);
      if (how === "released" && !same(lines(back, (r) => r.quantity_change))) v.add(id, `held ${describe(want)}; released ${describe(lines(back, (r) => r.quantity_change))}`);
      if (!how || !o) continue;
      // The order's final state tells the same story as the ledger, and so does inventory's account.
      if (final === "confirmed" && !(how === "sold" && restored.length === 0)) v.add(id, `confirmed, yet its hold was ${how === "sold" ? "sold and then released" : "released"}`);
      else if (final === "expired" && how !== "released") v.add(id, "expired, yet its hold was sold");
      else if (final === "cancelled" && how === "sold" && !same(lines(restored, (r) => r.quantity_change))) v.add(id, "cancelled after its hold was sold, yet the sold lines were not all given back");
      else if ((final === "rejected" || final === "reserved" || final === "pending" || final === "queued") && how) v.add(id, `its hold was ${how}, yet the order is ${final}`);
      if (acc) {
        const want2 = how === "sold" ? ["sold"] : final === "expired" ? ["expired"] : final === "cancelled" || final === "failed" || final === "cancelling" ? ["cancelled"] : ["expired", "cancelled"];
        if (!want2.includes(acc.settled ?? "")) v.add(id, `${final ?? "unread"}, its hold ${how} in the ledger, yet inventory's account says ${acc.settled ?? "not settled"}`);
      }
    }
    verdicts.push(v.verdict("holds_settle_once", input.accounts ? undefined : "ledger and order states only (inventory's accounts were not read)"));
  }

  // reserved_matches_live_holds
  {
    const v = c();
    const dbRead = input.items.some((it) => it.db_reserved !== undefined);
    // Live holds: by inventory's accounts when read, else by the orders still reserved.
    const live = new Map<string, number>();
    const liveIds: string[] = [];
    for (const [id, o] of byId) {
      const acc = accountOf.get(id);
      const isLive = input.accounts ? acc?.outcome === "held" && acc.settled === null : o.final?.status === "reserved";
      if (!isLive) continue;
      liveIds.push(id);
      for (const l of o.lines) add(live, l.item_id, l.quantity);
    }
    for (const it of input.items) {
      v.checked++;
      const sum = ledger.filter((r) => r.item_id === it.item_id).reduce((s, r) => s + rc(r), 0);
      const holds = live.get(it.item_id) ?? 0;
      if (sum !== holds) v.add(it.item_id, `reserved changes sum to ${sum}, live holds hold ${holds}`);
      if (it.reserved != null && it.reserved !== sum) v.add(it.item_id, `reserved changes sum to ${sum}, the API shows reserved ${it.reserved}`);
      if (dbRead) {
        if (it.db_reserved == null) v.add(it.item_id, "no reserved quantity in the database");
        else if (it.db_reserved !== sum) v.add(it.item_id, `reserved changes sum to ${sum}, the database holds reserved ${it.db_reserved}`);
      }
    }
    for (const id of liveIds) {
      v.checked++;
      v.add(id, `hold still live after settling (order ${byId.get(id)?.final?.status ?? "unread"})`);
    }
    verdicts.push(v.verdict("reserved_matches_live_holds", dbRead ? undefined : "reserved compared with the API only (the database's were not read)"));
  }

  return verdicts;
}

/** The run passes when no invariant failed; skipped ones are reported, not counted. */
export function overallVerdict(verdicts: readonly InvariantVerdict[]): "pass" | "fail" {
  return verdicts.some((v) => v.status === "fail") ? "fail" : "pass";
}
