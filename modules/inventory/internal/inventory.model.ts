import { t } from "elysia";
import { Int, ItemId, ItemName, LIMITS, OrderId, OrderQuantity, Timestamp } from "../../../src/http/schemas.ts";

const strict = { additionalProperties: false } as const;

export const InventoryItemSchema = t.Object({
  item_id: t.String(),
  item_name: t.String(),
  quantity: t.Integer(),
  reserved_quantity: t.Integer(),
  updated_at: Timestamp,
});

export const DeductBody = t.Object({ order_id: OrderId, item_id: ItemId, quantity: OrderQuantity }, strict);
export const ReleaseBody = t.Object({ order_id: OrderId }, strict);
export const CreateItemBody = t.Object(
  {
    item_id: ItemId,
    item_name: ItemName,
    quantity: Int({ minimum: 0, maximum: LIMITS.stockMax }),
  },
  strict,
);
export const RestockBody = t.Object({ quantity: Int({ minimum: 1, maximum: LIMITS.restockMax }) }, strict);
export const ItemParams = t.Object({ item_id: ItemId });

export const DeductApplied = t.Object({
  outcome: t.Literal("applied"),
  order_id: t.String(),
  item_id: t.String(),
  quantity: t.Integer(),
  remaining: t.Union([t.Integer(), t.Null()]),
  replayed: t.Boolean(),
});
