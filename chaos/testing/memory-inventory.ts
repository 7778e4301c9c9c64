import type {
  DeductResult,
  InventoryItem,
  InventoryPort,
  ReleaseResult,
} from "../../modules/inventory/index.ts";

/**
 * A small, honest in-memory implementation of our own `InventoryPort`, for the chaos tests only:
 * it keeps the port's promises (one deduction per order id, replays, release blocks a later
 * deduct) so the tests can see whether a fault committed work or not. The real adapters are
 * tested against PostgreSQL by the inventory module's contract suite.
 */
export function createMemoryInventory(stock: Record<string, number>): InventoryPort & {
  stock(itemId: string): number | undefined;
  deductions(orderId: string): number;
  calls: string[];
} {
  const items = new Map(Object.entries(stock).map(([id, q]) => [id, q]));
  const outcomes = new Map<string, DeductResult>();
  const applied = new Map<string, number>(); // order id → times stock actually moved
  const released = new Map<string, ReleaseResult>();
  const calls: string[] = [];
  const now = () => new Date(0).toISOString();
  const item = (id: string): InventoryItem | null => {
    const q = items.get(id);
    return q === undefined ? null : { item_id: id, item_name: id, quantity: q, reserved_quantity: 0, updated_at: now() };
  };

  return {
    calls,
    stock: (id) => items.get(id),
    deductions: (orderId) => applied.get(orderId) ?? 0,
    async deduct(req) {
      calls.push(`deduct:${req.order_id}`);
      const first = outcomes.get(req.order_id);
      if (first) return { ...first, replayed: true };
      const base = { order_id: req.order_id, item_id: req.item_id, quantity: req.quantity, replayed: false };
      let result: DeductResult;
      const q = items.get(req.item_id);
      if (released.has(req.order_id)) result = { ...base, outcome: "rejected", reason: "released" };
      else if (q === undefined) result = { ...base, outcome: "rejected", reason: "unknown_item" };
      else if (q < req.quantity) result = { ...base, outcome: "rejected", reason: "insufficient_stock" };
      else {
        items.set(req.item_id, q - req.quantity);
        applied.set(req.order_id, (applied.get(req.order_id) ?? 0) + 1);
        result = { ...base, outcome: "applied", remaining: q - req.quantity };
      }
      outcomes.set(req.order_id, result);
      return result;
    },
    async release(orderId) {
      calls.push(`release:${orderId}`);
      const done = released.get(orderId);
      if (done) return done;
      const d = outcomes.get(orderId);
      let result: ReleaseResult = { order_id: orderId, restored: false, quantity: 0 };
      if (d?.outcome === "applied") {
        items.set(d.item_id, (items.get(d.item_id) ?? 0) + d.quantity);
        result = { order_id: orderId, restored: true, quantity: d.quantity };
      }
      released.set(orderId, result);
      return result;
    },
    async get(itemId) {
      calls.push(`get:${itemId}`);
      return item(itemId);
    },
    async list() {
      calls.push("list");
      return [...items.keys()].sort().map((id) => item(id)!);
    },
    async health() {
      calls.push("health");
      return { ok: true, checks: { memory: { ok: true } } };
    },
  };
}
