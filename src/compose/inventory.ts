import type { AnyElysia } from "elysia";
import type { Database } from "../../platform/db.ts";
import type { GroupCommitSettings } from "../../platform/group-commit.ts";
import type { Metrics } from "../../platform/metrics.ts";
import type { Logger } from "../../platform/logging.ts";
import { createInventoryModule, type InventoryPort } from "../../modules/inventory/index.ts";
import type { ChaosInjector } from "../../chaos/injector.ts";
import { withChaos } from "../../chaos/in-process.ts";
import { chaosHttp } from "../../chaos/http-middleware.ts";
import type { Config } from "../config.ts";
import type { HealthRegistry } from "../http/health.ts";
import { createServiceGuard, type AdminGuard } from "../http/guards.ts";
import { ledgerHealth, observeInventory, observeLedger, schemaCheck } from "./observability.ts";

export interface InventorySide {
  /** The port the rest of this process calls: in-process, behind the chaos decorator. */
  port: InventoryPort;
  /** What to mount: chaos's HTTP edge (inventory role only) and inventory's routes. */
  plugins: AnyElysia[];
  /** Stops the ledger check; resolves once a running one has finished. */
  stop(): Promise<void>;
}

/**
 * The inventory side of a process (roles `all` and `inventory`): the module on this database,
 * migrated and seeded, with chaos at its inbound edge.
 */
export async function composeInventory(ctx: {
  config: Config;
  database: Database;
  adminGuard: AdminGuard;
  groupCommit: GroupCommitSettings;
  chaos: ChaosInjector;
  health: HealthRegistry;
  metrics: Metrics;
  logger: Logger;
}): Promise<InventorySide> {
  const { config, database, adminGuard, groupCommit, chaos, health, metrics, logger } = ctx;
  const plugins: AnyElysia[] = [];
  const mod = createInventoryModule({
    database,
    adminGuard,
    serviceGuard: createServiceGuard(config),
    groupCommit,
    keyTtlMs: config.idempotencyTtlS * 1000,
  });
  await mod.migrate();
  if (config.seedCatalog) await mod.seedDemoCatalog();
  // In `all` mode the decorator fails the in-process port the way the HTTP edge fails in split mode.
  const port = withChaos(mod.port, chaos);
  if (config.role === "inventory") plugins.push(chaosHttp(chaos));
  plugins.push(mod.routes);
  health.ready.inventory_schema = schemaCheck(database, "inventory", mod.tables);
  await observeInventory(mod, metrics);
  // Drift is an alarm: a gauge and a red /health/deep, never a correction.
  if (config.ledgerCheckIntervalS > 0) {
    observeLedger(mod.ledger, metrics, logger);
    health.deep.inventory_ledger = ledgerHealth(mod.ledger);
    mod.ledger.start(config.ledgerCheckIntervalS * 1000);
  }
  return { port, plugins, stop: () => mod.ledger.stop() };
}
