/**
 * The inventory module's only door. Other modules import from here and nowhere else
 * (`tests/module-boundaries.test.ts` fails the build otherwise).
 */
import type { Database } from "../../platform/db.ts";
import type { GroupCommitSettings } from "../../platform/group-commit.ts";
import { migrateModule } from "../../migrations/index.ts";
import { createInProcessInventory } from "./adapters/in-process.ts";
import { InventoryService, seedCatalog, type StockMovement } from "./internal/inventory.service.ts";
import { inventoryRoutes, type RouteGuard } from "./internal/inventory.routes.ts";
import { INVENTORY_TABLES } from "./internal/inventory.tables.ts";

export * from "./inventory.port.ts";
export { INVENTORY_LIMITS, ItemId } from "./inventory.rules.ts";
export { createHttpInventory } from "./adapters/http-client.ts";
export type { StockMovement } from "./internal/inventory.service.ts";
export type { RouteGuard } from "./internal/inventory.routes.ts";
export { DEMO_CATALOG } from "./internal/inventory.service.ts";

export interface InventoryModuleDeps {
  database: Database;
  adminGuard: RouteGuard;
  /** Guards the internal write routes (deduct, release) that the orders role calls over HTTP. */
  serviceGuard?: RouteGuard;
  /** Group commit for deductions (default: `groupCommitLimits` for the database). */
  groupCommit?: GroupCommitSettings;
}

export function createInventoryModule(deps: InventoryModuleDeps) {
  const service = new InventoryService(deps.database, deps.groupCommit);
  return {
    /** The in-process adapter of InventoryPort. */
    port: createInProcessInventory(service),
    routes: inventoryRoutes(service, deps.adminGuard, deps.serviceGuard ?? deps.adminGuard),
    tables: INVENTORY_TABLES,
    migrate: () => migrateModule(deps.database.db, "inventory"),
    seedDemoCatalog: () => seedCatalog(service),
    onMovement: (listener: (m: StockMovement) => void) => service.onMovement(listener),
    transactionCounts: () => service.transactionCounts(),
    health: () => service.health(),
  };
}

export type InventoryModule = ReturnType<typeof createInventoryModule>;
