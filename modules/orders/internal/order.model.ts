import { t } from "elysia";
// Plain TypeBox integers for what the API answers: Elysia's `t.Integer` also admits numeric strings (for input), which the document would then promise.
import { Type } from "@sinclair/typebox";
import type { Static } from "@sinclair/typebox";
import { Int, OrderId, Timestamp } from "../../../platform/schemas.ts";
import { InvalidRequestError } from "../../../platform/errors.ts";
import { INVENTORY_LIMITS, ItemId } from "../../inventory/index.ts";
import { IDEMPOTENCY_KEY_MAX } from "../../../platform/idempotency-key.ts";
import type { OrderStatus } from "./order.tables.ts";

/** Orders' own bounds: what one order may ask for, and how long its idempotency key may be. */
export const ORDER_LIMITS = {
  quantityMax: 10_000,
  /** Printable ASCII characters in an `Idempotency-Key`; the parser and the API description both read it. */
  idempotencyKeyMax: IDEMPOTENCY_KEY_MAX,
} as const;

export const OrderQuantity = Int({ minimum: 1, maximum: ORDER_LIMITS.quantityMax, description: "Whole number of units" });

export const OrderLineBody = t.Object({ item_id: ItemId, quantity: OrderQuantity }, { additionalProperties: false });

/**
 * `{"lines": [...]}`, or the seed's one-item `{"item_id", "quantity"}` (one line). One object
 * with every field optional rather than a union, so a bad line is named in the 400 (a union can
 * only say "matches neither"); `orderLines` checks that exactly one form was sent.
 */
export const CreateOrderBody = t.Object(
  {
    lines: t.Optional(
      t.Array(OrderLineBody, {
        minItems: 1,
        maxItems: INVENTORY_LIMITS.linesMax,
        description: `1–${INVENTORY_LIMITS.linesMax} lines, each item at most once`,
      }),
    ),
    item_id: t.Optional(ItemId),
    quantity: t.Optional(OrderQuantity),
  },
  { additionalProperties: false, description: "Either `lines`, or `item_id` with `quantity` (one line); not both" },
);

/** The lines a create body asks for; a body with both forms, or neither, is a 400. */
export function orderLines(body: Static<typeof CreateOrderBody>): Array<{ item_id: string; quantity: number }> {
  const single = body.item_id !== undefined || body.quantity !== undefined;
  if (body.lines && single) throw new InvalidRequestError('Send either "lines" or "item_id" with "quantity", not both.');
  if (body.lines) return body.lines;
  if (body.item_id === undefined || body.quantity === undefined) {
    throw new InvalidRequestError('Send "lines": [{"item_id", "quantity"}, …], or "item_id" with "quantity" for one line.');
  }
  return [{ item_id: body.item_id, quantity: body.quantity }];
}

/** What cancels an order: an optional reason, kept in its history. */
export const CancelOrderBody = t.Object(
  { reason: t.Optional(t.String({ minLength: 1, maxLength: INVENTORY_LIMITS.reasonMax, pattern: "^[^\\u0000-\\u001f\\u007f-\\u009f]*$", description: "Why, in 1–200 characters (kept in the order's history)" })) },
  { additionalProperties: false },
);

export const OrderStatusSchema = t.Union([
  t.Literal("pending"),
  t.Literal("confirmed"),
  t.Literal("rejected"),
  t.Literal("queued"),
  t.Literal("failed"),
  t.Literal("cancelling"),
  t.Literal("cancelled"),
]);
// The schema spells out the table's statuses (a mapped union loses its literal types in Elysia's
// inference); this fails the type check the day the two lists part.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const statusesAgree: Same<Static<typeof OrderStatusSchema>, OrderStatus> = true;
void statusesAgree;

const LineSchema = t.Object({ item_id: t.String(), quantity: Type.Integer() });

export const OrderSchema = t.Object({
  order_id: t.String({ format: "uuid" }),
  lines: t.Array(LineSchema, { description: "Every line, in the order sent" }),
  item_id: t.Optional(t.String({ description: "A one-line order's item (what one-item clients read)" })),
  quantity: t.Optional(Type.Integer({ description: "A one-line order's quantity" })),
  status: OrderStatusSchema,
  reason: t.Union([t.String(), t.Null()], {
    description:
      "Why the order is in its state, for machines: `insufficient_stock`, `unknown_item`, `released`, `inventory_unavailable:<kind>`, `cancelled`, or null",
  }),
  rejected_lines: t.Optional(
    t.Array(t.Object({ item_id: t.String(), reason: t.String() }), { description: "When rejected by inventory: every line that failed, and why" }),
  ),
  message: t.String({ description: "The same, for people: what a client shows (\"Order confirmed.\", \"Not enough stock for ps5.\")" }),
  attempts: Type.Integer(),
  created_at: Timestamp,
  updated_at: Timestamp,
  history: t.Optional(
    t.Array(
      t.Object({
        status: t.String(),
        reason: t.Union([t.String(), t.Null()]),
        at: Timestamp,
        actor: t.Optional(t.String({ description: "Who asked for this change (a cancellation)" })),
        note: t.Optional(t.String({ description: "Why, in their words" })),
      }),
      {
        description: "Every state the order has been in, oldest first (on `GET /api/orders/{id}` only)",
      },
    ),
  ),
});

/** The schemas the order routes refer to by name in the OpenAPI document. */
export const ORDER_SCHEMAS = { Order: OrderSchema } as const;

/**
 * An order as the API shows it, derived from the schema that describes it: the table
 * (`order.tables.ts`) and this schema are the only two descriptions of an order.
 */
export type OrderView = Static<typeof OrderSchema>;

export const OrderParams = t.Object({ id: OrderId });
export const ListQuery = t.Object(
  { status: t.Optional(OrderStatusSchema), limit: t.Optional(t.Numeric({ minimum: 1, maximum: 100, multipleOf: 1 })) },
  { additionalProperties: false },
);
