import { expect } from "bun:test";
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { Database } from "../../platform/db.ts";
import { createMemoryStore } from "../../platform/kv/index.ts";
import { createPostgresQueue, type RetryQueue } from "../../platform/queue/index.ts";
import { createInventoryModule } from "../../modules/inventory/index.ts";
import { createOrdersModule, type Orders, type RetryWorker } from "../../modules/orders/index.ts";
import { FaultyInventory, SwitchPolicy } from "./faulty-inventory.ts";
import { ManualClock } from "./manual-clock.ts";

/**
 * The orders module over the real inventory module on one database, for its tests: one manual
 * clock for both, the PostgreSQL retry queue, faults at the inventory port's edge, a breaker the
 * test opens and closes. Made fresh for each test; close its queue after.
 */
export interface OrderHarness {
  clock: ManualClock;
  queue: RetryQueue;
  inventory: FaultyInventory;
  policy: SwitchPolicy;
  service: Orders;
  /** A retry worker on this harness: 5 attempts, 100 ms to 1 s backoff, no jitter. */
  worker(): RetryWorker;
  /** Hands every due delivery to `w`, moving time past each backoff; the results in order. */
  drain(w: RetryWorker): Promise<string[]>;
  /** New items with these opening stocks (each with its `create` movement); their ids. */
  items(...quantities: number[]): Promise<string[]>;
  /** Each item's available quantity, after checking it against the ledger. */
  available(...ids: string[]): Promise<number[]>;
  /** An item's [available, reserved], both checked against the ledger. */
  holdings(id: string): Promise<[number, number]>;
}

export function orderHarness(database: Database): OrderHarness {
  const clock = new ManualClock(Date.now());
  const queue = createPostgresQueue(database, { clock, visibilityTimeoutMs: 30_000, pollMs: 1 });
  const inventory = new FaultyInventory(createInventoryModule({ database, adminGuard: () => undefined, clock }).port);
  const policy = new SwitchPolicy();
  const orders = createOrdersModule({
    database,
    inventory,
    kv: createMemoryStore({ clock }),
    policy,
    clock,
    idempotencyTtlS: 3_600,
    enqueue: (orderId, requestId) => queue.enqueue({ orderId, attempt: 0, requestId: requestId ?? undefined }),
  });
  const service = orders.service;
  const holdings = async (ids: string[]) => {
    const r = await sql<{ item_id: string; quantity: number; reserved_quantity: number; q: number; rq: number }>`
      select i.item_id, i.quantity, i.reserved_quantity, coalesce(sum(m.quantity_change), 0)::int as q, coalesce(sum(m.reserved_change), 0)::int as rq
      from inventory.inventory i left join inventory.movements m using (item_id)
      where i.item_id = any(${ids}::text[]) group by i.item_id, i.quantity, i.reserved_quantity`.execute(database.db);
    const byId = new Map(r.rows.map((x) => [x.item_id, x]));
    return ids.map((id): [number, number] => {
      const x = byId.get(id)!;
      // The ledger always agrees with the stock.
      expect([x.q, x.rq]).toEqual([x.quantity, x.reserved_quantity]);
      return [x.quantity, x.reserved_quantity];
    });
  };
  return {
    clock,
    queue,
    inventory,
    policy,
    service,
    worker: () => orders.createRetryWorker({ queue, clock, random: () => 0.5, maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1_000 }),
    async drain(w) {
      const results: string[] = [];
      for (let i = 0; i < 20; i++) {
        await clock.advance(1_000);
        const [d] = await queue.receive(1, 0);
        if (!d) break;
        results.push(await w.handle(d));
      }
      return results;
    },
    async items(...quantities) {
      const ids = quantities.map(() => `h-${randomUUID().slice(0, 8)}`);
      for (const [i, id] of ids.entries()) {
        await sql`insert into inventory.inventory (item_id, item_name, quantity) values (${id}, ${id}, ${quantities[i]!})`.execute(database.db);
        await sql`insert into inventory.movements (item_id, type, quantity_change) values (${id}, 'create', ${quantities[i]!})`.execute(database.db);
      }
      return ids;
    },
    available: async (...ids) => (await holdings(ids)).map((x) => x[0]),
    holdings: async (id) => (await holdings([id]))[0]!,
  };
}
