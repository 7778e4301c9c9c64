import { hostname } from "node:os";
import type { Config } from "./config.ts";
import { systemClock, type Clock } from "../platform/clock.ts";
import { openDatabase, type Database } from "../platform/db.ts";
import { createLogger, type Logger } from "../platform/logging.ts";
import { createMetrics, type Metrics } from "../platform/metrics.ts";
import { createKeyValueStore } from "../platform/kv/index.ts";
import type { KeyValueStore } from "../platform/kv/kv.port.ts";
import { ResponseTimeWindow } from "../platform/response-window.ts";
import { groupCommitLimits } from "../platform/group-commit.ts";
import { BUN_MAX_REQUEST_BODY_SIZE, createApp, createFetch, withSecurityHeaders } from "./http/app.ts";
import { problem } from "./http/problem.ts";
import { createRateLimitGate } from "./http/rate-limit.ts";
import { createAdminGuard } from "./http/guards.ts";
import { createCors } from "./http/cors.ts";
import { logStartup } from "./startup-log.ts";
import { VERSION } from "./version.ts";
import type { HealthRegistry } from "./http/health.ts";
import { INVENTORY_SCHEMAS, type InventoryPort } from "../modules/inventory/index.ts";
import { ORDER_SCHEMAS, type InventoryPolicy, type OrdersModule, type WebhookService } from "../modules/orders/index.ts";
import { createViews, type ChaosControl } from "../views/index.ts";
import { createChaosControl } from "../views/chaos-control.ts";
import { Elysia, type AnyElysia } from "elysia";
import { createChaosInjector } from "../chaos/injector.ts";
import { chaosAdminRoutes } from "../chaos/chaos.routes.ts";
import { composeInventory } from "./compose/inventory.ts";
import { composeOrders, type OrdersSide } from "./compose/orders.ts";
import { watchReadiness } from "./compose/observability.ts";

export interface RunningServer {
  url: string;
  port: number;
  config: Config;
  database: Database;
  kv: KeyValueStore;
  metrics: Metrics;
  logger: Logger;
  window: ResponseTimeWindow;
  /** What this role hosts, for tests and tools that drive the modules directly. */
  inventory: InventoryPort | undefined;
  orders: OrdersModule["service"] | undefined;
  chaos: ChaosControl;
  /** Graceful: stop taking requests, finish what is held, close connections. */
  stop(): Promise<void>;
}

/**
 * The composition root: builds the platform adapters the config asks for, then assembles the
 * sides this role hosts (`compose/inventory.ts`, `compose/orders.ts`; metrics and readiness in
 * `compose/observability.ts`) and the HTTP server. Shared by `main.ts` and the end-to-end tests.
 */
