import { t } from "elysia";

/**
 * What inventory accepts, in one place: its routes, orders' order body, the pages and the
 * property tests all read these, so they cannot drift apart.
 */
export const INVENTORY_LIMITS = {
  itemIdPattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
  itemIdMax: 64,
  itemNameMax: 200,
  stockMax: 1_000_000_000,
  restockMax: 1_000_000,
  /** The most one deduction may move; orders never ask for more (`ORDER_LIMITS.quantityMax`). */
  deductQuantityMax: 10_000,
} as const;

export const ItemId = t.String({
  pattern: INVENTORY_LIMITS.itemIdPattern,
  minLength: 1,
  maxLength: INVENTORY_LIMITS.itemIdMax,
  description: "Item id: 1–64 of A–Z a–z 0–9 . _ -",
});
