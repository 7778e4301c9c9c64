import { mixSeed, mulberry32 } from "../platform/prng.ts";
import { sendCancel, sendOrder, sendPay, type CarefulClientOptions } from "./careful-client.ts";
import type { CancelLane, CancelMoment, CancelRecord, HoldFate, HoldRecord, OrderLine, OrderRecord, PayLane, PayMoment, RestockRecord } from "./types.ts";

/**
 * The load: a plan of logical orders derived from the seed (same seed, same orders, lines, items,
 * quantities and cancellations), driven by a fixed pool of careful clients. Orders have 1 to
 * `maxLines` lines over a few shared items, so they contend for the same rows; some items are
 * stocked short on purpose, so the run also proves that refusals under concurrency never oversell
 * and that a short line refuses its whole order. A share of the orders is cancelled: right after
 * its answer (often while queued, or while the breaker is open), a few seconds later, or after
 * healing; cancels are sent again with the same key and with a second key. Another share asks
 * for a hold (`hold_s`): paid well before its deadline, near it, or after it (a 409 is due), paid
 * twice (the same key, another key), cancelled while reserved, or left to expire.
 */

export interface ItemPlan {
  item_id: string;
  item_name: string;
  stock: number;
  /** Set on the scarce items, so the run writes `stock.low` events (`verify/stock-events.ts` checks them); 0 = off. */
  low_stock_threshold: number;
}

export interface PlannedCancel {
  moment: CancelMoment;
  delay_ms: number;
  key: string;
  replay: boolean;
  second_key: string | null;
  reason: string | null;
}

export interface PlannedHold {
  hold_s: number;
  fate: HoldFate;
  pay_moment: PayMoment | null;
  offset_ms: number;
  pay_key: string;
  replay: boolean;
  second_key: string | null;
}

export interface PlannedOrder {
  index: number;
  key: string;
  lines: OrderLine[];
  form: "lines" | "one_item";
  duplicate: boolean;
  cancel: PlannedCancel | null;
  hold: PlannedHold | null;
}

export interface PlannedRestock {
  /** Sent when the order with this index is about to start. */
  before_index: number;
  item_id: string;
  quantity: number;
}

export interface PlanOptions {
  orders: number;
  items: number;
  seed: number;
  /** Unique per run, so keys and items never meet those of another run on a shared deployment. */
  runId: string;
  /** Share of orders sent twice at once. */
  duplicateRate: number;
  /** Share of orders with a line for an item that does not exist (a 422 the chaos must not turn into anything else). */
  unknownRate: number;
  /** Lines per order: 1 to this many, uniformly (default 4). */
  maxLines?: number;
  /** Share of one-line orders sent in the seed's `{item_id, quantity}` body (default 0.5). */
  oneItemRate?: number;
  /** Share of orders the plan cancels (default 0). */
  cancelRate?: number;
  /** Restocks spread over the load (default 0). */
  restocks?: number;
  /** Share of orders placed with a hold (default 0). */
  holdRate?: number;
  /** The holds' `hold_s` (default 60, the least the API takes). */
  holdS?: number;
}

const MAX_QTY = 3;
/** How the planned cancels spread over their moments. */
const MOMENTS: ReadonlyArray<[CancelMoment, number]> = [
  ["immediate", 0.4],
  ["delayed", 0.35],
  ["after_heal", 0.25],
];

/**
 * Items for the run: every other one is stocked below its expected demand, so it sells out
 * part-way and later orders naming it must be refused whole. `planItems({ orders: 2000, items: 8,
 * runId: "a1" })` → `[{ item_id: "chaos-a1-1", stock: 350 }, { item_id: "chaos-a1-2", stock: 1000 }, …]`
 * for one-line orders; with `maxLines: 4` the expected demand (and the stock) is 2.5 times that.
 */
export function planItems(o: Pick<PlanOptions, "orders" | "items" | "runId" | "maxLines">): ItemPlan[] {
  const maxLines = Math.min(o.maxLines ?? 1, o.items);
  const expected = (o.orders * ((1 + maxLines) / 2) * ((1 + MAX_QTY) / 2)) / Math.max(1, o.items);
  return Array.from({ length: o.items }, (_, i) => {
    const stock = Math.max(1, Math.round(expected * (i % 2 === 0 ? 0.7 : 2)));
    return {
      item_id: `chaos-${o.runId}-${i + 1}`,
      item_name: `Chaos run ${o.runId} item ${i + 1}`,
      stock,
      // The scarce items run out, so they cross a quarter of their stock; the others keep none.
      low_stock_threshold: i % 2 === 0 ? Math.max(1, Math.round(stock / 4)) : 0,
    };
  });
}

