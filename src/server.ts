import type { Config } from "./config.ts";
import { systemClock, type Clock } from "./platform/clock.ts";
import { openDatabase, tablesAnswer, type Database } from "./platform/db.ts";
import { createLogger, type Logger } from "./platform/logging.ts";
import { createMetrics, type Metrics } from "./platform/metrics.ts";
import { createKeyValueStore } from "./platform/kv/index.ts";
import { createRetryQueue } from "./platform/queue/index.ts";
import { hostname } from "node:os";
import type { KeyValueStore } from "./platform/kv/kv.port.ts";
import { ResponseTimeWindow } from "./platform/response-window.ts";
import { BUN_MAX_REQUEST_BODY_SIZE, createApp, createFetch, withSecurityHeaders } from "./http/app.ts";
import { problem } from "./http/problem.ts";
import { createRateLimitGate } from "./http/rate-limit.ts";
import { createAdminGuard, createServiceGuard, serviceToken } from "./http/app-context.ts";
import { runChecks, type HealthCheck, type HealthRegistry } from "./http/health.ts";
import { pendingMigrations, type MigratedModule } from "../migrations/index.ts";
import {
  createHttpInventory,
  createInventoryModule,
  InventoryMisconfiguredError,
  InventoryUnavailableError,
  type InventoryPort,
} from "../modules/inventory/index.ts";
import { groupCommitLimits } from "./platform/group-commit.ts";
import { createOrdersModule, type OrdersModule } from "../modules/orders/index.ts";
import { createViews, type ChaosControl } from "../views/index.ts";
import { createChaosControl } from "../views/chaos-control.ts";
import { createInventoryPolicy, type InventoryPolicy } from "./platform/resilience/inventory-policy.ts";
import { Elysia, type AnyElysia } from "elysia";
import { createChaosInjector } from "../chaos/injector.ts";
import { withChaos } from "../chaos/in-process.ts";
import { chaosHttp } from "../chaos/http-middleware.ts";
import { chaosAdminRoutes } from "../chaos/chaos.routes.ts";

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

/** Readiness of a module's schema: every migration applied, every table answering. */
function schemaCheck(database: Database, module: MigratedModule, tables: readonly string[]): HealthCheck {
  return async () => {
    const pending = await pendingMigrations(database.db, module);
    if (pending.length) return { ok: false, detail: `pending migrations: ${pending.join(", ")}` };
    await tablesAnswer(database, tables);
    return { ok: true };
  };
}

/**
 * Split mode: a token or URL that inventory refuses is this process's configuration fault, not
 * an outage. Orders stay safely queued meanwhile, so the signal must come from here: an error
 * log saying what to fix (at most once a minute while it lasts), a counter, and readiness red,
 * probed with the same token and base URL the calls use. Inventory being down or slow is no
 * reason to take this replica out of service: readiness stays green and `/health/deep` tells.
 */
function watchInventoryConfig(
  inventory: InventoryPort,
  policy: InventoryPolicy,
  o: { metrics: Metrics; logger: Logger; health: HealthRegistry; timeoutMs: number },
): void {
  let lastLogged = -Infinity;
  let suppressed = 0;
  policy.onFailure(({ error }) => {
    if (!(error instanceof InventoryMisconfiguredError)) return;
    o.metrics.inventoryMisconfigured.labels(String(error.status)).inc();
    const now = Date.now();
    if (now - lastLogged < 60_000) {
      suppressed++;
      return;
    }
    o.logger.error({ status: error.status, suppressed }, error.message);
    lastLogged = now;
    suppressed = 0;
  });
  o.health.ready.inventory_config = async () => {
    try {
      await inventory.health({ signal: AbortSignal.timeout(Math.min(o.timeoutMs, 1_500)) });
      return { ok: true };
    } catch (err) {
      if (err instanceof InventoryMisconfiguredError) return { ok: false, detail: err.message };
      if (err instanceof InventoryUnavailableError) return { ok: true, detail: `inventory not reached (${err.kind}); not a configuration fault` };
      throw err;
    }
  };
}

/**
 * The composition root: builds the platform adapters the config asks for, the modules this role
 * hosts, and the HTTP server. Shared by `main.ts` and the end-to-end tests.
 */
