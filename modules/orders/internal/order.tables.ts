import type { ColumnType, Generated } from "kysely";
import type { LineRejection, OrderLine } from "../../inventory/index.ts";

const STATUSES = ["pending", "confirmed", "rejected", "queued", "failed", "cancelling", "cancelled", "reserved", "expired"] as const;
export type OrderStatus = (typeof STATUSES)[number];
export const ORDER_STATUSES: readonly OrderStatus[] = STATUSES;
/** Settled: nothing is working on the order (a confirmed order may still be cancelled). */
export const FINAL_STATUSES: readonly OrderStatus[] = ["confirmed", "rejected", "failed", "cancelled", "expired"];
/** States a cancel may start from. */
export const CANCELLABLE_STATUSES: readonly OrderStatus[] = ["pending", "queued", "confirmed", "reserved"];

export interface OrderTable {
  order_id: string;
  /** A one-line order's item and quantity (what seed clients read); null for several lines. */
  item_id: string | null;
  quantity: number | null;
  /** Every line as sent; null on rows from before orders had lines (their one line is item_id, quantity). */
  lines: ColumnType<OrderLine[] | null, string | null, string | null>;
  /** The hold the order asked for, in seconds (null: a sale), and the deadline inventory recorded. */
  hold_s: number | null;
  hold_expires_at: Date | null;
  /** When the customer paid (the first `pay`); inventory sells the hold if it is before the deadline. */
  paid_at: Date | null;
  /** The lines inventory refused, when it refused the order. */
  rejected_lines: ColumnType<LineRejection[] | null, string | null, string | null>;
  status: OrderStatus;
  reason: string | null;
  attempts: Generated<number>;
  request_id: string | null;
  created_at: ColumnType<Date, Date | undefined, never>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
  /** The retry worker's lease: a token and its end, null while no worker holds the order. */
  lease_id: string | null;
  leased_until: Date | null;
}

export interface OrderHistoryTable {
  id: Generated<number>;
  order_id: string;
  status: OrderStatus;
  reason: string | null;
  /** Who asked for this change, when someone did (a cancellation). */
  actor: string | null;
  /** Why, in their words. */
  note: string | null;
  at: ColumnType<Date, Date | undefined, never>;
}

export interface IdempotencyKeyTable {
  key: string;
  fingerprint: string;
  state: "in_flight" | "done";
  order_id: string;
  response_status: number | null;
  response_body: string | null;
  created_at: ColumnType<Date, Date | undefined, Date>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
  expires_at: Date;
  /** True for the key that created the order; false for a later request's on it (cancel, pay). */
  for_create: Generated<boolean>;
}

export interface OrdersTables {
  "orders.orders": OrderTable;
  "orders.order_history": OrderHistoryTable;
  "orders.idempotency_keys": IdempotencyKeyTable;
}

export const ORDER_TABLES = ["orders.orders", "orders.order_history", "orders.idempotency_keys"] as const;
