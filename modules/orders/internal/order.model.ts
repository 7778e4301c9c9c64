import { t } from "elysia";
import { Int, OrderId, Timestamp } from "../../../platform/schemas.ts";
import { ItemId } from "../../inventory/index.ts";

/** Orders' own bounds: what one order may ask for, and how long its idempotency key may be. */
export const ORDER_LIMITS = {
  quantityMax: 10_000,
  /** Printable ASCII characters in an `Idempotency-Key`; the parser and the API description both read it. */
  idempotencyKeyMax: 255,
} as const;

export const OrderQuantity = Int({ minimum: 1, maximum: ORDER_LIMITS.quantityMax, description: "Whole number of units" });

export const CreateOrderBody = t.Object({ item_id: ItemId, quantity: OrderQuantity }, { additionalProperties: false });

export const OrderStatusSchema = t.Union([
  t.Literal("pending"),
  t.Literal("confirmed"),
  t.Literal("rejected"),
  t.Literal("queued"),
  t.Literal("failed"),
]);

export const OrderSchema = t.Object({
  order_id: t.String({ format: "uuid" }),
  item_id: t.String(),
  quantity: t.Integer(),
  status: OrderStatusSchema,
  reason: t.Union([t.String(), t.Null()]),
  attempts: t.Integer(),
  created_at: Timestamp,
  updated_at: Timestamp,
});

export const OrderParams = t.Object({ id: OrderId });
export const ListQuery = t.Object(
  { status: t.Optional(OrderStatusSchema), limit: t.Optional(t.Numeric({ minimum: 1, maximum: 100, multipleOf: 1 })) },
  { additionalProperties: false },
);
