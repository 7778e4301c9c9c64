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
  /** Lines in one order: each a distinct item. */
  linesMax: 50,
  /** Reasons given to adjustments, restocks and cancellations. */
  reasonMax: 200,
} as const;

export const ItemId = t.String({
  pattern: INVENTORY_LIMITS.itemIdPattern,
  minLength: 1,
  maxLength: INVENTORY_LIMITS.itemIdMax,
  description: "Item id: 1–64 of A–Z a–z 0–9 . _ -",
});

/**
 * The rules a list of lines must keep beyond its schema: 1–50 lines, each item at most once.
 * Returns what is wrong, for a 400, or null. Orders check it at their door, inventory at its own.
 */
export function linesProblem(lines: ReadonlyArray<{ item_id: string; quantity: number }>): { detail: string; item_id?: string } | null {
  if (lines.length < 1 || lines.length > INVENTORY_LIMITS.linesMax) {
    return { detail: `An order has 1–${INVENTORY_LIMITS.linesMax} lines; this one has ${lines.length}.` };
  }
  const seen = new Set<string>();
  for (const l of lines) {
    if (seen.has(l.item_id)) return { detail: `Item "${l.item_id}" appears on more than one line; put its whole quantity on one line.`, item_id: l.item_id };
    seen.add(l.item_id);
    if (!Number.isInteger(l.quantity) || l.quantity < 1 || l.quantity > INVENTORY_LIMITS.deductQuantityMax) {
      return { detail: `Line for "${l.item_id}": quantity must be a whole number from 1 to ${INVENTORY_LIMITS.deductQuantityMax}.`, item_id: l.item_id };
    }
  }
  return null;
}
