import type {
  DeductResult,
  Movement as PortMovement,
  LineRejection,
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
type Movement = PortMovement & { item_id: string };

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
  // The ledger, as the real adapters keep it: one movement per change of a quantity.
  const ledger: Movement[] = Object.entries(stock).map(([item_id, q], i) => ({
    id: i + 1, item_id, type: "create", quantity_change: q, reserved_change: 0, order_id: null, reason: null, created_at: now(),
  }));
  const move = (item_id: string, type: string, quantity_change: number, order_id: string) =>
    ledger.push({ id: ledger.length + 1, item_id, type, quantity_change, reserved_change: 0, order_id, reason: null, created_at: now() });
  const item = (id: string): InventoryItem | null => {
    const q = items.get(id);
    return q === undefined ? null : { item_id: id, item_name: id, quantity: q, reserved_quantity: 0, low_stock_threshold: 0, updated_at: now() };
  };

  return {
    calls,
    stock: (id) => items.get(id),
    deductions: (orderId) => applied.get(orderId) ?? 0,
    async deduct(req) {
      calls.push(`deduct:${req.order_id}`);
      // The chaos tests sell; holds are the real adapters' business (their contract suite).
      if (req.hold_s !== undefined) throw new Error("the memory inventory does not hold stock");
      const first = outcomes.get(req.order_id);
      if (first) return { ...first, replayed: true };
      const lines = req.lines.map((l) => ({ item_id: l.item_id, quantity: l.quantity }));
      let result: DeductResult;
      const rejected_lines = lines.flatMap((l): LineRejection[] => {
        const q = items.get(l.item_id);
        if (q === undefined) return [{ item_id: l.item_id, reason: "unknown_item" as const }];
        return q < l.quantity ? [{ item_id: l.item_id, reason: "insufficient_stock" as const }] : [];
      });
      const base = { order_id: req.order_id, lines, replayed: false };
      if (released.has(req.order_id)) result = { ...base, outcome: "rejected", reason: "released", rejected_lines: [] };
      else if (rejected_lines.length > 0) result = { ...base, outcome: "rejected", reason: rejected_lines[0]!.reason, rejected_lines };
      else {
        for (const l of lines) {
          items.set(l.item_id, items.get(l.item_id)! - l.quantity);
          move(l.item_id, "deduct", -l.quantity, req.order_id);
        }
        applied.set(req.order_id, (applied.get(req.order_id) ?? 0) + 1);
        result = { ...base, outcome: "applied", lines: lines.map((l) => ({ ...l, remaining: items.get(l.item_id)! })) };
      }
      outcomes.set(req.order_id, result);
      return result;
    },
    async release(orderId) {
      calls.push(`release:${orderId}`);
      const done = released.get(orderId);
      if (done) return done;
      const d = outcomes.get(orderId);
      let result: ReleaseResult = { order_id: orderId, restored: false, quantity: 0, lines: [] };
      if (d?.outcome === "applied") {
        for (const l of d.lines) {
          items.set(l.item_id, (items.get(l.item_id) ?? 0) + l.quantity);
          move(l.item_id, "release", l.quantity, orderId);
        }
        const lines = d.lines.map((l) => ({ item_id: l.item_id, quantity: l.quantity }));
        result = { order_id: orderId, restored: true, quantity: lines.reduce((n, l) => n + l.quantity, 0), lines };
      }
      released.set(orderId, result);
      return result;
    },
    async pay(orderId) {
      calls.push(`pay:${orderId}`);
      return { order_id: orderId, outcome: released.has(orderId) ? "released" : "not_held", hold_expires_at: null };
    },
    async expire(orderId) {
      calls.push(`expire:${orderId}`);
      return { order_id: orderId, outcome: released.has(orderId) ? "released" : "not_held", hold_expires_at: null };
    },
    async movements(itemId, page) {
      calls.push(`movements:${itemId}`);
      if (!items.has(itemId)) return null;
      const older = ledger.filter((m) => m.item_id === itemId && (page?.before === undefined || m.id < page.before)).reverse();
      const limit = page?.limit ?? 50;
      const movements = older.slice(0, limit).map(({ item_id: _, ...m }) => m);
      return { item_id: itemId, movements, next_before: older.length > limit ? movements.at(-1)!.id : null };
    },
    async get(itemId) {
      calls.push(`get:${itemId}`);
      return item(itemId);
    },
    async list() {
      calls.push("list");
      return [...items.keys()].sort().map((id) => item(id)!);
    },
    async stockEvents(after) {
      // Items here have no threshold: no stock event ever happens.
      return { events: [], next_after: after };
    },
    async health() {
      calls.push("health");
      return { ok: true, checks: { memory: { ok: true } } };
    },
  };
}
