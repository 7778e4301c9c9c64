import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sql } from "kysely";
import { createHttpInventory, createInventoryModule, InventoryUnavailableError, type InventoryPort } from "../modules/inventory/index.ts";
import { inventoryPortContract } from "./inventory-port.contract.ts";
import { BACKENDS, startSystem, type TestSystem } from "./support/system.ts";

// Every adapter on every database: the embedded PGlite and the real PostgreSQL.
for (const backend of BACKENDS) {
  let inventoryRole: TestSystem;
  let inProcess: InventoryPort;

  beforeAll(async () => {
    inventoryRole = await startSystem(backend, { VALERIX_ROLE: "inventory" });
    inProcess = createInventoryModule({ database: inventoryRole.server.database, adminGuard: () => undefined }).port;
  });
  afterAll(async () => {
    await inventoryRole?.stop();
  });

  const setThreshold = async (itemId: string, threshold: number) => {
    await sql`update inventory.inventory set low_stock_threshold = ${threshold} where item_id = ${itemId}`.execute(inventoryRole.server.database.db);
  };
  inventoryPortContract(`in-process on ${backend}`, () => ({ port: inProcess, itemId: "ps5", otherItemId: "xbox-series-x", setThreshold }));
  inventoryPortContract(`http-client on ${backend}`, () => ({ port: createHttpInventory(inventoryRole.url), itemId: "dualsense", otherItemId: "switch-2", setThreshold }));
}

describe("http-client failures leave the outcome unknown", () => {
  test("a refused connection is InventoryUnavailableError(transport)", async () => {
    const port = createHttpInventory("http://127.0.0.1:1");
    const err = await port.deduct({ order_id: crypto.randomUUID(), lines: [{ item_id: "ps5", quantity: 1 }] }).catch((e) => e);
    expect(err).toBeInstanceOf(InventoryUnavailableError);
    expect(err.kind).toBe("transport");
  });

  test("a 5xx is InventoryUnavailableError(server_error); an abort is a timeout", async () => {
    const server = Bun.serve({ port: 0, fetch: () => new Response("boom", { status: 503 }) });
    try {
      const port = createHttpInventory(`http://127.0.0.1:${server.port}`);
      const err = await port.deduct({ order_id: crypto.randomUUID(), lines: [{ item_id: "ps5", quantity: 1 }] }).catch((e) => e);
      expect(err.kind).toBe("server_error");
    } finally {
      server.stop(true);
    }
    const slow = Bun.serve({ port: 0, fetch: async () => { await Bun.sleep(2000); return new Response("{}"); } });
    try {
      const port = createHttpInventory(`http://127.0.0.1:${slow.port}`);
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 50);
      const err = await port.deduct({ order_id: crypto.randomUUID(), lines: [{ item_id: "ps5", quantity: 1 }] }, { signal: ac.signal }).catch((e) => e);
      expect(err.kind).toBe("timeout");
    } finally {
      slow.stop(true);
    }
  });
});
