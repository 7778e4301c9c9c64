import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../../src/platform/db.ts";
import { createLogger } from "../../src/platform/logging.ts";
import { createMetrics } from "../../src/platform/metrics.ts";
import { createMemoryStore } from "../../src/platform/kv/memory.ts";
import { ResponseTimeWindow } from "../../src/platform/response-window.ts";
import { createInventoryPolicy, type InventoryPolicy, type InventoryPolicyOptions } from "../../src/platform/resilience/inventory-policy.ts";
import type { Clock } from "../../src/platform/clock.ts";
import { createApp, createFetch } from "../../src/http/app.ts";
import { createAdminGuard } from "../../src/http/app-context.ts";
import type { HealthRegistry } from "../../src/http/health.ts";
import { createInventoryModule, type InventoryModule } from "../../modules/inventory/index.ts";
import { createOrdersModule, type OrdersModule } from "../../modules/orders/index.ts";
import { createViews } from "../../views/index.ts";
import { createTestChaos, type TestChaos } from "./test-chaos.ts";
import { createTestDatabase, hasPostgres } from "../support/services.ts";

export interface UiSystemOptions {
  /** PGlite (what the binary uses by default, seconds to initialise) or the real PostgreSQL. Default pglite. */
  backend?: "pglite" | "postgres";
  /** Length of the latency window behind the banner; short in tests so recovery is quick. */
  windowMs?: number;
  adminToken?: string;
  nodeEnv?: string;
  /** The clock of the pages (sparkline slots, "5 s ago") and of the test chaos injector; the screenshot script runs it ahead. */
  clock?: Clock;
  policy?: InventoryPolicyOptions;
}

/** The quickest backend at hand, for suites that test the pages rather than the storage. */
export const FAST_BACKEND: "pglite" | "postgres" = hasPostgres ? "postgres" : "pglite";

export interface UiSystem {
  url: string;
  origin: string;
  window: ResponseTimeWindow;
  chaos: TestChaos;
  inventory: InventoryModule;
  orders: OrdersModule;
  policy: InventoryPolicy;
  stop(): Promise<void>;
}

/**
 * The `all` role with the pages, composed the way the composition root does it (database,
 * inventory, orders behind the call policy, the API, the pages), on PGlite in a fresh folder and
 * port 0. One difference, on purpose: the inventory port the order service calls is wrapped by
 * the test chaos injector (`test-chaos.ts`), and that injector is what the chaos page drives.
 */
export async function startUiSystem(opts: UiSystemOptions = {}): Promise<UiSystem> {
  const pg = opts.backend === "postgres" ? await createTestDatabase() : undefined;
  const dataDir = pg ? undefined : mkdtempSync(join(tmpdir(), "valerix-ui-"));
  const logger = createLogger("silent");
  const metrics = createMetrics();
  const database = await openDatabase({ databaseUrl: pg?.url, dataDir: dataDir ?? "" });
  const kv = createMemoryStore();
  const config = { adminToken: opts.adminToken, nodeEnv: opts.nodeEnv ?? "test" };
  const adminGuard = createAdminGuard(config);
  const windowMs = opts.windowMs ?? 30_000;
  const window = new ResponseTimeWindow(windowMs);
  const onError = (err: unknown, context: string) => logger.warn({ err, context }, "recovered error");

  const inventory = createInventoryModule({ database, adminGuard });
  await inventory.migrate();
  await inventory.seedDemoCatalog();
  const chaos = createTestChaos(inventory.port, opts.clock);
  const policy = createInventoryPolicy(opts.policy);
  const orders = createOrdersModule({ database, inventory: chaos.port, kv, policy, idempotencyTtlS: 86_400, onError });
  await orders.migrate();

  const health: HealthRegistry = {
    role: "all",
    ready: {
      database: async () => {
        await database.ping();
        return { ok: true, kind: database.kind };
      },
    },
    deep: {
      inventory: async () => {
        const h = await chaos.port.health();
        return { ok: h.ok, kind: "in-process" };
      },
    },
  };

  const views = createViews({
    window,
    windowSeconds: Math.round(windowMs / 1000),
    orders: orders.service,
    inventory: chaos.port,
    health,
    breaker: policy,
    chaos: chaos.control,
    config,
    onError,
    clock: opts.clock,
  });
  const app = createApp({ logger, metrics, health, plugins: [inventory.routes, orders.routes, views], role: "all" });
  const fetch = createFetch(app, { logger, metrics }, {
    isDraining: () => false,
    onFinished: ({ route, method, durationMs }) => {
      if (method === "POST" && route === "/api/orders/") window.record(durationMs);
    },
  });
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch });
  const url = `http://127.0.0.1:${server.port}`;
  return {
    url,
    origin: url,
    window,
    chaos,
    inventory,
    orders,
    policy,
    async stop() {
      await server.stop(true);
      await database.close();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      await pg?.drop();
    },
  };
}
