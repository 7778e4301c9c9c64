/**
 * The inventory module's only door. Other modules import from here and nowhere else
 * (`tests/module-boundaries.test.ts` fails the build otherwise).
 */
import { Elysia, type AnyElysia } from "elysia";
import type { Database } from "../../platform/db.ts";
import type { GroupCommitSettings } from "../../platform/group-commit.ts";
import { migrateModule } from "../../migrations/index.ts";
import { createInProcessInventory } from "./adapters/in-process.ts";
import type { InventoryPort } from "./inventory.port.ts";
import { InventoryService, seedCatalog, type StockMovement } from "./internal/inventory.service.ts";
import { inventoryRoutes, type RouteGuard } from "./internal/inventory.routes.ts";
import { INVENTORY_TABLES } from "./internal/inventory.tables.ts";
import { INVENTORY_SCHEMAS as ITEM_SCHEMAS } from "./internal/inventory.model.ts";
import { LEDGER_SCHEMAS } from "./internal/ledger.model.ts";
import { LedgerService } from "./internal/ledger.service.ts";
import { ledgerRoutes } from "./internal/ledger.routes.ts";
import { LedgerReconciler } from "./internal/drift.ts";

export * from "./inventory.port.ts";
export { INVENTORY_LIMITS, ItemId, linesProblem } from "./inventory.rules.ts";
export type { LedgerCheck, DriftedItem, LedgerReconciler } from "./internal/drift.ts";
export { MOVEMENT_TYPES, type MovementType } from "./internal/inventory.tables.ts";

/** The schemas inventory's routes refer to by name in the OpenAPI document. */
export const INVENTORY_SCHEMAS = { ...ITEM_SCHEMAS, ...LEDGER_SCHEMAS } as const;
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
  /** How long an `Idempotency-Key` of an admin write (restock, adjust) is remembered; default 24 h. */
  keyTtlMs?: number;
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
  /**
   * The drift alarm: `ledger.start(60_000)` checks quantity = Σ movements for every item now and
   * every minute; `ledger.onCheck((c) => gauge.set(c.drifted.length))`. It never changes stock.
   */
  readonly ledger: LedgerReconciler;
}

export function createInventoryModule(deps: InventoryModuleDeps): InventoryModule {
  const service = new InventoryService(deps.database, deps.groupCommit);
  const ledger = new LedgerService(deps.database, (m) => service.emit(m), { keyTtlMs: deps.keyTtlMs ?? 86_400_000 });
  return {
    port: createInProcessInventory(service),
    routes: new Elysia({ name: "inventory-module" })
      .use(inventoryRoutes(service, deps.adminGuard, deps.serviceGuard ?? deps.adminGuard))
      .use(ledgerRoutes(ledger, deps.adminGuard)),
    tables: INVENTORY_TABLES,
    migrate: () => migrateModule(deps.database.db, "inventory"),
    seedDemoCatalog: () => seedCatalog(service),
    onMovement: (listener) => service.onMovement(listener),
    ledger: new LedgerReconciler(deps.database),
  };
}
