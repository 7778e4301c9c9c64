import type { ColumnType, Generated } from "kysely";
import type { LineRejection, OrderLine } from "../inventory.port.ts";

export interface InventoryTable {
  item_id: string;
  item_name: string;
  quantity: number;
  reserved_quantity: Generated<number>;
  /** 0 = off; see migration 0004. */
  low_stock_threshold: Generated<number>;
  created_at: ColumnType<Date, Date | undefined, never>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

export const MOVEMENT_TYPES = ["create", "deduct", "release", "restock", "adjust", "hold", "hold_release", "sale"] as const;
export type MovementType = (typeof MOVEMENT_TYPES)[number];

/** The ledger: one row per change of an item's quantity. */
export interface MovementTable {
  id: Generated<number>;
  item_id: string;
  type: MovementType;
  quantity_change: number;
  /** The change of `reserved_quantity` (holds): Σ of it is the item's reserved quantity. */
  reserved_change: Generated<number>;
  order_id: string | null;
  reason: string | null;
  created_at: ColumnType<Date, Date | undefined, never>;
}

/** An order's account at inventory: its first outcome, and whether a release has closed it. */
export interface OrderAccountTable {
  order_id: string;
  outcome: "applied" | "rejected" | "released" | "held";
  lines: ColumnType<OrderLine[], string, string>;
  rejected_lines: ColumnType<LineRejection[] | null, string | null, string | null>;
  released_at: Date | null;
  /** A hold's deadline; null for a sale. */
  hold_expires_at: Date | null;
  /** How a hold ended: paid (`sold`), `expired`, or `cancelled`; null while live. */
  settled: "sold" | "expired" | "cancelled" | null;
  settled_at: Date | null;
  created_at: ColumnType<Date, Date | undefined, never>;
}

/** Idempotency keys of inventory's own writes (adjust, restock), with the answer to replay. */
export interface RequestKeyTable {
  scope: string;
  key: string;
  fingerprint: string;
  response_status: number;
  response_body: string;
  created_at: ColumnType<Date, Date | undefined, Date>;
  expires_at: Date;
}

/** `stock.low` events, written by a trigger (migration 0004). */
export interface StockOutboxTable {
  id: Generated<string>;
  event_id: string;
  type: "stock.low";
  item_id: string;
  data: unknown;
  xid: Generated<string>;
  created_at: ColumnType<Date, Date | undefined, never>;
}

export interface InventoryTables {
  "inventory.inventory": InventoryTable;
  "inventory.movements": MovementTable;
  "inventory.order_accounts": OrderAccountTable;
  "inventory.request_keys": RequestKeyTable;
  "inventory.outbox_events": StockOutboxTable;
}

export const INVENTORY_TABLES = ["inventory.inventory", "inventory.movements", "inventory.order_accounts", "inventory.request_keys", "inventory.outbox_events"] as const;
