import { tablesAnswer, type Database } from "../../platform/db.ts";
import type { Logger } from "../../platform/logging.ts";
import type { Metrics } from "../../platform/metrics.ts";
import type { RetryQueue } from "../../platform/queue/queue.port.ts";
import { pendingMigrations, type MigratedModule } from "../../migrations/index.ts";
import type { InventoryModule, LedgerReconciler } from "../../modules/inventory/index.ts";
import type { InventoryPolicy, OrdersModule, RetryWorker } from "../../modules/orders/index.ts";
import { runChecks, type HealthCheck, type HealthRegistry } from "../http/health.ts";

/**
 * Observability, wired from outside: the modules only emit events (`onMovement`, `onOutcome`,
 * `onStateChange`, `onResult`); this file turns them into metrics and log lines, so domain code
 * never imports prom-client.
 */

/** Readiness of a module's schema: every migration applied, every table answering. */
export function schemaCheck(database: Database, module: MigratedModule, tables: readonly string[]): HealthCheck {
  return async () => {
    const pending = await pendingMigrations(database.db, module);
    if (pending.length) return { ok: false, detail: `pending migrations: ${pending.join(", ")}` };
    await tablesAnswer(database, tables);
    return { ok: true };
  };
}

/** Stock levels and movements. */
export async function observeInventory(mod: InventoryModule, metrics: Metrics): Promise<void> {
  mod.onMovement((m) => {
    metrics.inventoryTransactions.labels(m.type).inc();
    if (m.remaining !== null && m.item_id) metrics.stockLevel.labels(m.item_id).set(m.remaining);
  });
  for (const item of await mod.port.list()) metrics.stockLevel.labels(item.item_id).set(item.quantity);
}

/** The drift alarm as metrics: items drifted at the last check, and what the check cost. */
export function observeLedger(ledger: LedgerReconciler, metrics: Metrics, logger: Logger): void {
  ledger.onCheck((c) => {
    metrics.ledgerDriftItems.set(c.drifted.length);
    metrics.ledgerCheckDuration.set(c.duration_ms / 1000);
    if (c.drifted.length > 0) logger.error({ drifted: c.drifted.slice(0, 20), count: c.drifted.length }, "stock ledger drift: quantity differs from the sum of movements");
  });
  ledger.onError((err) => logger.warn({ err }, "stock ledger check could not run; the last result stands"));
}

/** Items named in a health answer at most; the count says how many more. */
const DRIFT_NAMED = 20;

/**
 * `/health/deep`'s view of the drift alarm: the last check's result, read without a query, so
 * health probes and the status page cost the ledger nothing.
 */
export function ledgerHealth(ledger: LedgerReconciler): HealthCheck {
  return async () => {
    const c = ledger.last;
    if (!c) return { ok: true, detail: "not checked yet" };
    if (c.drifted.length === 0) return { ok: true, checked_at: c.checked_at };
    const named = c.drifted.slice(0, DRIFT_NAMED);
    const more = c.drifted.length > named.length ? ` and ${c.drifted.length - named.length} more` : "";
    return {
      ok: false,
      detail: `quantity differs from the sum of its movements for ${c.drifted.length} item(s): ${named.map((d) => `${d.item_id} (quantity ${d.quantity}, ledger ${d.ledger})`).join(", ")}${more}`,
      items: named.map((d) => d.item_id),
      checked_at: c.checked_at,
    };
  };
}

/** The breaker in front of inventory: a gauge, a transition counter and a warning per change. */
export function observeBreaker(policy: InventoryPolicy, metrics: Metrics, logger: Logger): void {
  metrics.setBreakerState("closed");
  policy.onStateChange(({ from, to }) => {
    metrics.setBreakerState(to);
    metrics.breakerTransitions.labels(from, to).inc();
    logger.warn({ from, to }, "inventory circuit breaker changed state");
  });
}

/** Order outcomes, retries, and the gauges (orders by state, queue depth) refreshed on scrape. */
export function observeOrders(orders: OrdersModule, worker: RetryWorker, queue: RetryQueue, metrics: Metrics): void {
  worker.onResult((r) => {
    metrics.retries.labels(r).inc();
    if (r === "dead_letter") metrics.deadLetters.inc();
  });
  orders.onOutcome((e) => {
    metrics.orderDuration.labels(e.outcome).observe(e.durationMs / 1000);
    metrics.ordersTotal.labels(e.outcome).inc();
    if (e.cacheHit) metrics.idempotencyCacheHits.inc();
    if (e.outcome === "queued") metrics.fallbacks.labels("inventory_unavailable").inc();
  });
  orders.onKeyLookup(() => metrics.idempotencyLookups.inc());
  orders.onCancel((outcome) => metrics.orderCancellations.labels(outcome).inc());
  const refreshStates = async () => {
    const counts = await orders.countByStatus();
    for (const [status, n] of Object.entries(counts)) metrics.ordersByState.labels(status).set(n);
    metrics.ordersPending.set(counts.pending + counts.queued + counts.cancelling);
    const d = await queue.depth();
    metrics.queueDepth.labels("ready").set(d.ready);
    metrics.queueDepth.labels("in_flight").set(d.inFlight);
    metrics.queueDepth.labels("dead").set(d.deadLetters);
  };
  // Counting orders by state scans the orders table: only when scraped, at most every 5 s.
  metrics.refreshOnScrape(refreshStates);
}

/** Readiness as a metric too, so an alert can fire on it without scraping /health/ready. Returns the stopper. */
export async function watchReadiness(health: HealthRegistry, metrics: Metrics): Promise<() => void> {
  const refreshReadiness = async () => metrics.readiness.set((await runChecks(health.ready)).ok ? 1 : 0);
  await refreshReadiness().catch(() => metrics.readiness.set(0));
  const readinessTimer = setInterval(() => void refreshReadiness().catch(() => metrics.readiness.set(0)), 5_000);
  readinessTimer.unref?.();
  return () => clearInterval(readinessTimer);
}
