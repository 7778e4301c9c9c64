/**
 * The inventory module's only door. Other modules import from here and nowhere else
 * (`tests/module-boundaries.test.ts` fails the build otherwise).
 */
import type { AnyElysia } from "elysia";
import type { Database } from "../../platform/db.ts";
import type { GroupCommitSettings } from "../../platform/group-commit.ts";
import { migrateModule } from "../../migrations/index.ts";
import { createInProcessInventory } from "./adapters/in-process.ts";
import type { InventoryPort } from "./inventory.port.ts";
import { InventoryService, seedCatalog, type StockMovement } from "./internal/inventory.service.ts";
import { inventoryRoutes, type RouteGuard } from "./internal/inventory.routes.ts";
import { INVENTORY_TABLES } from "./internal/inventory.tables.ts";

export * from "./inventory.port.ts";
export { INVENTORY_LIMITS, ItemId, linesProblem } from "./inventory.rules.ts";
export { INVENTORY_SCHEMAS } from "./internal/inventory.model.ts";
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

/** What the composition root gets from `createInventoryModule`. */
export interface InventoryModule {
  /** The in-process adapter of InventoryPort. */
  readonly port: InventoryPort;
  /** `/api/inventory` (reads, the internal deduct and release) and `/api/admin/inventory`. */
  readonly routes: AnyElysia;
  /** The tables this module owns, for readiness checks. */
  readonly tables: readonly string[];
  /** Applies this module's pending migrations; resolves to the names applied. */
  migrate(): Promise<string[]>;
  /** Creates the demo catalog when no item exists yet; resolves to the number of items created. */
  seedDemoCatalog(): Promise<number>;
  /** `inventory.onMovement((m) => gauge.set(m.remaining))`: every applied stock movement; returns an unsubscribe. */
  onMovement(listener: (m: StockMovement) => void): () => void;
}

export function createInventoryModule(deps: InventoryModuleDeps): InventoryModule {
  const service = new InventoryService(deps.database, deps.groupCommit);
  return {
    port: createInProcessInventory(service),
    routes: inventoryRoutes(service, deps.adminGuard, deps.serviceGuard ?? deps.adminGuard),
    tables: INVENTORY_TABLES,
    migrate: () => migrateModule(deps.database.db, "inventory"),
    seedDemoCatalog: () => seedCatalog(service),
    onMovement: (listener) => service.onMovement(listener),
  };
}
