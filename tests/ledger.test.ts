import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { BACKENDS, newKey, startSystem, type TestSystem } from "./support/system.ts";

/**
 * The stock ledger through the HTTP API, on both databases: an item's movements page by page,
 * adjustments and restocks under Idempotency-Key, and the drift alarm on a planted drift.
 */

type Movement = { id: number; type: string; quantity_change: number; order_id: string | null; reason: string | null; created_at: string };
type Page = { item_id: string; movements: Movement[]; next_before: number | null };

for (const backend of BACKENDS) {
  describe(`stock ledger on ${backend}`, () => {
    let sys: TestSystem;
    beforeAll(async () => {
      // Checks every second, so the alarm shows within a test's patience.
      sys = await startSystem(backend, { LEDGER_CHECK_INTERVAL_S: "1" });
    });
    afterAll(() => sys?.stop());

    async function createItem(quantity: number): Promise<string> {
      const itemId = `led-${randomUUID().slice(0, 8)}`;
      expect((await sys.post("/api/admin/inventory", { item_id: itemId, item_name: `Item ${itemId}`, quantity })).status).toBe(201);
      return itemId;
    }
    async function stockOf(itemId: string): Promise<number> {
      return ((await (await sys.get(`/api/inventory/${itemId}`)).json()) as { quantity: number }).quantity;
    }
    async function allMovements(itemId: string): Promise<Movement[]> {
      const res = await sys.get(`/api/inventory/${itemId}/movements?limit=200`);
      expect(res.status).toBe(200);
      return ((await res.json()) as Page).movements;
    }
    const adjust = (itemId: string, key: string | null, body: unknown) =>
      sys.post(`/api/admin/inventory/${itemId}/adjust`, body, key === null ? {} : { "idempotency-key": key });
    async function typeOf(res: Response): Promise<string> {
      expect(res.headers.get("content-type")).toStartWith("application/problem+json");
      return ((await res.json()) as { type: string }).type.replace("https://valerix.dev/problems/", "");
    }

    test("movements: newest first, paged by a cursor, summing to the stock; unknown item 404, bad query 400", async () => {
      const itemId = await createItem(10);
      expect((await sys.post(`/api/admin/inventory/${itemId}/restock`, { quantity: 5, reason: "Delivery 4711" })).status).toBe(200);
      expect((await adjust(itemId, newKey("adj"), { quantity_change: -2, reason: "Broken in transit" })).status).toBe(200);
      const orders: string[] = [];
      for (const quantity of [1, 3]) {
        const res = await sys.post("/api/orders", { item_id: itemId, quantity }, { "idempotency-key": newKey("ord") });
        expect(res.status).toBe(201);
        orders.push(((await res.json()) as { order_id: string }).order_id);
      }

      const seen: Movement[] = [];
      let before: number | null = null;
      let pages = 0;
      do {
        const res = await sys.get(`/api/inventory/${itemId}/movements?limit=2${before === null ? "" : `&before=${before}`}`);
        expect(res.status).toBe(200);
        const page = (await res.json()) as Page;
        expect(page.item_id).toBe(itemId);
        expect(page.movements.length).toBeLessThanOrEqual(2);
        seen.push(...page.movements);
        before = page.next_before;
        pages++;
      } while (before !== null && pages < 10);
      expect(pages).toBe(3);
      expect(seen.map((m) => [m.type, m.quantity_change, m.order_id, m.reason])).toEqual([
        ["deduct", -3, orders[1]!, null],
        ["deduct", -1, orders[0]!, null],
        ["adjust", -2, null, "Broken in transit"],
        ["restock", 5, null, "Delivery 4711"],
        ["create", 10, null, null],
      ]);
      const ids = seen.map((m) => m.id);
      expect([...ids].sort((a, b) => b - a)).toEqual(ids);
      expect(new Set(ids).size).toBe(5);
      expect(seen.reduce((n, m) => n + m.quantity_change, 0)).toBe(await stockOf(itemId));
      expect(await allMovements(itemId)).toEqual(seen);
      // The default page holds 50; a cursor at the oldest movement is an empty last page.
      expect(((await (await sys.get(`/api/inventory/${itemId}/movements`)).json()) as Page).next_before).toBeNull();
      expect(await (await sys.get(`/api/inventory/${itemId}/movements?before=${ids.at(-1)}`)).json()).toEqual({ item_id: itemId, movements: [], next_before: null });

      const unknown = await sys.get(`/api/inventory/none-${randomUUID().slice(0, 8)}/movements`);
      expect(unknown.status).toBe(404);
      expect(await typeOf(unknown)).toBe("not-found");
      for (const q of ["limit=0", "limit=201", "limit=2.5", "limit=x", "before=0", "before=x", "cursor=1"]) {
        const res = await sys.get(`/api/inventory/${itemId}/movements?${q}`);
        expect(`${q} → ${res.status}`).toBe(`${q} → 400`);
      }
    });

    test("adjust: applied with its movement; the same key and body replays; another body is 422", async () => {
      const itemId = await createItem(10);
      const key = newKey("adj");
      const body = { quantity_change: -4, reason: "Stock count 2026-01-05" };
      const first = await adjust(itemId, key, body);
      expect(first.status).toBe(200);
      expect(first.headers.get("idempotent-replayed")).toBeNull();
      const text = await first.text();
      const answer = JSON.parse(text) as { item_id: string; quantity: number; movement_id: number };
      expect(answer).toMatchObject({ item_id: itemId, quantity: 6 });
      expect((await allMovements(itemId))[0]).toMatchObject({ id: answer.movement_id, type: "adjust", quantity_change: -4, reason: body.reason, order_id: null });

      const again = await adjust(itemId, key, body);
      expect(again.status).toBe(200);
      expect(again.headers.get("idempotent-replayed")).toBe("true");
      expect(await again.text()).toBe(text);

      const other = await adjust(itemId, key, { ...body, quantity_change: -3 });
      expect(other.status).toBe(422);
      expect(await typeOf(other)).toBe("idempotency-key-reused");
      // The key is shared by inventory's admin writes: the same key on a restock is reused too.
      const restocked = await sys.post(`/api/admin/inventory/${itemId}/restock`, { quantity: 1 }, { "idempotency-key": key });
      expect(await typeOf(restocked)).toBe("idempotency-key-reused");
      expect(await stockOf(itemId)).toBe(6);
      expect((await allMovements(itemId)).length).toBe(2);
    });

    test("adjust: a change below zero is 409 and changes nothing, not even the key; over the limit 422; bad input 400", async () => {
      const itemId = await createItem(3);
      const key = newKey("adj");
      const below = await adjust(itemId, key, { quantity_change: -4, reason: "Lost" });
      expect(below.status).toBe(409);
      expect(await typeOf(below)).toBe("stock-below-zero");
      expect(await stockOf(itemId)).toBe(3);
      expect((await allMovements(itemId)).map((m) => m.type)).toEqual(["create"]);
      const keys = await sql<{ n: number }>`select count(*)::int as n from inventory.request_keys where key = ${key}`.execute(sys.server.database.db);
      expect(keys.rows[0]!.n).toBe(0);
      // The key was not spent: once the stock allows it, the same request applies.
      expect((await sys.post(`/api/admin/inventory/${itemId}/restock`, { quantity: 1 })).status).toBe(200);
      const later = await adjust(itemId, key, { quantity_change: -4, reason: "Lost" });
      expect(later.status).toBe(200);
      expect(later.headers.get("idempotent-replayed")).toBeNull();
      expect(await stockOf(itemId)).toBe(0);

      const over = await adjust(itemId, newKey("adj"), { quantity_change: 1_000_000, reason: "Typo" });
      expect(over.status).toBe(200);
      await sql`update inventory.inventory set quantity = 999999999 where item_id = ${itemId}`.execute(sys.server.database.db);
      try {
        const limit = await adjust(itemId, newKey("adj"), { quantity_change: 2, reason: "Count" });
        expect(limit.status).toBe(422);
        expect(await typeOf(limit)).toBe("stock-limit");
      } finally {
        await sql`update inventory.inventory set quantity = 1000000 where item_id = ${itemId}`.execute(sys.server.database.db);
      }

      expect(await typeOf(await adjust(`none-${randomUUID().slice(0, 8)}`, newKey("adj"), { quantity_change: 1, reason: "x" }))).toBe("not-found");
      expect(await typeOf(await adjust(itemId, null, { quantity_change: 1, reason: "x" }))).toBe("missing-idempotency-key");
      expect(await typeOf(await adjust(itemId, "bad\u00e9key", { quantity_change: 1, reason: "x" }))).toBe("invalid-idempotency-key");
      for (const body of [
        { quantity_change: 0, reason: "Nothing" },
        { quantity_change: 1.5, reason: "Half" },
        { quantity_change: 1_000_001, reason: "Too many" },
        { quantity_change: -1_000_001, reason: "Too many" },
        { quantity_change: "1", reason: "A string" },
        { quantity_change: 1 },
        { quantity_change: 1, reason: "" },
        { quantity_change: 1, reason: " padded" },
        { quantity_change: 1, reason: "bell\u0007" },
        { quantity_change: 1, reason: "r".repeat(201) },
        { quantity_change: 1, reason: "ok", extra: true },
      ]) {
        const res = await adjust(itemId, newKey("adj"), body);
        expect(`${JSON.stringify(body).slice(0, 60)} → ${res.status}`).toBe(`${JSON.stringify(body).slice(0, 60)} → 400`);
      }
      expect(await stockOf(itemId)).toBe(1_000_000);
      expect((await allMovements(itemId)).map((m) => m.type)).toEqual(["adjust", "adjust", "restock", "create"]);
    });

    test("adjust: the same key sent 10 times at once makes one adjustment", async () => {
      const itemId = await createItem(100);
      const key = newKey("adj");
      const answers = await Promise.all(Array.from({ length: 10 }, () => adjust(itemId, key, { quantity_change: -7, reason: "Shrinkage" })));
      expect(answers.map((r) => r.status)).toEqual(Array(10).fill(200));
      const bodies = await Promise.all(answers.map((r) => r.text()));
      expect(new Set(bodies).size).toBe(1);
      expect(answers.filter((r) => r.headers.get("idempotent-replayed") === "true").length).toBe(9);
      expect(await stockOf(itemId)).toBe(93);
      expect((await allMovements(itemId)).filter((m) => m.type === "adjust").length).toBe(1);
    });

    test("restock: without a key as the seed sends it; with a reason on its movement; with a key replayed", async () => {
      const itemId = await createItem(1);
      const plain = await sys.post(`/api/admin/inventory/${itemId}/restock`, { quantity: 2 });
      expect(plain.status).toBe(200);
      expect(await plain.json()).toMatchObject({ item_id: itemId, quantity: 3, movement_id: expect.any(Number) });
      // No key: two sends are two restocks, as before.
      expect((await sys.post(`/api/admin/inventory/${itemId}/restock`, { quantity: 2 })).status).toBe(200);
      const key = newKey("rst");
      const sends = await Promise.all(
        Array.from({ length: 5 }, () => sys.post(`/api/admin/inventory/${itemId}/restock`, { quantity: 10, reason: "Delivery 4712" }, { "idempotency-key": key })),
      );
      expect(sends.map((r) => r.status)).toEqual(Array(5).fill(200));
      expect(sends.filter((r) => r.headers.get("idempotent-replayed") === "true").length).toBe(4);
      expect(await stockOf(itemId)).toBe(15);
      const reused = await sys.post(`/api/admin/inventory/${itemId}/restock`, { quantity: 10, reason: "Delivery 4713" }, { "idempotency-key": key });
      expect(reused.status).toBe(422);
      const restocks = (await allMovements(itemId)).filter((m) => m.type === "restock");
      expect(restocks.map((m) => [m.quantity_change, m.reason])).toEqual([
        [10, "Delivery 4712"],
        [2, null],
        [2, null],
      ]);
      expect((await sys.post(`/api/admin/inventory/${itemId}/restock`, { quantity: 1, reason: "tab\there" })).status).toBe(400);
    });

    test("a quantity edited behind the ledger's back raises the alarm: gauge, /health/deep 503 naming the item; nothing is fixed", async () => {
      const itemId = await createItem(20);
      const healthy = await sys.get("/health/deep");
      expect(healthy.status).toBe(200);
      expect(((await healthy.json()) as { checks: Record<string, { ok: boolean }> }).checks.inventory_ledger?.ok).toBe(true);
      await sql`update inventory.inventory set quantity = quantity + 1 where item_id = ${itemId}`.execute(sys.server.database.db);
      try {
        let report: { status: string; checks: Record<string, { ok: boolean; detail?: string; items?: string[] }> } | undefined;
        let status = 0;
        for (const started = Date.now(); Date.now() - started < 15_000; await Bun.sleep(200)) {
          const res = await sys.get("/health/deep");
          status = res.status;
          report = (await res.json()) as typeof report;
          if (status === 503) break;
        }
        expect(status).toBe(503);
        const check = report!.checks.inventory_ledger!;
        expect(check.ok).toBe(false);
        expect(check.items).toEqual([itemId]);
        expect(check.detail).toContain(`${itemId} (quantity 21, ledger 20)`);
        expect(await (await sys.get("/metrics")).text()).toMatch(/^inventory_ledger_drift_items 1$/m);
        // An alarm, not a correction: the drifted count stands until a person deals with it.
        await Bun.sleep(1_500);
        expect(await stockOf(itemId)).toBe(21);
        expect((await allMovements(itemId)).length).toBe(1);
      } finally {
        await sql`update inventory.inventory set quantity = quantity - 1 where item_id = ${itemId}`.execute(sys.server.database.db);
      }
      let cleared = 0;
      for (const started = Date.now(); Date.now() - started < 15_000; await Bun.sleep(200)) {
        cleared = (await sys.get("/health/deep")).status;
        if (cleared === 200) break;
      }
      expect(cleared).toBe(200);
      expect(await (await sys.get("/metrics")).text()).toMatch(/^inventory_ledger_drift_items 0$/m);
    }, 40_000);
  });
}
