import { mixSeed, mulberry32 } from "../platform/prng.ts";
import { sendOrder, type CarefulClientOptions } from "./careful-client.ts";
import type { OrderRecord } from "./types.ts";

/**
 * The load: a plan of logical orders derived from the seed (same seed, same orders, items and
 * quantities), driven by a fixed pool of careful clients. Some items are stocked short on purpose,
 * so the run also proves that refusals under concurrency never oversell.
 */

export interface ItemPlan {
  item_id: string;
  item_name: string;
  stock: number;
}

export interface PlannedOrder {
  index: number;
  key: string;
  item_id: string;
  quantity: number;
  duplicate: boolean;
}

export interface PlanOptions {
  orders: number;
  items: number;
  seed: number;
  /** Unique per run, so keys and items never meet those of another run on a shared deployment. */
  runId: string;
  /** Share of orders sent twice at once. */
  duplicateRate: number;
  /** Share of orders for an item that does not exist (a 422 the chaos must not turn into anything else). */
  unknownRate: number;
}

const MAX_QTY = 3;

/**
 * Items for the run: every other one is stocked below its expected demand, so it sells out
 * part-way and later orders must be refused. `planItems({ orders: 2000, items: 8, runId: "a1" })`
 * → `[{ item_id: "chaos-a1-1", stock: 350 }, { item_id: "chaos-a1-2", stock: 1000 }, …]`.
 */
export function planItems(o: Pick<PlanOptions, "orders" | "items" | "runId">): ItemPlan[] {
  const expected = (o.orders * ((1 + MAX_QTY) / 2)) / Math.max(1, o.items);
  return Array.from({ length: o.items }, (_, i) => ({
    item_id: `chaos-${o.runId}-${i + 1}`,
    item_name: `Chaos run ${o.runId} item ${i + 1}`,
    stock: Math.max(1, Math.round(expected * (i % 2 === 0 ? 0.7 : 2))),
  }));
}

/** The item id unknown-item orders use; never created. */
export const missingItemId = (runId: string) => `chaos-${runId}-missing`;

/** The orders, in send order. Deterministic in (seed, orders, items, rates, runId). */
export function planOrders(o: PlanOptions, items: readonly ItemPlan[]): PlannedOrder[] {
  const next = mulberry32(mixSeed(o.seed, 0x0dde5));
  return Array.from({ length: o.orders }, (_, index) => {
    const uItem = next();
    const uQty = next();
    const uDup = next();
    const uUnknown = next();
    const item = uUnknown < o.unknownRate ? missingItemId(o.runId) : items[Math.floor(uItem * items.length)]!.item_id;
    return {
      index,
      key: `chaos-${o.runId}-${index + 1}`,
      item_id: item,
      quantity: 1 + Math.floor(uQty * MAX_QTY),
      duplicate: uDup < o.duplicateRate,
    };
  });
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
  /** Called as each logical order finishes, for the progress bar. */
  onOrder?: (record: OrderRecord) => void;
}

/** Sends one logical order (and its twin, if it has one) and keeps everything it saw. */
export async function runOrder(p: PlannedOrder, o: Pick<DriveOptions, "client" | "seed">): Promise<OrderRecord> {
  const random = mulberry32(mixSeed(o.seed, p.index + 1));
  const sent = o.client.elapsed();
  const req = { key: p.key, item_id: p.item_id, quantity: p.quantity };
  const lanes = [sendOrder(o.client, req, "main", random)];
  if (p.duplicate) lanes.push(sendOrder(o.client, req, "duplicate", mulberry32(mixSeed(o.seed, -(p.index + 1)))));
  const results = await Promise.all(lanes);
  const attempts = results.flatMap((r) => r.attempts).sort((a, b) => a.at_ms - b.at_ms);
  const answers = results.flatMap((r) => (r.answer ? [r.answer] : [])).sort((a, b) => a.at_ms - b.at_ms);
  return {
    index: p.index,
    key: p.key,
    item_id: p.item_id,
    quantity: p.quantity,
    duplicate: p.duplicate,
    attempts,
    answers,
    sent_ms: Math.round(sent),
    answered_ms: answers[0]?.at_ms ?? null,
    reconciled: false,
    final: null,
  };
}

/**
 * Drives the plan with at most `concurrency` logical orders in flight (a twin rides along with its
 * order). Never stops on a failure: every order ends up in the result, answered or not.
 */
export async function driveLoad(plan: readonly PlannedOrder[], o: DriveOptions): Promise<OrderRecord[]> {
  const out: OrderRecord[] = new Array(plan.length);
  const sleep = o.client.sleep ?? ((ms: number) => Bun.sleep(ms));
  const start = o.client.elapsed();
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
      const record = await runOrder(p, o);
      out[p.index] = record;
      o.onOrder?.(record);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, plan.length)) }, worker));
  // Orders never started (aborted run) still appear, unanswered.
  for (const p of plan) {
    out[p.index] ??= {
      index: p.index,
      key: p.key,
      item_id: p.item_id,
      quantity: p.quantity,
      duplicate: p.duplicate,
      attempts: [],
      answers: [],
      sent_ms: 0,
      answered_ms: null,
      reconciled: false,
      final: null,
    };
  }
  return out;
}
