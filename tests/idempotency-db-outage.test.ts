import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Database } from "../platform/db.ts";
import { DatabaseUnavailableError } from "../platform/db-errors.ts";
import { createMemoryStore } from "../platform/kv/memory.ts";
import { createInventoryModule } from "../modules/inventory/index.ts";
import { createOrdersModule } from "../modules/orders/index.ts";
import { ManualClock } from "./support/manual-clock.ts";
import { openTestDatabase } from "./support/system.ts";

/**
 * The database goes away while an order request holds its key. The request answers 503 (the
 * error); its retry, once the database is back, is answered from the order at once rather than
 * 409 for a whole lease, and never makes a second order. The outage is a switch on the real
 * (embedded) database: statements whose text matches fail with the error the pools raise.
 */
function switchable(database: Database) {
  let failing: RegExp | null = null;
  let holding: { names: RegExp; gate: Promise<void>; entered: () => void } | null = null;
  const wrapped: Database = {
    ...database,
    async query(name, text, params) {
      if (failing?.test(name)) throw new DatabaseUnavailableError("The database is unavailable", "57P01");
      if (holding?.names.test(name)) {
        holding.entered();
        await holding.gate;
      }
      return database.query(name, text, params);
    },
  };
  return {
    wrapped,
    fail: (names: RegExp | null) => (failing = names),
    /** Holds matching statements until `release` is called; `entered` resolves when one arrives. */
    hold(names: RegExp): { release: () => void; entered: Promise<void> } {
      let release!: () => void;
      let entered!: () => void;
      const arrived = new Promise<void>((r) => (entered = r));
      holding = { names, gate: new Promise<void>((r) => (release = r)), entered };
      return {
        entered: arrived,
        release: () => {
          holding = null;
          release();
        },
      };
    },
  };
}

