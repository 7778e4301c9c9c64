import { t } from "elysia";
// Plain TypeBox integers for what the API answers: Elysia's `t.Integer` also admits numeric strings (for input), which the document would then promise.
import { Type } from "@sinclair/typebox";
import { Int, OrderId, Timestamp } from "../../../platform/schemas.ts";
import { INVENTORY_LIMITS, ItemId } from "../inventory.rules.ts";

const strict = { additionalProperties: false } as const;

/** C0 controls, DEL and C1 controls, as a regex class body. */
const CONTROL = "\\u0000-\\u001f\\u007f-\\u009f";
/**
 * A display name: 1–200 characters, no control characters (they break log lines, CSV exports and
 * terminals, and PostgreSQL cannot store NUL), no leading or trailing whitespace, so never blank.
 * The pattern (reasons share it) backtracks at most over trailing whitespace: linear even on a megabyte of spaces.
 */
export const DISPLAY_TEXT_PATTERN = `^[^\\s${CONTROL}](?:[^${CONTROL}]*[^\\s${CONTROL}])?$`;
export const ItemName = t.String({
  minLength: 1,
  maxLength: INVENTORY_LIMITS.itemNameMax,
  pattern: DISPLAY_TEXT_PATTERN,
  description: "Display name: 1–200 characters, no control characters, no leading or trailing spaces",
});

export const DeductQuantity = Int({ minimum: 1, maximum: INVENTORY_LIMITS.deductQuantityMax, description: "Whole number of units" });

export const InventoryItemSchema = t.Object({
  item_id: t.String(),
  item_name: t.String(),
  quantity: Type.Integer(),
  reserved_quantity: Type.Integer(),
  low_stock_threshold: Type.Integer({ description: "At or below this available quantity the item is low and a `stock.low` event is written; 0 = off" }),
  updated_at: Timestamp,
});

/** What a `stock.low` event's `data` carries: the item right after the change that made it low. */
export const StockLowDataSchema = t.Object({
  item_id: t.String(),
  item_name: t.String(),
  quantity: Type.Integer({ description: "Available units (held units have left it)" }),
  reserved_quantity: Type.Integer(),
  available: Type.Integer({ description: "What can still be ordered: equal to `quantity`" }),
  low_stock_threshold: Type.Integer(),
});

export const StockEventSchema = t.Object({
  id: t.String({ description: "`evt_` + 32 hex digits + `00000000`" }),
  type: t.Literal("stock.low"),
  created_at: Timestamp,
  data: StockLowDataSchema,
});

export const StockEventPageSchema = t.Object({
  events: t.Array(StockEventSchema),
  next_after: t.Union([t.String(), t.Null()], { description: "Pass as `after` for the next page" }),
});

/** The schemas the inventory routes refer to by name in the OpenAPI document. */
export const INVENTORY_SCHEMAS = { InventoryItem: InventoryItemSchema, StockEventPage: StockEventPageSchema } as const;

export const LowStockThreshold = Int({
  minimum: 0,
  maximum: INVENTORY_LIMITS.stockMax,
  description: "At or below this available quantity the item is low (a `stock.low` event when it becomes so); 0 = off",
});
export const ThresholdBody = t.Object({ low_stock_threshold: LowStockThreshold }, strict);

export const OrderLineSchema = t.Object({ item_id: ItemId, quantity: DeductQuantity }, strict);
export const OrderLines = t.Array(OrderLineSchema, {
  minItems: 1,
  maxItems: INVENTORY_LIMITS.linesMax,
  description: `1–${INVENTORY_LIMITS.linesMax} lines, each item at most once`,
});
/** `{order_id, lines}`, or the seed's one-item `{order_id, item_id, quantity}` (one line). */
export const HoldSeconds = Int({
  minimum: INVENTORY_LIMITS.holdMinS,
  maximum: INVENTORY_LIMITS.holdMaxS,
  description: `Reserve instead of sell, for this many seconds (${INVENTORY_LIMITS.holdMinS}–${INVENTORY_LIMITS.holdMaxS})`,
});
export const DeductBody = t.Union([
  t.Object({ order_id: OrderId, lines: OrderLines, hold_s: t.Optional(HoldSeconds) }, strict),
  t.Object({ order_id: OrderId, item_id: ItemId, quantity: DeductQuantity }, strict),
]);
export const PayBody = t.Object({ order_id: OrderId, paid_at: t.String({ format: "date-time", description: "When the customer paid" }) }, strict);
export const ReleaseBody = t.Object({ order_id: OrderId }, strict);
export const CreateItemBody = t.Object(
  {
    item_id: ItemId,
    item_name: ItemName,
    quantity: Int({ minimum: 0, maximum: INVENTORY_LIMITS.stockMax }),
    low_stock_threshold: t.Optional(LowStockThreshold),
  },
  strict,
);
/** Why stock changed by hand, kept on its movement: a display text like an item's name. */
export const Reason = t.String({
  minLength: 1,
  maxLength: INVENTORY_LIMITS.reasonMax,
  pattern: DISPLAY_TEXT_PATTERN,
  description: `Why: 1–${INVENTORY_LIMITS.reasonMax} characters, no control characters, no leading or trailing spaces`,
});
export const RestockBody = t.Object({ quantity: Int({ minimum: 1, maximum: INVENTORY_LIMITS.restockMax }), reason: t.Optional(Reason) }, strict);
export const ItemParams = t.Object({ item_id: ItemId });
export const STOCK_EVENTS_PAGE_MAX = 1_000;
export const StockEventsQuery = t.Object(
  {
    after: t.Optional(t.String({ maxLength: 41, pattern: "^[0-9]{1,20}\\.[0-9]{1,20}$", description: "The previous page's `next_after` (opaque)" })),
    limit: t.Optional(t.Numeric({ minimum: 1, maximum: STOCK_EVENTS_PAGE_MAX, multipleOf: 1, description: `Events per page, 1–${STOCK_EVENTS_PAGE_MAX} (default 100)` })),
  },
  strict,
);
