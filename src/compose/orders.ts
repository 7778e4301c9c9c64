import { hostname } from "node:os";
import type { AnyElysia } from "elysia";
import type { Database } from "../../platform/db.ts";
import type { GroupCommitSettings } from "../../platform/group-commit.ts";
import type { KeyValueStore } from "../../platform/kv/kv.port.ts";
import type { Logger } from "../../platform/logging.ts";
import type { Metrics } from "../../platform/metrics.ts";
import { createRetryQueue } from "../../platform/queue/index.ts";
import { createHttpInventory, InventoryMisconfiguredError, InventoryUnavailableError, type InventoryPort } from "../../modules/inventory/index.ts";
import { createInventoryPolicy, createOrdersModule, type InventoryPolicy, type Orders, type WebhookRelay, type WebhookService } from "../../modules/orders/index.ts";
import type { Config } from "../config.ts";
import type { HealthRegistry } from "../http/health.ts";
import { serviceToken, type AdminGuard } from "../http/guards.ts";
import { observeBreaker, observeOrders, schemaCheck } from "./observability.ts";

export interface OrdersSide {
  service: Orders;
  /** Subscriptions and deliveries, for the Webhooks page. */
  webhooks: WebhookService;
  /** The relay running in this process (absent with WEBHOOK_RELAY=false), for the page's breaker column. */
  webhookRelay: Pick<WebhookRelay, "openEndpoints"> | undefined;
  /** The port orders call: the in-process one handed in, or the HTTP adapter in split mode. */
  inventory: InventoryPort;
  breaker: InventoryPolicy;
  plugins: AnyElysia[];
  /** Stops the retry worker and closes the queue. */
  stop(): Promise<void>;
}

/**
 * The order path, wired in one place (roles `all` and `orders`): which inventory adapter orders
 * call, the call policy in front of it, where a queued order is enqueued, and the retry worker
 * that finishes it. Read `modules/orders/internal/order.service.ts` next for what one order does.
 */
export async function composeOrders(ctx: {
  config: Config;
  database: Database;
  kv: KeyValueStore;
  /** The in-process port when this process hosts inventory too. */
  inventory: InventoryPort | undefined;
  groupCommit: GroupCommitSettings;
  health: HealthRegistry;
  metrics: Metrics;
  logger: Logger;
  onError: (err: unknown, context: string) => void;
  /** The process's name for its Redis connections (CLIENT LIST). */
  redisClientName: string;
  adminGuard: AdminGuard;
}): Promise<OrdersSide> {
  const { config, database, kv, groupCommit, health, metrics, logger, onError } = ctx;
  const plugins: AnyElysia[] = [];
  // Split mode: the same port, over HTTP, to the inventory role at INVENTORY_URL.
  const inventory = ctx.inventory ?? createHttpInventory(config.inventoryUrl!, { token: serviceToken(config) });
  // One policy per process, shared by the request path and the retry worker.
  const policy = createInventoryPolicy({ timeoutMs: config.inventoryTimeoutMs, halfOpenAfterMs: config.breakerHalfOpenMs });
  observeBreaker(policy, metrics, logger);
  health.deep.inventory = async () => {
    const h = await policy.execute((signal) => inventory.health({ signal }));
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
    redisClientName: ctx.redisClientName,
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
  const worker = orders.createRetryWorker({
    queue,
    onError,
    maxAttempts: config.retryMaxAttempts,
    baseDelayMs: config.retryBaseDelayMs,
    maxDelayMs: config.retryMaxDelayMs,
    strandedAfterMs: config.sweepStrandedAfterMs,
    leaseMs: config.retryVisibilityTimeoutMs,
    sweepIntervalMs: Math.min(5_000, config.sweepStrandedAfterMs),
    holdSweepIntervalMs: config.holdSweepIntervalMs,
  });
  observeOrders(orders, worker, queue, metrics);
  worker.start();
  // Events leave through the outbox: the trigger writes them with each change; the relay sends them.
  const webhooks = orders.webhooks({
    adminGuard: ctx.adminGuard,
    settings: { refusePrivate: !config.webhookAllowPrivate, rotationWindowMs: config.webhookRotationWindowS * 1000, keyTtlMs: config.idempotencyTtlS * 1000 },
  });
  plugins.push(webhooks.routes);
  const relay = webhooks.createRelay({
    refusePrivate: !config.webhookAllowPrivate,
    timeoutMs: config.webhookTimeoutMs,
    disableAfterMs: config.webhookDisableAfterS * 1000,
    retentionMs: config.webhookRetentionDays * 86_400_000,
    retrySchedule: config.webhookRetryScheduleMs,
    breakerOpenMs: config.webhookBreakerOpenMs,
    pollIntervalMs: config.webhookPollIntervalMs,
    onError,
  });
  relay.onOutcome((o) => metrics.webhookDeliveries.labels(o).inc());
  metrics.refreshOnScrape(async () => metrics.webhookOldestUndeliveredAge.set(await webhooks.oldestUndeliveredAgeS(new Date())));
  if (config.webhookRelay) relay.start();
  health.ready.retry_queue = async () => {
    const d = await queue.depth();
    return { ok: true, kind: queue.kind, ...d };
  };
  health.ready.orders_schema = schemaCheck(database, "orders", orders.tables);
  return {
    service: orders.service,
    webhooks: webhooks.service,
    webhookRelay: config.webhookRelay ? relay : undefined,
    inventory,
    breaker: policy,
    plugins,
    async stop() {
      await relay.stop();
      await worker.stop();
      await queue.close().catch(() => {});
    },
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
