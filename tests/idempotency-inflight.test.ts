import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Database } from "../platform/db.ts";
import { createMemoryStore } from "../platform/kv/memory.ts";
import { createInventoryModule, type InventoryPort } from "../modules/inventory/index.ts";
import { createOrdersModule } from "../modules/orders/index.ts";
import { createAdminGuard } from "../src/http/guards.ts";
import { ManualClock } from "./support/manual-clock.ts";
import { openTestDatabase } from "./support/system.ts";

/**
 * The in-flight cases need a request held mid-way. The real in-process inventory adapter is
 * wrapped so a test can hold its deduct call open (a gate, not a fake: the deduction still runs).
 */
function gated(port: InventoryPort) {
  let release!: () => void;
  let entered!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const inside = new Promise<void>((r) => (entered = r));
  const wrapped: InventoryPort = {
    ...port,
    async deduct(req, ctx) {
      entered();
      await gate;
      return port.deduct(req, ctx);
    },
  };
  return { wrapped, release: () => release(), inside };
}

describe("idempotency keys in flight", () => {
  let database: Database;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ database, close } = await openTestDatabase("pglite", []));
    const inv = createInventoryModule({ database, adminGuard: createAdminGuard({ adminToken: undefined, nodeEnv: "test" }) });
    await inv.migrate();
    await inv.seedDemoCatalog();
  });
  afterAll(() => close());

  function ordersWith(port: InventoryPort, clock = new ManualClock(Date.now())) {
    const mod = createOrdersModule({ database, inventory: port, kv: createMemoryStore({ clock }), idempotencyTtlS: 86_400, clock });
    return { mod, clock };
  }

  test("a second request with the key while the first is in flight gets 409; after it finishes, the replay", async () => {
    const inv = createInventoryModule({ database, adminGuard: () => undefined });
    const g = gated(inv.port);
    const { mod } = ordersWith(g.wrapped);
    await mod.migrate();
    const first = mod.service.create("inflight-1", { item_id: "ps5", quantity: 1 }, null);
    await g.inside;
    await expect(mod.service.create("inflight-1", { item_id: "ps5", quantity: 1 }, null)).rejects.toMatchObject({ code: "idempotency_key_in_use" });
    // A different body under the same key is refused as reuse, even in flight.
    await expect(mod.service.create("inflight-1", { item_id: "ps5", quantity: 2 }, null)).rejects.toMatchObject({ code: "idempotency_key_reused" });
    g.release();
    const done = await first;
    expect(done.status).toBe(201);
    const replay = await mod.service.create("inflight-1", { item_id: "ps5", quantity: 1 }, null);
    expect(replay).toMatchObject({ status: 201, replayed: true, body: done.body });
  });

  test("a key left in flight by a request that died is answered from the order after the lease", async () => {
    const inv = createInventoryModule({ database, adminGuard: () => undefined });
    const g = gated(inv.port);
    const { mod, clock } = ordersWith(g.wrapped);
    void mod.service.create("died-1", { item_id: "ps5", quantity: 1 }, null).catch(() => {});
    await g.inside;
    // The holder never comes back (as if the process died). Past the 30 s lease the order speaks.
    await clock.advance(31_000);
    const res = await mod.service.create("died-1", { item_id: "ps5", quantity: 1 }, null);
    expect(res.status).toBe(202);
    expect(JSON.parse(res.body)).toMatchObject({ status: "pending", item_id: "ps5" });
  });

  test("an expired key can be used for a new order", async () => {
    const inv = createInventoryModule({ database, adminGuard: () => undefined });
    const clock = new ManualClock(Date.now());
    const mod = createOrdersModule({ database, inventory: inv.port, kv: createMemoryStore({ clock }), idempotencyTtlS: 60, clock });
    const a = await mod.service.create("expiring-1", { item_id: "ps5", quantity: 1 }, null);
    await clock.advance(61_000);
    const b = await mod.service.create("expiring-1", { item_id: "ps5", quantity: 1 }, null);
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.replayed).toBe(false);
    expect(b.orderId).not.toBe(a.orderId);
  });
});
