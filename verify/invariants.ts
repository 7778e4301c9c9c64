import { FINAL_STATUSES, isAccepted, orderIdOf, type ItemObservation, type LedgerRow, type OrderRecord } from "./types.ts";

/**
 * The verdict on the data, Jepsen-style: after healing, what the system holds is compared with
 * what its clients were told. Pure: every input is passed in, so each breach kind is unit-tested
 * on synthetic data. Ledger checks need inventory's transaction table; without it they are
 * `skipped`, never silently passed.
 */

export type InvariantName =
  | "every_order_answered"
  | "no_unexpected_answers"
  | "one_order_per_key"
  | "no_order_for_two_keys"
  | "accepted_orders_final"
  | "answers_kept"
  | "legal_transitions"
  | "stock_conservation"
  | "no_oversell"
  | "one_deduction_per_order"
  | "deductions_match_orders"
  | "ledger_matches_stock";

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
  orders: ReadonlyArray<Pick<OrderRecord, "key" | "item_id" | "quantity" | "answers" | "final">>;
  items: readonly ItemObservation[];
  /** Inventory's transactions for the run's items and orders; null when unreachable. */
  ledger: readonly LedgerRow[] | null;
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
  answers_kept: "Final states keep the promises: 201 ends confirmed, 422 ends rejected or failed",
  legal_transitions: "Each order's history follows the state machine",
  stock_conservation: "For every item: initial stock = current stock + Σ confirmed quantities",
  no_oversell: "No item below zero; confirmed quantities never exceed the initial stock",
  one_deduction_per_order: "At most one applied deduction per order",
  deductions_match_orders: "Each standing deduction belongs to a confirmed order, and each confirmed order has exactly one",
  ledger_matches_stock: "For every item, the sum of its applied movements equals its stock",
};

/** Allowed moves; `queued → queued` is the worker noting another failed attempt. */
const TRANSITIONS: Record<string, readonly string[]> = {
  pending: ["confirmed", "rejected", "queued"],
  queued: ["queued", "confirmed", "rejected", "failed"],
  confirmed: [],
  rejected: [],
  failed: [],
};

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

/**
 * Checks every invariant and returns one verdict each, in a fixed order.
 * `checkInvariants({ orders, items, ledger: null, settleBoundMs: 120_000 })` →
 * `[{ name: "every_order_answered", status: "pass", … }, …, { name: "one_deduction_per_order", status: "skipped", … }]`.
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
      if (codes.has(201) && final !== "confirmed") v.add(o.key, `answered 201 but ended ${final}`);
      if (codes.has(422) && final === "confirmed") v.add(o.key, "answered 422 but ended confirmed");
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

  // Σ confirmed per item, from the final states
  const confirmedQty = new Map<string, number>();
  for (const o of orders) {
    if (o.final?.status === "confirmed") confirmedQty.set(o.item_id, (confirmedQty.get(o.item_id) ?? 0) + o.quantity);
  }
  const unsettled = orders.filter((o) => o.final && !FINAL_STATUSES.has(o.final.status) && isAccepted(o)).length;

  // stock_conservation
  {
    const v = c();
    for (const it of input.items) {
      v.checked++;
      if (it.current === null) {
        v.add(it.item_id, "stock could not be read after healing");
        continue;
      }
      const sum = confirmedQty.get(it.item_id) ?? 0;
      if (it.initial !== it.current + sum) {
        v.add(it.item_id, `initial ${it.initial} ≠ current ${it.current} + confirmed ${sum} (off by ${it.initial - it.current - sum})`);
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
      const sum = confirmedQty.get(it.item_id) ?? 0;
      if (sum > it.initial) v.add(it.item_id, `confirmed ${sum} units of ${it.initial} in stock`);
    }
    verdicts.push(v.verdict("no_oversell"));
  }

  const ledger = input.ledger;
  if (!ledger) {
    const note = "inventory's transaction table was not readable (give --inventory-db for a deployment)";
    verdicts.push(skipped("one_deduction_per_order", note), skipped("deductions_match_orders", note), skipped("ledger_matches_stock", note));
    return verdicts;
  }

  const appliedDeducts = new Map<string, LedgerRow[]>();
  const appliedReleases = new Map<string, LedgerRow[]>();
  for (const r of ledger) {
    if (r.outcome !== "applied" || !r.order_id) continue;
    const m = r.type === "deduct" ? appliedDeducts : r.type === "release" ? appliedReleases : null;
    if (!m) continue;
    const list = m.get(r.order_id);
    if (list) list.push(r);
    else m.set(r.order_id, [r]);
  }

  // one_deduction_per_order
  {
    const v = c();
    for (const [id, rows] of appliedDeducts) {
      v.checked++;
      if (rows.length > 1) v.add(id, `${rows.length} applied deductions`);
    }
    for (const [id, rows] of appliedReleases) {
      if (rows.length > 1) v.add(id, `${rows.length} applied releases`);
    }
    verdicts.push(v.verdict("one_deduction_per_order"));
  }

  // deductions_match_orders
  {
    const v = c();
    const byId = new Map<string, (typeof orders)[number]>();
    for (const o of orders) {
      const id = orderIdOf(o);
      if (id) byId.set(id, o);
    }
    const runItems = new Set(input.items.map((i) => i.item_id));
    for (const [id, rows] of appliedDeducts) {
      if (!byId.has(id) && rows.some((r) => runItems.has(r.item_id))) {
        v.checked++;
        v.add(id, `applied deduction of ${-rows[0]!.quantity_change} × ${rows[0]!.item_id} for an order no client was told about`);
      }
    }
    for (const [id, o] of byId) {
      v.checked++;
      const deducts = appliedDeducts.get(id) ?? [];
      const released = (appliedReleases.get(id) ?? []).length > 0;
      const standing = deducts.length > 0 && !released;
      const status = o.final?.status;
      if (status === "confirmed") {
        if (deducts.length === 0) v.add(id, "confirmed without an applied deduction");
        else if (released) v.add(id, "confirmed, but its deduction was released");
        else {
          const d = deducts[0]!;
          if (d.item_id !== o.item_id || -d.quantity_change !== o.quantity) {
            v.add(id, `confirmed ${o.quantity} × ${o.item_id}, deducted ${-d.quantity_change} × ${d.item_id}`);
          }
        }
      } else if (status && FINAL_STATUSES.has(status) && standing) {
        v.add(id, `${status}, yet its deduction of ${-deducts[0]!.quantity_change} × ${deducts[0]!.item_id} stands`);
      }
      if (released && deducts.length === 0) v.add(id, "a release restored stock that was never deducted");
    }
    verdicts.push(v.verdict("deductions_match_orders"));
  }

  // ledger_matches_stock
  {
    const v = c();
    for (const it of input.items) {
      v.checked++;
      const rows = ledger.filter((r) => r.item_id === it.item_id && r.outcome === "applied");
      const sum = rows.reduce((s, r) => s + r.quantity_change, 0);
      if (!rows.some((r) => r.type === "create")) v.add(it.item_id, "no creation row in the ledger");
      else if (it.current !== null && sum !== it.current) v.add(it.item_id, `movements sum to ${sum}, stock is ${it.current}`);
    }
    verdicts.push(v.verdict("ledger_matches_stock"));
  }

  return verdicts;
}

/** The run passes when no invariant failed; skipped ones are reported, not counted. */
export function overallVerdict(verdicts: readonly InvariantVerdict[]): "pass" | "fail" {
  return verdicts.some((v) => v.status === "fail") ? "fail" : "pass";
}
