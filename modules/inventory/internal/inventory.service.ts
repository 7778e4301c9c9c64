import type { Database } from "../../../platform/db.ts";
import { tablesAnswer } from "../../../platform/db.ts";
import { AppError, InvalidRequestError, NotFoundError } from "../../../platform/errors.ts";
import type { DeductRequest, DeductResult, HoldResult, InventoryHealth, InventoryItem, ReleaseResult, StockEventPage } from "../inventory.port.ts";
import { systemClock, type Clock } from "../../../platform/clock.ts";
import { INVENTORY_LIMITS, linesProblem } from "../inventory.rules.ts";
import * as repo from "./inventory.repository.ts";
import { listStockEvents } from "./stock-events.repository.ts";
import { groupCommitLimits, type GroupCommitSettings } from "../../../platform/group-commit.ts";
import { INVENTORY_TABLES, type MovementType } from "./inventory.tables.ts";

export class ItemExistsError extends AppError {
  readonly code = "item_exists";
}

export interface StockMovement {
  type: MovementType;
  item_id: string;
  quantity: number;
  remaining: number | null;
}

/** Inventory's rules, with no HTTP in sight. Listeners see every applied movement (metrics, UI). */
export class InventoryService {
  private readonly movementListeners = new Set<(m: StockMovement) => void>();

  private readonly deductions: repo.DeductWriter;

  constructor(
    private readonly database: Database,
    groupCommit: GroupCommitSettings = groupCommitLimits(database.kind),
    /** Decides holds' deadlines; injected so tests can stand one tick either side of one. */
    private readonly clock: Clock = systemClock,
  ) {
    this.deductions = new repo.DeductWriter(database, groupCommit);
  }

  onMovement(listener: (m: StockMovement) => void): () => void {
    this.movementListeners.add(listener);
    return () => this.movementListeners.delete(listener);
  }

  /** Tells the listeners of a movement applied elsewhere in the module (the ledger's restock and adjust). */
  emit(m: StockMovement) {
    for (const l of this.movementListeners) l(m);
  }

  async deduct(req: DeductRequest): Promise<DeductResult> {
    const problem = linesProblem(req.lines);
    if (problem) {
      throw new InvalidRequestError(problem.detail, problem.item_id ? { item_id: problem.item_id } : {}, problem.item_id ? "duplicate_line_item" : "invalid_request");
    }
    if (req.hold_s !== undefined && !(Number.isInteger(req.hold_s) && req.hold_s >= INVENTORY_LIMITS.holdMinS && req.hold_s <= INVENTORY_LIMITS.holdMaxS)) {
      throw new InvalidRequestError(`hold_s must be a whole number of seconds from ${INVENTORY_LIMITS.holdMinS} to ${INVENTORY_LIMITS.holdMaxS}.`);
    }
    const lines = req.lines.map((l) => ({ item_id: l.item_id, quantity: l.quantity }));
    const holdUntil = req.hold_s === undefined ? undefined : new Date(this.clock.now() + req.hold_s * 1000);
    const row = await this.deductions.deduct({ orderId: req.order_id, lines, ...(holdUntil ? { holdUntil } : {}) });
    switch (row.kind) {
      case "applied": {
        const applied = lines.map((l, i) => ({ ...l, remaining: row.remaining[i]! }));
        for (const l of applied) this.emit({ type: holdUntil ? "hold" : "deduct", item_id: l.item_id, quantity: l.quantity, remaining: l.remaining });
        return { outcome: "applied", order_id: req.order_id, lines: applied, ...(holdUntil ? { hold_expires_at: holdUntil.toISOString() } : {}), replayed: false };
      }
      case "refused":
        return { outcome: "rejected", order_id: req.order_id, lines, reason: row.rejected[0]!.reason, rejected_lines: row.rejected, replayed: false };
      case "first": {
        const a = row.account;
        // The first outcome, unless the account has since been closed: an "applied" that was
        // given back is never replayed as standing.
        if (a.released) {
          return { outcome: "rejected", order_id: req.order_id, lines: a.lines.length ? a.lines : lines, reason: "released", rejected_lines: [], replayed: true };
        }
        if (a.outcome === "applied" || a.outcome === "held") {
          const hold = a.hold_expires_at ? { hold_expires_at: a.hold_expires_at.toISOString() } : {};
          return { outcome: "applied", order_id: req.order_id, lines: a.lines.map((l) => ({ ...l, remaining: null })), ...hold, replayed: true };
        }
        const first = a.rejected_lines[0]?.reason ?? "unknown_item";
        return { outcome: "rejected", order_id: req.order_id, lines: a.lines, reason: first, rejected_lines: a.rejected_lines, replayed: true };
      }
    }
  }

  async release(orderId: string): Promise<ReleaseResult> {
    const r = await repo.release(this.database, orderId);
    if (r.restoredNow) for (const l of r.lines) this.emit({ type: "release", item_id: l.item_id, quantity: l.quantity, remaining: null });
    return { order_id: orderId, restored: r.restored, quantity: r.lines.reduce((n, l) => n + l.quantity, 0), lines: r.lines };
  }

  /** Sells a live hold paid before its deadline (`paidAt`, ISO 8601); paid too late, it expires now. */
  async pay(orderId: string, paidAt: string): Promise<HoldResult> {
    const when = new Date(paidAt);
    if (Number.isNaN(when.getTime())) throw new InvalidRequestError("paid_at must be an ISO 8601 time.");
    return this.settle(orderId, { kind: "pay", paidAt: when, at: new Date(this.clock.now()) });
  }

