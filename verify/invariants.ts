import { cancelAccepted, FINAL_STATUSES, isAccepted, orderIdOf, type ItemObservation, type LedgerRow, type OrderRecord, type RestockRecord } from "./types.ts";

/**
 * The verdict on the data, Jepsen-style: after healing, what the system holds is compared with
 * what its clients were told. Pure: every input is passed in, so each breach kind is unit-tested
 * on synthetic data. Ledger checks need inventory's movements table; without it they are
 * `skipped`, never silently passed.
 *
 * An order *stands* when it ends `confirmed`: its lines are sold. A `cancelled` order gave its
 * stock back; `rejected` and `failed` ones never kept any.
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
  | "stock_conservation"
  | "no_oversell"
  | "one_deduction_per_order"
  | "no_line_deducted_twice"
  | "lines_all_or_nothing"
  | "deductions_match_orders"
  | "cancelled_has_no_standing_deduction"
  | "ledger_sums_match_stock";

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
  orders: ReadonlyArray<Pick<OrderRecord, "key" | "lines" | "answers" | "final"> & Partial<Pick<OrderRecord, "cancel">>>;
  items: readonly ItemObservation[];
  /** Inventory's movements for the run's items and orders; null when unreachable. */
  ledger: readonly LedgerRow[] | null;
  /** Restocks the runner made during the load. */
  restocks?: readonly RestockRecord[];
  /** How long after healing the run waited for final states. */
  settleBoundMs: number;
  maxBreaches?: number;
}

export const INVARIANT_TITLES: Record<InvariantName, string> = {
  every_order_answered: "Every order got a definitive answer (201, 202 or 422), at the latest after healing",
  no_unexpected_answers: "No answer outside the API contract (key reuse, other 4xx)",
  one_order_per_key: "Every answer for one Idempotency-Key names the same order",
  no_order_for_two_keys: "No order id answers for two keys",
  accepted_orders_final: "Every accepted order (201/202) reached a final state within the bound",
  answers_kept: "Final states keep the promises: 201 ends confirmed (or cancelled by its client), 422 ends rejected or failed, only a cancelled order is cancelled",
  legal_transitions: "Each order's history follows the state machine",
  cancel_answers_consistent: "Cancel answers agree with the order: 200 cancelled, 202 cancelling, 409 only rejected/failed, replays and second keys consistent, every accepted cancel ends cancelled",
  stock_conservation: "For every item: initial + restocks + adjustments − Σ lines of standing orders = final stock",
  no_oversell: "No item below zero; standing lines never exceed what the item ever had",
  one_deduction_per_order: "Each order deducted (and released) at most once: all its deduct rows come from one transaction",
  no_line_deducted_twice: "No line of an order deducted, or released, twice",
  lines_all_or_nothing: "Every order has all its lines deducted, exactly as ordered, or none",
  deductions_match_orders: "Standing deductions belong to confirmed orders, line for line; failed and rejected orders keep none",
  cancelled_has_no_standing_deduction: "For every cancelled order and item, its deduct and release movements sum to zero",
  ledger_sums_match_stock: "For every item, Σ movements = its stock, as the API and the database show it",
};

/** Allowed moves; `queued → queued` is the worker noting another failed attempt. */
const TRANSITIONS: Record<string, readonly string[]> = {
  pending: ["confirmed", "rejected", "queued", "cancelling"],
  queued: ["queued", "confirmed", "rejected", "failed", "cancelling"],
  confirmed: ["cancelling"],
  cancelling: ["cancelled"],
  cancelled: [],
  rejected: [],
  failed: [],
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
];

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
      if (final === "cancelled" && !cancelSent) v.add(o.key, "ended cancelled, yet its client never asked to cancel it");
      if (codes.has(201) && final !== "confirmed" && final !== "cancelled") v.add(o.key, `answered 201 but ended ${final}`);
      if (codes.has(422) && (final === "confirmed" || final === "cancelled")) v.add(o.key, `answered 422 but ended ${final}`);
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
          if (!REFUSED.has(a.order_status ?? "")) v.add(subject, `${what} not cancellable, with status ${a.order_status}`);
          if (final && FINAL_STATUSES.has(final) && !REFUSED.has(final)) v.add(subject, `${what} not cancellable, yet the order ended ${final}`);
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

  // stock_conservation
  {
    const v = c();
    for (const it of input.items) {
      v.checked++;
      const extra = addedTo(it.item_id);
      const sum = standingQty.get(it.item_id) ?? 0;
      if (it.current === null) v.add(it.item_id, "stock could not be read after healing");
      else if (it.initial + extra - sum !== it.current) {
        v.add(it.item_id, `initial ${it.initial} + restocks/adjustments ${extra} − standing ${sum} = ${it.initial + extra - sum} ≠ stock ${it.current} (off by ${it.initial + extra - sum - it.current})`);
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
      const sum = standingQty.get(it.item_id) ?? 0;
      const had = it.initial + Math.max(0, addedTo(it.item_id));
      if (sum > had) v.add(it.item_id, `confirmed ${sum} units of ${had} ever in stock`);
    }
    verdicts.push(v.verdict("no_oversell"));
  }

  if (!ledger) {
    const note = "inventory's movements table was not readable (give --inventory-db for a deployment)";
    verdicts.push(...LEDGER_INVARIANTS.map((n) => skipped(n, note)));
    return verdicts;
  }

  const deducts = new Map<string, LedgerRow[]>();
  const releases = new Map<string, LedgerRow[]>();
  for (const r of ledger) {
    if (!r.order_id) continue;
    const m = r.type === "deduct" ? deducts : r.type === "release" ? releases : null;
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
    verdicts.push(v.verdict("one_deduction_per_order"));
  }

  // no_line_deducted_twice
  {
    const v = c();
    for (const [kind, m] of [["deducted", deducts], ["released", releases]] as const) {
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
      } else if (status && REFUSED.has(status) && [...standing.values()].some((n) => n !== 0)) {
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

  return verdicts;
}

/** The run passes when no invariant failed; skipped ones are reported, not counted. */
export function overallVerdict(verdicts: readonly InvariantVerdict[]): "pass" | "fail" {
  return verdicts.some((v) => v.status === "fail") ? "fail" : "pass";
}