/** What becomes of the holds: paid, cancelled while reserved, left to expire. */
const FATES: ReadonlyArray<[HoldFate, number]> = [
  ["pay", 0.55],
  ["cancel", 0.15],
  ["expire", 0.3],
];
/** When the paid ones are paid. */
const PAY_MOMENTS: ReadonlyArray<[PayMoment, number]> = [
  ["early", 0.5],
  ["near", 0.35],
  ["late", 0.15],
];

function pick<T>(table: ReadonlyArray<[T, number]>, u: number): T {
  let acc = 0;
  for (const [v, share] of table) {
    acc += share;
    if (u < acc) return v;
  }
  return table[table.length - 1]![0];
}

/**
 * When a hold's payment goes: `early`, 0.5–15 s after the runner learned of the hold; `near`, in
 * the last 3 s before the deadline (network and chaos latency push some past it: the answer is
 * judged by the moment the server recorded); `late`, 1–4 s after it.
 */
export function payOffsetMs(moment: PayMoment, u: number): number {
  if (moment === "early") return 500 + Math.floor(u * 14_500);
  if (moment === "near") return -3_000 + Math.floor(u * 2_900);
  return 1_000 + Math.floor(u * 3_000);
}

/** The item id unknown-item lines use; never created. */
export const missingItemId = (runId: string) => `chaos-${runId}-missing`;

/** The orders, in send order. Deterministic in (seed, orders, items, rates, runId). */
export function planOrders(o: PlanOptions, items: readonly ItemPlan[]): PlannedOrder[] {
  const next = mulberry32(mixSeed(o.seed, 0x0dde5));
  const maxLines = Math.max(1, Math.min(o.maxLines ?? 1, items.length));
  const oneItemRate = o.oneItemRate ?? 0.5;
  const cancelRate = o.cancelRate ?? 0;
  return Array.from({ length: o.orders }, (_, index) => {
    // A fixed number of draws per order, so changing one rate does not reshuffle the rest.
    const uLines = next();
    const uItems = Array.from({ length: maxLines }, () => next());
    const uQty = Array.from({ length: maxLines }, () => next());
    const uDup = next();
    const uUnknown = next();
    const uForm = next();
    const uCancel = next();
    const uMoment = next();
    const uDelay = next();
    const uReplay = next();
    const uSecond = next();
    const uHold = next();
    const uFate = next();
    const uPayMoment = next();
    const uPayOffset = next();
    const uPayReplay = next();
    const uPaySecond = next();
    const n = 1 + Math.floor(uLines * maxLines);
    // Distinct items, drawn without replacement (a partial Fisher–Yates shuffle).
    const pool = items.map((it) => it.item_id);
    const lines: OrderLine[] = [];
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(uItems[i]! * (pool.length - i));
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
      lines.push({ item_id: pool[i]!, quantity: 1 + Math.floor(uQty[i]! * MAX_QTY) });
    }
    // One line names an item that does not exist: the whole order must be refused, naming it.
    if (uUnknown < o.unknownRate) lines[lines.length - 1]!.item_id = missingItemId(o.runId);
    const key = `chaos-${o.runId}-${index + 1}`;
    let cancel: PlannedCancel | null = null;
    if (uCancel < cancelRate) {
      let acc = 0;
      let moment: CancelMoment = "after_heal";
      for (const [m, share] of MOMENTS) {
        acc += share;
        if (uMoment < acc) {
          moment = m;
          break;
        }
      }
      cancel = {
        moment,
        delay_ms: moment === "delayed" ? 500 + Math.floor(uDelay * 4500) : 0,
        key: `${key}-cancel`,
        replay: uReplay < 0.3,
        second_key: uSecond < 0.3 ? `${key}-cancel-2` : null,
        reason: uDelay < 0.5 ? `chaos run: ${moment} cancel` : null,
      };
    }
    let hold: PlannedHold | null = null;
    if (uHold < (o.holdRate ?? 0)) {
      const fate = pick(FATES, uFate);
      const payMoment = fate === "pay" ? pick(PAY_MOMENTS, uPayMoment) : null;
      hold = {
        hold_s: o.holdS ?? 60,
        fate,
        pay_moment: payMoment,
        offset_ms: payMoment ? payOffsetMs(payMoment, uPayOffset) : 0,
        pay_key: `${key}-pay`,
        replay: uPayReplay < 0.3,
        second_key: uPaySecond < 0.3 ? `${key}-pay-2` : null,
      };
      // A hold's cancel is its own: sent while reserved, 1–20 s after the hold is made; or, for a
      // quarter of those left to expire, 2–5 s after the deadline, when it must be refused (409).
      const late = fate === "expire" && uPayMoment < 0.25;
      cancel =
        fate === "cancel" || late
          ? {
              moment: late ? "after_expiry" : "reserved",
              delay_ms: late ? 2_000 + Math.floor(uPayOffset * 3_000) : 1_000 + Math.floor(uPayOffset * 19_000),
              key: `${key}-cancel`,
              replay: uReplay < 0.3,
              second_key: uSecond < 0.3 ? `${key}-cancel-2` : null,
              reason: uDelay < 0.5 ? `chaos run: hold cancelled ${late ? "after its deadline" : "while reserved"}` : null,
            }
          : null;
    }
    return {
      index,
      key,
      lines,
      form: n === 1 && uForm < oneItemRate ? "one_item" : "lines",
      duplicate: uDup < o.duplicateRate,
      cancel,
      hold,
    };
  });
}