describe("an order request caught by a database outage", () => {
  let database: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ database, close } = await openTestDatabase("pglite", []));
    const inv = createInventoryModule({ database, adminGuard: () => undefined });
    await inv.migrate();
    await inv.seedDemoCatalog();
  });
  afterAll(() => close());

  function orders(db: Database, clock: ManualClock) {
    const inv = createInventoryModule({ database, adminGuard: () => undefined });
    const enqueued: string[] = [];
    const mod = createOrdersModule({
      database: db,
      inventory: inv.port,
      kv: createMemoryStore({ clock }),
      idempotencyTtlS: 86_400,
      inFlightLeaseMs: 5_000,
      clock,
      enqueue: async (orderId) => void enqueued.push(orderId),
      groupCommit: { maxBatch: 1, maxInFlight: 1 },
    });
    return { mod, enqueued };
  }

  async function ordersForKey(key: string): Promise<number> {
    const rows = await database.query<{ n: number }>("t_count", "select count(*)::int as n from orders.idempotency_keys k join orders.orders o using (order_id) where k.key = $1", [key]);
    return rows[0]!.n;
  }

  test("dying between claim and transition: 503 now; the retry is answered from the order at once and the order is handed to the worker", async () => {
    const clock = new ManualClock(Date.now());
    const db = switchable(database);
    const { mod, enqueued } = orders(db.wrapped, clock);
    await mod.migrate();
    db.fail(/^ord_transition/);
    await expect(mod.service.create("outage-1", { item_id: "ps5", quantity: 1 }, null)).rejects.toBeInstanceOf(DatabaseUnavailableError);
    db.fail(null);
    // No time passes: the lease would still stand, but this process knows no request holds the key.
    const retry = await mod.service.create("outage-1", { item_id: "ps5", quantity: 1 }, null);
    expect(retry.status).toBe(202);
    expect(retry.replayed).toBe(true);
    const body = JSON.parse(retry.body) as { status: string; order_id: string };
    expect(body.status).toBe("pending");
    expect(enqueued).toEqual([body.order_id]);
    expect(await ordersForKey("outage-1")).toBe(1);
  });

  test("another replica (no memory of the failure) answers 409 within the lease, then from the order", async () => {
    const clock = new ManualClock(Date.now());
    const db = switchable(database);
    const first = orders(db.wrapped, clock);
    await first.mod.migrate();
    db.fail(/^ord_transition/);
    await expect(first.mod.service.create("outage-2", { item_id: "ps5", quantity: 1 }, null)).rejects.toBeInstanceOf(DatabaseUnavailableError);
    db.fail(null);
    const other = orders(database, clock);
    await expect(other.mod.service.create("outage-2", { item_id: "ps5", quantity: 1 }, null)).rejects.toMatchObject({ code: "idempotency_key_in_use" });
    await clock.advance(5_001);
    const retry = await other.mod.service.create("outage-2", { item_id: "ps5", quantity: 1 }, null);
    expect(retry.status).toBe(202);
    expect(JSON.parse(retry.body)).toMatchObject({ status: "pending" });
    expect(await ordersForKey("outage-2")).toBe(1);
  });

  test("a claim that never reached the database leaves the key free: the retry places the order", async () => {
    const clock = new ManualClock(Date.now());
    const db = switchable(database);
    const { mod } = orders(db.wrapped, clock);
    await mod.migrate();
    db.fail(/^ord_claim/);
    await expect(mod.service.create("outage-3", { item_id: "ps5", quantity: 1 }, null)).rejects.toBeInstanceOf(DatabaseUnavailableError);
    db.fail(null);
    const retry = await mod.service.create("outage-3", { item_id: "ps5", quantity: 1 }, null);
    expect(retry.status).toBe(201);
    expect(retry.replayed).toBe(false);
    expect(await ordersForKey("outage-3")).toBe(1);
  });

  test("a group-committed claim that committed but lost its answer: the request answers from its own order, not 409", async () => {
    const clock = new ManualClock(Date.now());
    let lose = true;
    const lossy: Database = {
      ...database,
      async query<R>(name: string, text: string, params: unknown[]) {
        const rows = await database.query<R>(name, text, params);
        // The batch commits; its connection dies before the answer arrives.
        if (name === "ord_claim_batch" && lose) {
          lose = false;
          throw new DatabaseUnavailableError("The database is unavailable", "connection_lost");
        }
        return rows;
      },
    };
    const inv = createInventoryModule({ database, adminGuard: () => undefined });
    const enqueued: string[] = [];
    const mod = createOrdersModule({
      database: lossy,
      inventory: inv.port,
      kv: createMemoryStore({ clock }),
      idempotencyTtlS: 86_400,
      inFlightLeaseMs: 5_000,
      clock,
      enqueue: async (orderId) => void enqueued.push(orderId),
      groupCommit: { maxBatch: 64, maxInFlight: 1, gatherTurn: true },
    });
    await mod.migrate();
    const [a, b] = await Promise.all([
      mod.service.create("lost-a", { item_id: "ps5", quantity: 1 }, null),
      mod.service.create("lost-b", { item_id: "ps5", quantity: 1 }, null),
    ]);
    for (const res of [a, b]) {
      expect(res.status).toBe(202);
      expect(res.replayed).toBe(false);
      expect(JSON.parse(res.body)).toMatchObject({ status: "pending" });
    }
    expect(enqueued.sort()).toEqual([a.orderId, b.orderId].sort() as string[]);
    expect(await ordersForKey("lost-a")).toBe(1);
    expect(await ordersForKey("lost-b")).toBe(1);
  });

  test("a later claim of an abandoned key, by a live request, still gets its 409", async () => {
    const clock = new ManualClock(Date.now());
    const db = switchable(database);
    const { mod } = orders(db.wrapped, clock);
    await mod.migrate();
    db.fail(/^ord_claim/);
    await expect(mod.service.create("outage-4", { item_id: "ps5", quantity: 1 }, null)).rejects.toBeInstanceOf(DatabaseUnavailableError);
    db.fail(null);
    // The retry claims the key with an order of its own and is held before its transition.
    const held = db.hold(/^ord_transition/);
    const retry = mod.service.create("outage-4", { item_id: "ps5", quantity: 1 }, null);
    await held.entered;
    await expect(mod.service.create("outage-4", { item_id: "ps5", quantity: 1 }, null)).rejects.toMatchObject({ code: "idempotency_key_in_use" });
    held.release();
    expect((await retry).status).toBe(201);
    expect(await ordersForKey("outage-4")).toBe(1);
  });
});
