import { describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import type { InventoryPort, StockEvent } from "../modules/inventory/index.ts";

/**
 * The contract every InventoryPort adapter keeps (in-process and HTTP), run against each the
 * way Kysely runs one suite per dialect. `restockable` names an item with ≥ 1000 units.
 */
export function inventoryPortContract(
  name: string,
  make: () => {
    port: InventoryPort;
    itemId: string;
    otherItemId: string;
    /** Sets an item's low-stock threshold by the admin's means (the port has no write for it). */
    setThreshold: (itemId: string, threshold: number) => Promise<void>;
  },
) {
  const one = (orderId: string, itemId: string, quantity: number) => ({ order_id: orderId, lines: [{ item_id: itemId, quantity }] });
  describe(`InventoryPort contract: ${name}`, () => {
    test("get and list return items; an unknown id is null", async () => {
      const { port, itemId } = make();
      const item = await port.get(itemId);
      expect(item).toMatchObject({ item_id: itemId });
      expect(typeof item!.quantity).toBe("number");
      expect(typeof item!.low_stock_threshold).toBe("number");
      const all = await port.list();
      expect(all.map((i) => i.item_id)).toContain(itemId);
      expect(await port.get("no-such-item-x")).toBeNull();
    });

    test("deduct applies once per order id; repeats return the first outcome", async () => {
      const { port, itemId } = make();
      const before = (await port.get(itemId))!.quantity;
      const orderId = randomUUID();
      const first = await port.deduct(one(orderId, itemId, 2));
      expect(first).toMatchObject({ outcome: "applied", order_id: orderId, replayed: false, lines: [{ item_id: itemId, quantity: 2, remaining: before - 2 }] });
      const again = await port.deduct(one(orderId, itemId, 2));
      expect(again).toMatchObject({ outcome: "applied", replayed: true });
      expect((await port.get(itemId))!.quantity).toBe(before - 2);
    });

    test("refusals are answers: unknown item, insufficient stock", async () => {
      const { port, itemId } = make();
      const unknown = await port.deduct(one(randomUUID(), "no-such-item-x", 1));
      expect(unknown).toMatchObject({ outcome: "rejected", reason: "unknown_item" });
      const big = await port.deduct(one(randomUUID(), itemId, 10_000));
      expect(big.outcome === "rejected" && big.reason).toBe("insufficient_stock");
    });

    test("release after an applied deduct: stock restored once, every later deduct refused as released", async () => {
      const { port, itemId } = make();
      const before = (await port.get(itemId))!.quantity;
      const orderId = randomUUID();
      await port.deduct(one(orderId, itemId, 3));
      expect(await port.release(orderId)).toMatchObject({ order_id: orderId, restored: true, quantity: 3 });
      expect(await port.release(orderId)).toMatchObject({ restored: true, quantity: 3 });
      expect((await port.get(itemId))!.quantity).toBe(before);
      // Release is final: a replayed deduct must not report the earlier "applied", or the caller
      // would confirm an order whose stock was given back.
      const late = await port.deduct(one(orderId, itemId, 3));
      expect(late).toMatchObject({ outcome: "rejected", reason: "released", replayed: true });
      const lateOther = await port.deduct(one(orderId, itemId, 1));
      expect(lateOther).toMatchObject({ outcome: "rejected", reason: "released" });
      expect((await port.get(itemId))!.quantity).toBe(before);
    });

    test("release before any deduct: nothing restored, every later deduct refused as released", async () => {
      const { port, itemId } = make();
      const before = (await port.get(itemId))!.quantity;
      const blocked = randomUUID();
      expect(await port.release(blocked)).toMatchObject({ restored: false, quantity: 0 });
      expect(await port.release(blocked)).toMatchObject({ restored: false, quantity: 0 });
      const late = await port.deduct(one(blocked, itemId, 1));
      expect(late).toMatchObject({ outcome: "rejected", reason: "released" });
      const again = await port.deduct(one(blocked, itemId, 1));
      expect(again).toMatchObject({ outcome: "rejected", reason: "released" });
      expect((await port.get(itemId))!.quantity).toBe(before);
    });

    test("release after a refused deduct: nothing restored, the order stays closed", async () => {
      const { port, itemId } = make();
      const before = (await port.get(itemId))!.quantity;
      const orderId = randomUUID();
      const big = await port.deduct(one(orderId, itemId, 10_000));
      expect(big).toMatchObject({ outcome: "rejected", reason: "insufficient_stock" });
      expect(await port.release(orderId)).toMatchObject({ restored: false, quantity: 0 });
      const late = await port.deduct(one(orderId, itemId, 1));
      expect(late).toMatchObject({ outcome: "rejected", reason: "released" });
      expect((await port.get(itemId))!.quantity).toBe(before);
    });

    test("deducts and releases of one order racing: stock moves at most once and ends restored", async () => {
      const { port, itemId } = make();
      const before = (await port.get(itemId))!.quantity;
      for (let round = 0; round < 5; round++) {
        const orderId = randomUUID();
        const calls = Array.from({ length: 8 }, (_, i) =>
          i % 2 === 0 ? port.deduct(one(orderId, itemId, 2)) : port.release(orderId),
        );
        await Promise.all(calls);
        // Whatever the interleaving, once a release has finished the account is closed for good.
        await port.release(orderId);
        expect(await port.deduct(one(orderId, itemId, 2))).toMatchObject({ outcome: "rejected", reason: "released" });
        expect((await port.get(itemId))!.quantity).toBe(before);
      }
    });

    test("a two-line order: both lines or neither; the replay carries the lines; release restores both", async () => {
      const { port, itemId, otherItemId } = make();
      const [a0, b0] = [(await port.get(itemId))!.quantity, (await port.get(otherItemId))!.quantity];
      const refused = randomUUID();
      const short = await port.deduct({ order_id: refused, lines: [{ item_id: itemId, quantity: 1 }, { item_id: otherItemId, quantity: 10_000 }] });
      expect(short).toMatchObject({ outcome: "rejected", reason: "insufficient_stock", rejected_lines: [{ item_id: otherItemId, reason: "insufficient_stock" }] });
      expect([(await port.get(itemId))!.quantity, (await port.get(otherItemId))!.quantity]).toEqual([a0, b0]);
      const orderId = randomUUID();
      const lines = [{ item_id: otherItemId, quantity: 2 }, { item_id: itemId, quantity: 1 }];
      expect(await port.deduct({ order_id: orderId, lines })).toMatchObject({
        outcome: "applied",
        lines: [{ item_id: otherItemId, quantity: 2, remaining: b0 - 2 }, { item_id: itemId, quantity: 1, remaining: a0 - 1 }],
      });
      expect(await port.deduct({ order_id: orderId, lines })).toMatchObject({ outcome: "applied", replayed: true, lines: lines.map((l) => ({ ...l, remaining: null })) });
      expect(await port.release(orderId)).toMatchObject({ restored: true, quantity: 3 });
      expect([(await port.get(itemId))!.quantity, (await port.get(otherItemId))!.quantity]).toEqual([a0, b0]);
    });

    test("a hold reserves its lines; paid in time it is sold; expiry before the deadline leaves it held; a cancel gives it back", async () => {
      const { port, itemId } = make();
      const before = (await port.get(itemId))!;
      const paid = randomUUID();
      const held = await port.deduct({ order_id: paid, lines: [{ item_id: itemId, quantity: 2 }], hold_s: 600 });
      expect(held).toMatchObject({ outcome: "applied" });
      const deadline = held.outcome === "applied" ? held.hold_expires_at! : "";
      expect(new Date(deadline).getTime()).toBeGreaterThan(Date.now() + 590_000);
      expect(await port.get(itemId)).toMatchObject({ quantity: before.quantity - 2, reserved_quantity: before.reserved_quantity + 2 });
      expect(await port.expire(paid)).toMatchObject({ order_id: paid, outcome: "held", hold_expires_at: deadline });
      expect(await port.pay(paid, new Date().toISOString())).toMatchObject({ outcome: "paid" });
      expect(await port.pay(paid, new Date().toISOString())).toMatchObject({ outcome: "paid" });
      expect(await port.get(itemId)).toMatchObject({ quantity: before.quantity - 2, reserved_quantity: before.reserved_quantity });
      const cancelled = randomUUID();
      await port.deduct({ order_id: cancelled, lines: [{ item_id: itemId, quantity: 1 }], hold_s: 600 });
      expect(await port.release(cancelled)).toMatchObject({ restored: true, quantity: 1 });
      expect(await port.pay(cancelled, new Date().toISOString())).toMatchObject({ outcome: "released" });
      expect(await port.release(paid)).toMatchObject({ restored: true, quantity: 2 });
      expect(await port.get(itemId)).toMatchObject({ quantity: before.quantity, reserved_quantity: before.reserved_quantity });
      expect(await port.expire(randomUUID())).toMatchObject({ outcome: "not_held" });
    });

    test("an item's ledger: newest first, paged by cursor; an unknown item is null", async () => {
      const { port, itemId } = make();
      const orderId = randomUUID();
      await port.deduct(one(orderId, itemId, 1));
      const first = (await port.movements(itemId, { limit: 1 }))!;
      expect(first.movements).toEqual([expect.objectContaining({ type: "deduct", quantity_change: -1, reserved_change: 0, order_id: orderId })]);
      expect(first.next_before).toBe(first.movements[0]!.id);
      const older = (await port.movements(itemId, { limit: 200, before: first.next_before! }))!;
      expect(older.movements.every((m) => m.id < first.next_before!)).toBe(true);
      expect(older.movements.at(-1)).toMatchObject({ type: "create" });
      expect(await port.movements("no-such-item-x")).toBeNull();
    });

    test("an item on two lines is refused before anything happens", async () => {
      const { port, itemId } = make();
      const err = await port.deduct({ order_id: randomUUID(), lines: [{ item_id: itemId, quantity: 1 }, { item_id: itemId, quantity: 1 }] }).catch((e) => e);
      expect(err).toBeInstanceOf(Error);
    });

    test("stock events: crossing a threshold is one stock.low, read once after a cursor; an empty page keeps the cursor", async () => {
      const { port, itemId, setThreshold } = make();
      /** Reads every page after `after`; the events and where reading ended. */
      const readAll = async (after: string | null) => {
        const events: StockEvent[] = [];
        for (;;) {
          const page = await port.stockEvents(after, 50);
          events.push(...page.events);
          if (page.events.length === 0) {
            expect(page.next_after).toBe(after);
            return { events, after };
          }
          after = page.next_after;
        }
      };
      const start = (await readAll(null)).after;
      const q = (await port.get(itemId))!.quantity;
      await setThreshold(itemId, q - 2);
      try {
        for (let i = 0; i < 3; i++) await port.deduct(one(randomUUID(), itemId, 1));
        // Visible once no older transaction runs on the server: wait for it, briefly.
        let mine: StockEvent[] = [];
        let after = start;
        for (let i = 0; i < 500 && mine.length === 0; i++) {
          const r = await readAll(after);
          after = r.after;
          mine = r.events.filter((e) => e.data.item_id === itemId);
          if (mine.length === 0) await Bun.sleep(10);
        }
        expect(mine).toHaveLength(1);
        expect(mine[0]!.id).toMatch(/^evt_[0-9a-f]{32}00000000$/);
        expect(mine[0]).toMatchObject({ type: "stock.low", data: { item_id: itemId, quantity: q - 2, available: q - 2, low_stock_threshold: q - 2 } });
        expect(new Date(mine[0]!.created_at).getTime()).toBeGreaterThan(0);
        expect(await port.get(itemId)).toMatchObject({ low_stock_threshold: q - 2 });
        expect((await readAll(after)).events.filter((e) => e.data.item_id === itemId)).toEqual([]);
      } finally {
        await setThreshold(itemId, 0);
      }
    });

    test("health reports its checks", async () => {
      const { port } = make();
      const h = await port.health();
      expect(h.ok).toBe(true);
      expect(h.checks.database?.ok).toBe(true);
    });
  });
}
