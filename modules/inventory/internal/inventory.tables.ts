import type { ColumnType, Generated } from "kysely";

export interface InventoryTable {
  item_id: string;
  item_name: string;
  quantity: number;
  reserved_quantity: Generated<number>;
  created_at: ColumnType<Date, Date | undefined, never>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

export interface InventoryTransactionTable {
  id: Generated<number>;
  order_id: string | null;
  item_id: string;
  type: "deduct" | "release" | "restock" | "create";
  quantity_change: number;
  outcome: Generated<"applied" | "unknown_item" | "insufficient_stock" | "released">;
  created_at: ColumnType<Date, Date | undefined, never>;
}

export interface InventoryTables {
  "inventory.inventory": InventoryTable;
  "inventory.inventory_transactions": InventoryTransactionTable;
}

export const INVENTORY_TABLES = ["inventory.inventory", "inventory.inventory_transactions"] as const;
