import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import type { Database } from "../../../platform/db.ts";
import { IdempotencyKeyReusedError } from "../../../platform/idempotency-key.ts";
import { BACKENDS, openTestDatabase } from "../../../tests/support/system.ts";
import { createItem } from "./inventory.repository.ts";
import { LedgerService, StockBelowZeroError } from "./ledger.service.ts";
import { purgeExpiredKeys } from "./request-keys.repository.ts";
import type { StockMovement } from "./inventory.service.ts";

/** Keys of inventory's admin writes: their lifetime, and what listeners hear. */
for (const backend of BACKENDS) {
  describe(`ledger writes on ${backend}`, () => {
    let database: Database;
    let close: () => Promise<void>;
    beforeAll(async () => {
      ({ database, close } = await openTestDatabase(backend, ["inventory"]));
    });
    afterAll(() => close());

    async function item(quantity: number) {
      const id = `item-${randomUUID().slice(0, 8)}`;
      await createItem(database, id, id, quantity);
      return id;
    }
    const keyRows = async (key: string) =>
      (await sql<{ n: number }>`select count(*)::int as n from inventory.request_keys where key = ${key}`.execute(database.db)).rows[0]!.n;

    test("a key is remembered for its lifetime; an expired key is taken over as new, and purged", async () => {
      const a = await item(10);
      const ledger = new LedgerService(database, () => {}, { keyTtlMs: 60_000 });
      const key = `k-${randomUUID()}`;
      // Time passes in the database: the key's expiry is moved, rather than waited for.
      const expire = () => sql`update inventory.request_keys set expires_at = now() - interval '1 second' where key = ${key}`.execute(database.db);
      expect((await ledger.adjust(a, key, { quantity_change: -1, reason: "first" })).replayed).toBe(false);
      await expect(ledger.adjust(a, key, { quantity_change: -2, reason: "other" })).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
      await expire();
      const again = await ledger.adjust(a, key, { quantity_change: -2, reason: "other" });
      expect(again.replayed).toBe(false);
      expect(JSON.parse(again.body).quantity).toBe(7);
      expect(await keyRows(key)).toBe(1);
      expect((await ledger.adjust(a, key, { quantity_change: -2, reason: "other" })).replayed).toBe(true);
      await expire();
      expect(await purgeExpiredKeys(database)).toBeGreaterThanOrEqual(1);
      expect(await keyRows(key)).toBe(0);
    });

    test("listeners hear applied changes once, never a replay or a refusal", async () => {
      const a = await item(5);
      const heard: StockMovement[] = [];
      const ledger = new LedgerService(database, (m) => heard.push(m));
      const key = `k-${randomUUID()}`;
      await ledger.adjust(a, key, { quantity_change: 3, reason: "found" });
      await ledger.adjust(a, key, { quantity_change: 3, reason: "found" });
      await expect(ledger.adjust(a, `k-${randomUUID()}`, { quantity_change: -9, reason: "lost" })).rejects.toBeInstanceOf(StockBelowZeroError);
      await ledger.restock(a, null, { quantity: 2 });
      expect(heard).toEqual([
        { type: "adjust", item_id: a, quantity: 3, remaining: 8 },
        { type: "restock", item_id: a, quantity: 2, remaining: 10 },
      ]);
    });
  });
}