export async function startServer(config: Config, opts: { logger?: Logger; clock?: Clock } = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger(config.logLevel, { role: config.role });
  const metrics = createMetrics({ clock: opts.clock, version: VERSION });
  const window = new ResponseTimeWindow(config.healthWindowS * 1000, opts.clock);
  const hostsInventory = config.role === "all" || config.role === "inventory";
  const hostsOrders = config.role === "all" || config.role === "orders";

  const started = performance.now();
  const stoppers: Array<() => unknown> = [];
  // One name per process for its Redis and PostgreSQL connections, so an operator can tell them
  // apart in CLIENT LIST and pg_stat_activity (PostgreSQL keeps 63 bytes of application_name).
  const redisClientName = `valerix:${hostname()}-${process.pid}`;
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.databasePoolSize,
    applicationName: `valerix:${config.role}:${hostname()}-${process.pid}`.slice(0, 63),
    onConnectionError: (err) => logger.warn({ err: { message: err.message, code: (err as { code?: unknown }).code } }, "database connection lost; the pool replaces it"),
  });
  const kv = createKeyValueStore({
    redisUrl: config.redisUrl,
    redisToken: config.redisToken,
    prefix: "valerix:",
    clientName: `${redisClientName}:kv`,
  });
  const adminGuard = createAdminGuard(config);
  const onError = (err: unknown, context: string) => logger.warn({ err, context }, "recovered error");

  const health: HealthRegistry = {
    role: config.role,
    ready: {
      database: async () => {
        await database.ping();
        return { ok: true, kind: database.kind };
      },
    },
    deep: {},
  };
  if (config.redisUrl) {
    health.ready.redis = async () => {
      const key = `health:${crypto.randomUUID()}`;
      await kv.ping();
      await kv.set(key, "1", { ttlMs: 10_000 });
      await kv.del(key);
      return { ok: true, kind: kv.kind };
    };
  }

  // Chaos lives at inventory's inbound edge; its config sits in the key-value store so every
  // replica (and the orders role's admin API) sees the same experiment.
  const chaos = createChaosInjector({ kv });
  chaos.onEvent((e) => metrics.chaosEvents.labels(e.type).inc());
  const plugins: AnyElysia[] = [new Elysia({ name: "chaos-admin" }).onBeforeHandle(adminGuard).use(chaosAdminRoutes(chaos))];
  let inventory: InventoryPort | undefined;
  const groupCommit = {
    ...groupCommitLimits(database.kind, { maxBatch: config.groupCommitMaxBatch, maxInFlight: config.groupCommitInFlight }),
    onBatch: (statement: string, size: number) => metrics.groupCommitBatchOrders.labels(statement).observe(size),
  };
  if (hostsInventory) {
    const side = await composeInventory({ config, database, adminGuard, groupCommit, chaos, health, metrics, logger });
    inventory = side.port;
    plugins.push(...side.plugins);
    stoppers.push(() => side.stop());
  }

  let ordersService: OrdersModule["service"] | undefined;
  let breaker: InventoryPolicy | undefined;
  let webhookService: WebhookService | undefined;
  let webhookRelay: OrdersSide["webhookRelay"];
  if (hostsOrders) {
    const side = await composeOrders({ config, database, kv, inventory, groupCommit, health, metrics, logger, onError, redisClientName, adminGuard });
    inventory = side.inventory;
    ordersService = side.service;
    breaker = side.breaker;
    webhookService = side.webhooks;
    webhookRelay = side.webhookRelay;
    plugins.push(...side.plugins);
    stoppers.push(() => side.stop());
  }

  const chaosControl = createChaosControl(chaos);
  if (inventory) {
    plugins.push(
      createViews({
        window,
        windowSeconds: config.healthWindowS,
        orders: ordersService,
        inventory,
        health,
        breaker,
        chaos: chaosControl,
        webhooks: webhookService,
        webhookBreakers: webhookRelay,
        config: { adminToken: config.adminToken, nodeEnv: config.nodeEnv, csrfSecret: config.csrfSecret },
        clock: opts.clock,
        onError,
      }),
    );
  }

  stoppers.push(await watchReadiness(health, metrics));

  let draining = false;
  const schemas = { ...(hostsInventory ? INVENTORY_SCHEMAS : {}), ...(hostsOrders ? ORDER_SCHEMAS : {}) };
  const app = createApp({ logger, metrics, health, plugins, role: config.role, schemas });
  const fetch = createFetch(app, { logger, metrics }, {
    isDraining: () => draining,
    onFinished: ({ route, method, durationMs }) => {
      if (method === "POST" && route === "/api/orders") window.record(durationMs);
    },
    gate: createRateLimitGate(config.rateLimitPerMin, systemClock, { trustedProxies: config.trustedProxies }),
    adminGuard,
    cors: createCors(config.corsOrigins),
  });
  const server = Bun.serve({
    port: config.port,
    hostname: config.host,
    // createFetch enforces the 1 MiB limit itself, as a problem+json 413; Bun's own is a bare 413.
    maxRequestBodySize: BUN_MAX_REQUEST_BODY_SIZE,
    idleTimeout: 30,
    fetch,
    error(err) {
      logger.error({ err }, "server error");
      return withSecurityHeaders(problem("internal_error", "An unexpected error occurred; it has been logged."));
    },
  });
  logStartup(logger, config, { port: server.port, database: database.kind, kv: kv.kind, startMs: performance.now() - started });

  return {
    url: `http://127.0.0.1:${server.port}`,
    port: server.port!,
    config,
    database,
    kv,
    metrics,
    logger,
    window,
    inventory,
    orders: ordersService,
    chaos: chaosControl,
    async stop() {
      draining = true;
      // Bun finishes in-flight requests before resolving when not forced.
      await server.stop(false);
      for (const s of stoppers.splice(0)) await s();
      await kv.close().catch(() => {});
      await database.close();
    },
  };
}