  /** Releases a hold whose deadline has passed. */
  expire(orderId: string): Promise<HoldResult> {
    return this.settle(orderId, { kind: "expire", at: new Date(this.clock.now()) });
  }

  private async settle(orderId: string, how: Parameters<typeof repo.settleHold>[2]): Promise<HoldResult> {
    const r = await repo.settleHold(this.database, orderId, how);
    const type = r.outcome === "paid" ? "sale" : "hold_release";
    for (const l of r.moved) this.emit({ type, item_id: l.item_id, quantity: l.quantity, remaining: null });
    return { order_id: orderId, outcome: r.outcome, hold_expires_at: r.hold_expires_at?.toISOString() ?? null };
  }

  get(itemId: string): Promise<InventoryItem | null> {
    return repo.getItem(this.database, itemId);
  }

  async require(itemId: string): Promise<InventoryItem> {
    const item = await repo.getItem(this.database, itemId);
    if (!item) throw new NotFoundError(`No item with id "${itemId}"`, { item_id: itemId });
    return item;
  }

  list(): Promise<InventoryItem[]> {
    return repo.listItems(this.database);
  }

  async createItem(itemId: string, itemName: string, quantity: number, lowStockThreshold = 0): Promise<InventoryItem> {
    if (!(Number.isInteger(lowStockThreshold) && lowStockThreshold >= 0 && lowStockThreshold <= INVENTORY_LIMITS.stockMax)) {
      throw new InvalidRequestError(`low_stock_threshold must be a whole number from 0 to ${INVENTORY_LIMITS.stockMax}.`, { field: "low_stock_threshold" });
    }
    const item = await repo.createItem(this.database, itemId, itemName, quantity, lowStockThreshold);
    if (!item) throw new ItemExistsError(`Item "${itemId}" already exists`, { item_id: itemId });
    this.emit({ type: "create", item_id: itemId, quantity, remaining: item.quantity });
    return item;
  }

  /**
   * `setLowStockThreshold("ps5", 10)`: the item with its new threshold (0 turns it off). Setting
   * it at or above the available quantity writes one `stock.low`, as the item has just become low.
   */
  async setLowStockThreshold(itemId: string, threshold: number): Promise<InventoryItem> {
    if (!(Number.isInteger(threshold) && threshold >= 0 && threshold <= INVENTORY_LIMITS.stockMax)) {
      throw new InvalidRequestError(`low_stock_threshold must be a whole number from 0 to ${INVENTORY_LIMITS.stockMax}.`, { field: "low_stock_threshold" });
    }
    const item = await repo.setLowStockThreshold(this.database, itemId, threshold);
    if (!item) throw new NotFoundError(`No item with id "${itemId}"`, { item_id: itemId });
    return item;
  }

  /** Inventory's `stock.low` events after a cursor, oldest first (see `InventoryPort.stockEvents`). */
  stockEvents(after: string | null, limit: number): Promise<StockEventPage> {
    if (!(Number.isInteger(limit) && limit >= 1 && limit <= 1_000)) throw new InvalidRequestError("limit must be a whole number from 1 to 1000.", { field: "limit" });
    return listStockEvents(this.database, after, limit);
  }

  async health(): Promise<InventoryHealth> {
    const checks: InventoryHealth["checks"] = {};
    try {
      await this.database.ping();
      checks.database = { ok: true };
    } catch (err) {
      checks.database = { ok: false, detail: (err as Error).message };
    }
    try {
      await tablesAnswer(this.database, INVENTORY_TABLES);
      checks.inventory_tables = { ok: true };
    } catch (err) {
      checks.inventory_tables = { ok: false, detail: (err as Error).message };
    }
    return { ok: Object.values(checks).every((c) => c.ok), checks };
  }
}

/** The demo catalog seeded on first start, so a fresh install has something to order. */
export const DEMO_CATALOG: ReadonlyArray<{ item_id: string; item_name: string; quantity: number }> = [
  { item_id: "ps5", item_name: "PlayStation 5", quantity: 1000 },
  { item_id: "xbox-series-x", item_name: "Xbox Series X", quantity: 1000 },
  { item_id: "switch-2", item_name: "Nintendo Switch 2", quantity: 1500 },
  { item_id: "steam-deck", item_name: "Steam Deck OLED", quantity: 1200 },
  { item_id: "dualsense", item_name: "DualSense Controller", quantity: 5000 },
  { item_id: "quest-3", item_name: "Meta Quest 3", quantity: 1000 },
  // The ids the seed project's front end and k6 scripts order, so they work unchanged.
  { item_id: "xbox", item_name: "Xbox Series S", quantity: 1000 },
  { item_id: "switch", item_name: "Nintendo Switch OLED", quantity: 1000 },
  { item_id: "laptop", item_name: "Laptop", quantity: 1000 },
  { item_id: "monitor", item_name: "Monitor", quantity: 1000 },
];

export async function seedCatalog(service: InventoryService): Promise<number> {
  if ((await service.list()).length > 0) return 0;
  let n = 0;
  for (const item of DEMO_CATALOG) {
    try {
      await service.createItem(item.item_id, item.item_name, item.quantity);
      n++;
    } catch (err) {
      // Another replica seeded it between our check and insert: that is fine.
      if (!(err instanceof ItemExistsError)) throw err;
    }
  }
  return n;
}