/** Restocks spread evenly over the load, each to a seeded item: deterministic like the orders. */
export function planRestocks(o: Pick<PlanOptions, "orders" | "seed" | "restocks">, items: readonly ItemPlan[]): PlannedRestock[] {
  const next = mulberry32(mixSeed(o.seed, 0x5e570c));
  const n = o.restocks ?? 0;
  return Array.from({ length: n }, (_, k) => ({
    before_index: Math.floor(((k + 1) * o.orders) / (n + 1)),
    item_id: items[Math.floor(next() * items.length)]!.item_id,
    quantity: 10 + Math.floor(next() * 41),
  }));
}

export interface DriveOptions {
  concurrency: number;
  /**
   * Orders started per second (0: as fast as the concurrency allows). Pacing spreads the load over
   * the experiment, so the breaker opens, probes and closes many times instead of once.
   */
  rate: number;
  client: CarefulClientOptions;
  seed: number;
  /** Restocks to make along the way, and how (one request, never retried: a restock has no key). */
  restocks?: readonly PlannedRestock[];
  restock?: (itemId: string, quantity: number) => Promise<number>;
  /** Called as each logical order finishes, for the progress bar. */
  onOrder?: (record: OrderRecord) => void;
  /** Reads an order (for a hold made later by the retry worker); needed when the plan has holds. */
  readOrder?: HoldIo["readOrder"];
  /** The holds' payments and cancels, which outlive the load; the runner awaits them after healing. */
  holdWork?: Array<Promise<void>>;
}

export interface HoldIo {
  client: CarefulClientOptions;
  seed: number;
  readOrder: (orderId: string) => Promise<{ status: string; hold_expires_at?: string | null | undefined }>;
  /** Stop waiting for a queued hold to be made after this long (ms). */
  waitForHoldMs?: number;
  /** The wall clock (ms since the epoch): a hold's deadline is a wall-clock time. */
  now?: () => number;
}

const emptyHold = (h: PlannedHold): HoldRecord => ({
  ...h,
  expires_at: null,
  seen_status: null,
  pay_sent_ms: null,
  pay_sent_at: null,
  attempts: [],
  answers: [],
});

const emptyCancel = (c: PlannedCancel): CancelRecord => ({
  moment: c.moment,
  delay_ms: c.delay_ms,
  key: c.key,
  replay: c.replay,
  second_key: c.second_key,
  reason: c.reason,
  order_answer: null,
  sent_ms: null,
  attempts: [],
  answers: [],
});

/**
 * Sends a record's cancel: its first key on `lane`, then (once that is answered) the same key
 * again and a second key, as planned and not yet done. Skipped when the order never got an id.
 */
