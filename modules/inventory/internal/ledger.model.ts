import { t } from "elysia";
import { Type } from "@sinclair/typebox";
import { Int, OrderId, Timestamp } from "../../../platform/schemas.ts";
import { InventoryItemSchema, Reason } from "./inventory.model.ts";
import { MOVEMENT_TYPES } from "./inventory.tables.ts";

const strict = { additionalProperties: false } as const;

export const LEDGER_LIMITS = {
  /** Movements per page of the ledger. */
  pageMax: 200,
  pageDefault: 50,
  /** The most one adjustment may move, either way. */
  adjustMax: 1_000_000,
} as const;

export const AdjustBody = t.Object(
  {
    quantity_change: Int({
      minimum: -LEDGER_LIMITS.adjustMax,
      maximum: LEDGER_LIMITS.adjustMax,
      description: `Whole units to add (positive) or take away (negative); not 0, at most ${LEDGER_LIMITS.adjustMax} either way`,
    }),
    reason: Reason,
  },
  strict,
);

/** Query strings are text: `t.Numeric` reads "50" as 50 and refuses "5.5", "x" or "0". */
export const MovementsQuery = t.Object(
  {
    limit: t.Optional(t.Numeric({ minimum: 1, maximum: LEDGER_LIMITS.pageMax, multipleOf: 1, description: `Movements per page, 1–${LEDGER_LIMITS.pageMax} (default ${LEDGER_LIMITS.pageDefault})` })),
    before: t.Optional(t.Numeric({ minimum: 1, multipleOf: 1, description: "A movement id: only older movements (the previous page's `next_before`)" })),
  },
  strict,
);

export const MovementSchema = t.Object({
  id: Type.Integer({ description: "Grows with every movement: newer movements have larger ids" }),
  type: t.UnionEnum(MOVEMENT_TYPES),
  quantity_change: Type.Integer(),
  order_id: t.Union([OrderId, t.Null()]),
  reason: t.Union([t.String(), t.Null()]),
  created_at: Timestamp,
});

export const MovementPageSchema = t.Object({
  item_id: t.String(),
  movements: t.Array(MovementSchema, { description: "Newest first" }),
  next_before: t.Union([Type.Integer(), t.Null()], { description: "Pass as `before` for the next (older) page; null on the last page" }),
});

/** The item after a restock or adjustment, with the movement that recorded it. */
export const StockChangeSchema = t.Object({
  ...InventoryItemSchema.properties,
  movement_id: Type.Integer({ description: "The ledger movement that recorded this change" }),
});

export const LEDGER_SCHEMAS = { MovementPage: MovementPageSchema, StockChange: StockChangeSchema } as const;
