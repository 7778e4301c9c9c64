import { createHash } from "node:crypto";
import type { Database } from "../../../platform/db.ts";
import { AppError, InvalidRequestError, NotFoundError } from "../../../platform/errors.ts";
import { INVENTORY_LIMITS } from "../inventory.rules.ts";
import { changeStock, listMovements, type MovementView } from "./ledger.repository.ts";
import { LEDGER_LIMITS } from "./ledger.model.ts";
import { keyedWrite, purgeExpiredKeys, type KeyClaim, type StoredAnswer } from "./request-keys.repository.ts";
import type { StockMovement } from "./inventory.service.ts";

export class StockBelowZeroError extends AppError {
  readonly code = "stock_below_zero";
}

export class StockLimitError extends AppError {
  readonly code = "stock_limit";
}

/** One scope for every keyed admin write: a key sent to restock and then to adjust is a reused key. */
const KEY_SCOPE = "admin-inventory";

export interface MovementPage {
  item_id: string;
  movements: MovementView[];
  next_before: number | null;
}

export interface LedgerSettings {
  /** How long an `Idempotency-Key` of an admin write is remembered (IDEMPOTENCY_TTL_S). */
  keyTtlMs: number;
}

/**
 * The ledger's rules, with no HTTP in sight: reading an item's movements, and changing stock by
 * hand (restock, adjust), each change one movement, under an optional `Idempotency-Key`.
 * Answers are finished bodies (`StoredAnswer`), so a replay is the first answer byte for byte.
 */
export class LedgerService {
  private lastPurge = 0;

  constructor(
    private readonly database: Database,
    private readonly emit: (m: StockMovement) => void,
    private readonly settings: LedgerSettings = { keyTtlMs: 86_400_000 },
  ) {}

  async movements(itemId: string, query: { limit?: number | undefined; before?: number | undefined }): Promise<MovementPage> {
    const limit = query.limit ?? LEDGER_LIMITS.pageDefault;
    const page = await listMovements(this.database, itemId, limit, query.before);
    if (!page) throw new NotFoundError(`No item with id "${itemId}"`, { item_id: itemId });
    const last = page.movements.at(-1);
    return { item_id: itemId, movements: page.movements, next_before: page.more && last ? last.id : null };
  }

  /**
   * `adjust("ps5", "key-1", { quantity_change: -2, reason: "two units broken in transit" })`:
   * the change and its `adjust` movement, or a refusal that changed nothing.
   */
  adjust(itemId: string, key: string, body: { quantity_change: number; reason: string }): Promise<StoredAnswer> {
    if (body.quantity_change === 0) throw new InvalidRequestError("quantity_change must not be 0: an adjustment changes the stock.", { field: "quantity_change" });
    const request = { item_id: itemId, quantity_change: body.quantity_change, reason: body.reason };
    return this.write(this.claim(key, "adjust", request), itemId, body.quantity_change, "adjust", body.reason);
  }

  /** `restock("ps5", null, { quantity: 10 })`: the seed's restock; with a key, replayable like adjust. */
  restock(itemId: string, key: string | null, body: { quantity: number; reason?: string | undefined }): Promise<StoredAnswer> {
    const request = { item_id: itemId, quantity: body.quantity, reason: body.reason ?? null };
    return this.write(key === null ? null : this.claim(key, "restock", request), itemId, body.quantity, "restock", body.reason ?? null);
  }

  private claim(key: string, operation: string, request: object): KeyClaim {
    const fingerprint = createHash("sha256").update(`${operation}\n${JSON.stringify(request)}`).digest("base64url");
    return { scope: KEY_SCOPE, key, fingerprint, ttlMs: this.settings.keyTtlMs };
  }

  private async write(claim: KeyClaim | null, itemId: string, quantityChange: number, type: "restock" | "adjust", reason: string | null): Promise<StoredAnswer> {
    const answer = await keyedWrite(this.database, claim, async (trx) => {
      const r = await changeStock(trx, { itemId, quantityChange, type, reason, maxStock: INVENTORY_LIMITS.stockMax });
      switch (r.kind) {
        case "missing":
          throw new NotFoundError(`No item with id "${itemId}"`, { item_id: itemId });
        case "below_zero":
          throw new StockBelowZeroError(`Stock of "${itemId}" is ${r.quantity}; a change of ${quantityChange} would take it below zero. Nothing changed.`, {
            item_id: itemId,
            quantity: r.quantity,
            quantity_change: quantityChange,
          });
        case "over_limit":
          throw new StockLimitError(`Stock of "${itemId}" may not exceed ${INVENTORY_LIMITS.stockMax}`, { item_id: itemId, quantity: r.quantity });
        case "applied":
          return { status: 200, body: JSON.stringify({ ...r.item, movement_id: r.movementId }) };
      }
    });
    if (!answer.replayed) {
      const item = JSON.parse(answer.body) as { quantity: number };
      this.emit({ type, item_id: itemId, quantity: quantityChange, remaining: item.quantity });
    }
    if (claim) void this.purgeNow();
    return answer;
  }

  /** Expired keys go at most once an hour, after a keyed write, off its path. */
  private async purgeNow(): Promise<void> {
    const now = Date.now();
    if (now - this.lastPurge < 3_600_000) return;
    this.lastPurge = now;
    await purgeExpiredKeys(this.database).catch(() => {});
  }
}