export async function runCancel(r: OrderRecord, client: CarefulClientOptions, seed: number, lane: CancelLane = "cancel"): Promise<void> {
  const c = r.cancel;
  if (!c) return;
  const orderId = r.answers.find((a) => a.order_id)?.order_id;
  if (!orderId) return;
  const random = mulberry32(mixSeed(seed, 2_000_000 + r.index * 4 + (lane === "cancel_reconcile" ? 1 : 0)));
  c.sent_ms ??= Math.round(client.elapsed());
  c.order_answer ??= r.answers[0]?.status ?? null;
  const reason = c.reason ?? undefined;
  const send = async (key: string, l: CancelLane, why: string | undefined) => {
    const res = await sendCancel(client, { order_id: orderId, key, ...(why ? { reason: why } : {}) }, l, random);
    c.attempts.push(...res.attempts);
    if (res.answer) c.answers.push(res.answer);
    return res.answer;
  };
  const firstAnswered = () => c.answers.some((a) => a.key === c.key && a.lane !== "cancel_replay");
  if (!firstAnswered() && !(await send(c.key, lane, reason))) return;
  if (c.replay && !c.answers.some((a) => a.lane === "cancel_replay")) await send(c.key, "cancel_replay", reason);
  if (c.second_key && !c.answers.some((a) => a.lane === "cancel_second")) await send(c.second_key, "cancel_second", undefined);
}

/**
 * Sends a hold's payment: its key, then (once answered) the same key again and a second key, as
 * planned and not yet done.
 */
export async function runPay(r: OrderRecord, client: CarefulClientOptions, seed: number, now: () => number = Date.now): Promise<void> {
  const h = r.hold;
  const orderId = r.answers.find((a) => a.order_id)?.order_id;
  if (!h || !orderId) return;
  const random = mulberry32(mixSeed(seed, 3_000_000 + r.index));
  const send = async (key: string, lane: PayLane) => {
    const res = await sendPay(client, { order_id: orderId, key }, lane, random);
    h.attempts.push(...res.attempts);
    if (res.answer) h.answers.push(res.answer);
    return res.answer;
  };
  if (h.pay_sent_ms === null) {
    h.pay_sent_ms = Math.round(client.elapsed());
    h.pay_sent_at = new Date(now()).toISOString();
  }
  if (!h.answers.some((a) => a.lane === "pay") && !(await send(h.pay_key, "pay"))) return;
  if (h.replay && !h.answers.some((a) => a.lane === "pay_replay")) await send(h.pay_key, "pay_replay");
  if (h.second_key && !h.answers.some((a) => a.lane === "pay_second")) await send(h.second_key, "pay_second");
}

/**
 * Plays a hold's plan once the order has an answer: learns its deadline (from the 201, or by
 * reading the order until the retry worker has made the hold), then pays at the planned moment,
 * or cancels while reserved, or leaves it to expire. Nothing to do for an order never reserved.
 */
export async function runHold(r: OrderRecord, io: HoldIo): Promise<void> {
  const h = r.hold;
  const orderId = r.answers.find((a) => a.order_id)?.order_id;
  if (!h || !orderId) return;
  const now = io.now ?? Date.now;
  const sleep = io.client.sleep ?? ((ms: number) => Bun.sleep(ms));
  const first = r.answers.find((a) => a.kind === "order");
  let status = first?.order_status ?? null;
  let expires = first?.hold_expires_at ?? null;
  const giveUp = now() + (io.waitForHoldMs ?? 600_000);
  // Reads 0.5, 1, 2, 2, … s apart: hundreds of holds can be queued at once while the breaker is open.
  for (let k = 0; (status === "pending" || status === "queued" || !expires) && status !== null && !["rejected", "failed", "cancelled", "cancelling", "confirmed", "expired"].includes(status); k++) {
    if (now() > giveUp || io.client.signal?.aborted) break;
    await sleep(Math.min(2_000, 500 * 2 ** k));
    try {
      const seen = await io.readOrder(orderId);
      status = seen.status;
      expires = seen.hold_expires_at ?? null;
    } catch {
      // a read lost to a hiccup: read again
    }
  }
  h.seen_status = status;
  if (status !== "reserved" || !expires) return;
  h.expires_at = expires;
  const known = now();
  const deadline = Date.parse(expires);
  const waitUntil = async (t: number) => {
    const ms = t - now();
    if (ms > 0) await sleep(ms);
  };
  if (h.fate === "pay") {
    await waitUntil(h.pay_moment === "early" ? Math.min(known + h.offset_ms, deadline - 1_000) : deadline + h.offset_ms);
    if (!io.client.signal?.aborted) await runPay(r, io.client, io.seed, now);
  } else if (h.fate === "cancel" && r.cancel) {
    // Well before the deadline, so the cancel meets a live hold.
    await waitUntil(Math.min(known + r.cancel.delay_ms, deadline - 5_000));
    if (!io.client.signal?.aborted) await runCancel(r, io.client, io.seed);
  } else if (h.fate === "expire" && r.cancel?.moment === "after_expiry") {
    // After the deadline and the sweep: the hold has expired, the cancel must be refused.
    await waitUntil(deadline + r.cancel.delay_ms);
    if (!io.client.signal?.aborted) await runCancel(r, io.client, io.seed);
  }
}

