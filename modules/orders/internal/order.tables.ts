import type { ColumnType, Generated } from "kysely";

const STATUSES = ["pending", "confirmed", "rejected", "queued", "failed"] as const;
export type OrderStatus = (typeof STATUSES)[number];
export const ORDER_STATUSES: readonly OrderStatus[] = STATUSES;
export const FINAL_STATUSES: readonly OrderStatus[] = ["confirmed", "rejected", "failed"];

export interface OrderTable {
  order_id: string;
  item_id: string;
  quantity: number;
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
}

export interface OrdersTables {
  "orders.orders": OrderTable;
  "orders.order_history": OrderHistoryTable;
  "orders.idempotency_keys": IdempotencyKeyTable;
}

export const ORDER_TABLES = ["orders.orders", "orders.order_history", "orders.idempotency_keys"] as const;