export async function startServer(config: Config, opts: { logger?: Logger; clock?: Clock } = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger(config.logLevel, { role: config.role });
  const metrics = createMetrics();
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
    const mod = createInventoryModule({ database, adminGuard, serviceGuard: createServiceGuard(config), groupCommit });
    await mod.migrate();
    if (config.seedCatalog) await mod.seedDemoCatalog();
    // In `all` mode the decorator fails the in-process port the way the HTTP edge fails in split mode.
    inventory = withChaos(mod.port, chaos);
    if (config.role === "inventory") plugins.push(chaosHttp(chaos));
    plugins.push(mod.routes);
    health.ready.inventory_schema = schemaCheck(database, "inventory", mod.tables);
    mod.onMovement((m) => {
      metrics.inventoryTransactions.labels(m.type).inc();
      if (m.remaining !== null && m.item_id) metrics.stockLevel.labels(m.item_id).set(m.remaining);
    });
    for (const item of await mod.port.list()) metrics.stockLevel.labels(item.item_id).set(item.quantity);
  }

  let ordersService: OrdersModule["service"] | undefined;
  let breaker: InventoryPolicy | undefined;
  if (hostsOrders) {
    // Split mode: the same port, over HTTP, to the inventory role at INVENTORY_URL.
    if (!inventory) inventory = createHttpInventory(config.inventoryUrl!, { token: serviceToken(config) });
    // One policy per process, shared by the request path and the retry worker.
    const policy = createInventoryPolicy({ timeoutMs: config.inventoryTimeoutMs, halfOpenAfterMs: config.breakerHalfOpenMs });
    const BREAKER_CODE = { closed: 0, open: 1, "half-open": 2 } as const;
    metrics.breakerState.set(0);
    policy.onStateChange(({ from, to }) => {
      metrics.breakerState.set(BREAKER_CODE[to]);
      metrics.breakerTransitions.labels(from, to).inc();
      logger.warn({ from, to }, "inventory circuit breaker changed state");
    });
    health.deep.inventory = async () => {
      const h = await policy.execute((signal) => inventory!.health({ signal }));
      return { ok: h.ok, checks: h.checks };
    };
    if (config.role === "orders") watchInventoryConfig(inventory, policy, { metrics, logger, health, timeoutMs: config.inventoryTimeoutMs });
    health.deep.circuit_breaker = async () => ({ ok: !policy.isOpen(), state: policy.state });
    const queue = createRetryQueue({
      redisUrl: config.redisUrl,
      database,
      consumer: `${hostname()}-${process.pid}`,
      prefix: "valerix:",
      visibilityTimeoutMs: config.retryVisibilityTimeoutMs,
      redisClientName,
    });
    const orders = createOrdersModule({
      database,
      inventory,
      kv,
      policy,
      enqueue: (orderId, requestId) => queue.enqueue({ orderId, attempt: 0, requestId: requestId ?? undefined }),
      idempotencyTtlS: config.idempotencyTtlS,
      // A live request holds its key for one inventory call and a few statements.
      inFlightLeaseMs: config.inventoryTimeoutMs + 2_000,
      onError,
      groupCommit,
    });
    await orders.migrate();
    plugins.push(orders.routes);
    ordersService = orders.service;
    breaker = policy;
    const worker = orders.createRetryWorker({
      queue,
      onError,
      maxAttempts: config.retryMaxAttempts,
      baseDelayMs: config.retryBaseDelayMs,
      maxDelayMs: config.retryMaxDelayMs,
      strandedAfterMs: config.sweepStrandedAfterMs,
      leaseMs: config.retryVisibilityTimeoutMs,
      sweepIntervalMs: Math.min(5_000, config.sweepStrandedAfterMs),
    });
    worker.onResult((r) => {
      metrics.retries.labels(r).inc();
      if (r === "dead_letter") metrics.deadLetters.inc();
    });
    worker.start();
    stoppers.push(async () => {
      await worker.stop();
      await queue.close().catch(() => {});
    });
    health.ready.retry_queue = async () => {
      const d = await queue.depth();
      return { ok: true, kind: queue.kind, ...d };
    };
    health.ready.orders_schema = schemaCheck(database, "orders", orders.tables);
    orders.onOutcome((e) => {
      metrics.orderDuration.labels(e.outcome).observe(e.durationMs / 1000);
      metrics.ordersTotal.labels(e.outcome).inc();
      if (e.cacheHit) metrics.idempotencyCacheHits.inc();
      if (e.outcome === "queued") metrics.fallbacks.labels("inventory_unavailable").inc();
    });
    const refreshStates = async () => {
      const counts = await orders.countByStatus();
      for (const [status, n] of Object.entries(counts)) metrics.ordersByState.labels(status).set(n);
      metrics.ordersPending.set(counts.pending + counts.queued);
      const d = await queue.depth();
      metrics.queueDepth.labels("ready").set(d.ready);
      metrics.queueDepth.labels("in_flight").set(d.inFlight);
      metrics.queueDepth.labels("dead").set(d.deadLetters);
    };
    // Counting orders by state scans the orders table: only when scraped, at most every 5 s.
    metrics.refreshOnScrape(refreshStates);
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
        config: { adminToken: config.adminToken, nodeEnv: config.nodeEnv, csrfSecret: config.csrfSecret },
        clock: opts.clock,
        onError,
      }),
    );
  }

  // Readiness as a metric too, so an alert can fire on it without scraping /health/ready.
  const refreshReadiness = async () => metrics.readiness.set((await runChecks(health.ready)).ok ? 1 : 0);
  await refreshReadiness().catch(() => metrics.readiness.set(0));
  const readinessTimer = setInterval(() => void refreshReadiness().catch(() => metrics.readiness.set(0)), 5_000);
  readinessTimer.unref?.();
  stoppers.push(() => clearInterval(readinessTimer));

  let draining = false;
  const app = createApp({ logger, metrics, health, plugins, role: config.role });
  const fetch = createFetch(app, { logger, metrics }, {
    isDraining: () => draining,
    onFinished: ({ route, method, durationMs }) => {
      if (method === "POST" && route === "/api/orders/") window.record(durationMs);
    },
    gate: createRateLimitGate(config.rateLimitPerMin, systemClock, { trustedProxies: config.trustedProxies }),
    adminGuard,
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
  logger.info({ port: server.port, role: config.role, database: database.kind, kv: kv.kind, start_ms: Math.round(performance.now() - started) }, "valerix listening");

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