/** Sends one logical order (and its twin, if it has one) and keeps everything it saw. */
export async function runOrder(p: PlannedOrder, o: Pick<DriveOptions, "client" | "seed">): Promise<OrderRecord> {
  const random = mulberry32(mixSeed(o.seed, p.index + 1));
  const sent = o.client.elapsed();
  const req = { key: p.key, lines: p.lines, form: p.form, hold_s: p.hold?.hold_s ?? null };
  const lanes = [sendOrder(o.client, req, "main", random)];
  if (p.duplicate) lanes.push(sendOrder(o.client, req, "duplicate", mulberry32(mixSeed(o.seed, -(p.index + 1)))));
  const results = await Promise.all(lanes);
  const attempts = results.flatMap((r) => r.attempts).sort((a, b) => a.at_ms - b.at_ms);
  const answers = results.flatMap((r) => (r.answer ? [r.answer] : [])).sort((a, b) => a.at_ms - b.at_ms);
  return {
    ...unsent(p),
    attempts,
    answers,
    sent_ms: Math.round(sent),
    answered_ms: answers[0]?.at_ms ?? null,
  };
}

function unsent(p: PlannedOrder): OrderRecord {
  const cancel = p.cancel ? emptyCancel(p.cancel) : null;
  return {
    index: p.index,
    key: p.key,
    lines: p.lines.map((l) => ({ ...l })),
    form: p.form,
    duplicate: p.duplicate,
    attempts: [],
    answers: [],
    sent_ms: 0,
    answered_ms: null,
    reconciled: false,
    cancel,
    hold: p.hold ? emptyHold(p.hold) : null,
    final: null,
  };
}

/**
 * Drives the plan with at most `concurrency` logical orders in flight (a twin rides along with its
 * order). An immediate cancel is sent by the order's client as soon as the order is answered; a
 * delayed one waits outside the pool. Never stops on a failure: every order ends up in the
 * result, answered or not. Restocks made on the way land in `restocksDone`.
 */
export async function driveLoad(plan: readonly PlannedOrder[], o: DriveOptions, restocksDone: RestockRecord[] = []): Promise<OrderRecord[]> {
  const out: OrderRecord[] = new Array(plan.length);
  const sleep = o.client.sleep ?? ((ms: number) => Bun.sleep(ms));
  const start = o.client.elapsed();
  const later: Promise<void>[] = [];
  const restocks = [...(o.restocks ?? [])].sort((a, b) => a.before_index - b.before_index);
  let next = 0;
  const worker = async () => {
    while (next < plan.length && !o.client.signal?.aborted) {
      const i = next++;
      const p = plan[i]!;
      if (o.rate > 0) {
        // Each order has its slot; a pool that falls behind catches up without bursting past the cap.
        const wait = start + (i * 1000) / o.rate - o.client.elapsed();
        if (wait > 0) await sleep(wait);
      }
      while (o.restock && restocks.length && restocks[0]!.before_index <= i) {
        const r = restocks.shift()!;
        const at = Math.round(o.client.elapsed());
        const status = await o.restock(r.item_id, r.quantity).catch(() => 0);
        restocksDone.push({ item_id: r.item_id, quantity: r.quantity, at_ms: at, status });
      }
      const record = await runOrder(p, o);
      out[p.index] = record;
      if (record.hold && o.readOrder && record.answers.some((a) => a.order_id)) {
        o.holdWork?.push(runHold(record, { client: o.client, seed: o.seed, readOrder: o.readOrder }));
      } else if (record.cancel?.moment === "immediate") await runCancel(record, o.client, o.seed);
      else if (record.cancel?.moment === "delayed") {
        const c = record.cancel;
        later.push(sleep(c.delay_ms).then(() => (o.client.signal?.aborted ? undefined : runCancel(record, o.client, o.seed))));
      }
      o.onOrder?.(record);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, plan.length)) }, worker));
  await Promise.all(later);
  // Orders never started (aborted run) still appear, unanswered.
  for (const p of plan) out[p.index] ??= unsent(p);
  return out;
}
