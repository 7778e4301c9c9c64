import type { ColumnType, Generated } from "kysely";
import type { LineRejection, OrderLine } from "../inventory.port.ts";

export interface InventoryTable {
  item_id: string;
  item_name: string;
  quantity: number;
  reserved_quantity: Generated<number>;
  created_at: ColumnType<Date, Date | undefined, never>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

export const MOVEMENT_TYPES = ["create", "deduct", "release", "restock", "adjust"] as const;
export type MovementType = (typeof MOVEMENT_TYPES)[number];

/** The ledger: one row per change of an item's quantity. */
export interface MovementTable {
  id: Generated<number>;
  item_id: string;
  type: MovementType;
  quantity_change: number;
  order_id: string | null;
  reason: string | null;
  created_at: ColumnType<Date, Date | undefined, never>;
}

/** An order's account at inventory: its first outcome, and whether a release has closed it. */
export interface OrderAccountTable {
  order_id: string;
  outcome: "applied" | "rejected" | "released";
  lines: ColumnType<OrderLine[], string, string>;
  rejected_lines: ColumnType<LineRejection[] | null, string | null, string | null>;
  released_at: Date | null;
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

export interface InventoryTables {
  "inventory.inventory": InventoryTable;
  "inventory.movements": MovementTable;
  "inventory.order_accounts": OrderAccountTable;
  "inventory.request_keys": RequestKeyTable;
}

export const INVENTORY_TABLES = ["inventory.inventory", "inventory.movements", "inventory.order_accounts", "inventory.request_keys"] as const;
