import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { systemClock, type Clock } from "./clock.ts";

/**
 * Every metric Valerix exports, created once. Domain code never imports this file: the
 * composition root subscribes to the modules' events and updates these. Label sets are bounded
 * (route templates, not paths; item ids from the catalog).
 */
/** The inventory circuit breaker's states, as `circuit_breaker_state` codes them. */
export const BREAKER_STATES = { closed: 0, open: 1, "half-open": 2 } as const;
export type BreakerStateName = keyof typeof BREAKER_STATES;

export function createMetrics(opts: { clock?: Clock | undefined; version?: string } = {}) {
  // The scrape hooks' intervals run on this clock, so tests can step it instead of sleeping.
  const clock = opts.clock ?? systemClock;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const m = {
    registry,
    buildInfo: new Gauge({
      name: "valerix_build_info",
      help: "Always 1; the version of the running binary is in its label",
      labelNames: ["version"] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: "http_request_duration_seconds",
      help: "HTTP request duration by route template, method and status",
      labelNames: ["route", "method", "status"] as const,
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    orderDuration: new Histogram({
      name: "order_processing_duration_seconds",
      help: "Time to answer an order request, by outcome",
      labelNames: ["outcome"] as const,
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    ordersTotal: new Counter({
      name: "orders_total",
      help: "Order requests answered, by resulting status",
      labelNames: ["status"] as const,
      registers: [registry],
    }),
    orderPayments: new Counter({
      name: "order_payments_total",
      help: "Pay requests answered, by outcome",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    ordersExpired: new Counter({
      name: "orders_expired_total",
      help: "Reserved orders whose hold expired before payment (stock given back)",
      registers: [registry],
    }),
    holdsActive: new Gauge({
      name: "inventory_holds_active",
      help: "Live holds: orders whose lines are reserved, neither paid nor expired nor cancelled",
      registers: [registry],
    }),
    orderCancellations: new Counter({
      name: "order_cancellations_total",
      help: "Cancel requests answered, by outcome",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    ordersByState: new Gauge({
      name: "orders_by_state",
      help: "Orders in the database by state",
      labelNames: ["status"] as const,
      registers: [registry],
    }),
    ordersPending: new Gauge({ name: "orders_pending", help: "Orders not yet final (pending or queued)", registers: [registry] }),
    idempotencyCacheHits: new Counter({
      name: "idempotency_cache_hits_total",
      help: "Replays answered from the key-value cache without a database read",
      registers: [registry],
    }),
    idempotencyLookups: new Counter({
      name: "idempotency_lookups_total",
      help: "Lookups of an idempotency key that already existed (cache, then database); hits / lookups is the cache's hit ratio",
      registers: [registry],
    }),
    stockLevel: new Gauge({
      name: "inventory_stock_level",
      help: "Units in stock per item",
      labelNames: ["item_id"] as const,
      registers: [registry],
    }),
    inventoryTransactions: new Counter({
      name: "inventory_transactions_total",
      help: "Applied stock movements by type",
      labelNames: ["type"] as const,
      registers: [registry],
    }),
    breakerState: new Gauge({
      name: "circuit_breaker_state",
      help: "Inventory circuit breaker: 0 closed, 1 open, 2 half-open",
      registers: [registry],
    }),
    breakerCurrentState: new Gauge({
      name: "circuit_breaker_current_state",
      help: "Inventory circuit breaker, one series per state: 1 for the state it is in, 0 for the others",
      labelNames: ["state"] as const,
      registers: [registry],
    }),
    breakerTransitions: new Counter({
      name: "circuit_breaker_transitions_total",
      help: "Circuit breaker state changes",
      labelNames: ["from", "to"] as const,
      registers: [registry],
    }),
    fallbacks: new Counter({
      name: "inventory_fallbacks_total",
      help: "Orders answered 202 queued instead of a final answer, by reason",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: "retry_queue_depth",
      help: "Retry queue messages by state",
      labelNames: ["state"] as const,
      registers: [registry],
    }),
    retries: new Counter({
      name: "order_retries_total",
      help: "Retry worker attempts by result",
      labelNames: ["result"] as const,
      registers: [registry],
    }),
    webhookDeliveries: new Counter({
      name: "webhook_deliveries_total",
      help: "Webhook delivery attempts by outcome",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    webhookOldestUndeliveredAge: new Gauge({
      name: "webhook_oldest_undelivered_age_seconds",
      help: "Age of the oldest order event still waiting for an enabled webhook endpoint; 0 when none waits",
      registers: [registry],
    }),
    groupCommitBatchOrders: new Histogram({
      name: "group_commit_batch_orders",
      help: "Orders carried per group-committed statement on the order path, by statement",
      labelNames: ["statement"] as const,
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers: [registry],
    }),
    readiness: new Gauge({
      name: "readiness_status",
      help: "1 while this instance's readiness checks pass (what /health/ready answers), 0 while they fail",
      registers: [registry],
    }),
    deadLetters: new Counter({ name: "retry_dead_letters_total", help: "Messages moved to the dead letters", registers: [registry] }),
    inventoryMisconfigured: new Counter({
      name: "inventory_misconfigured_calls_total",
      help: "Calls to inventory refused for this process's own configuration (service token, INVENTORY_URL), by HTTP status",
      labelNames: ["status"] as const,
      registers: [registry],
    }),
    ledgerDriftItems: new Gauge({
      name: "inventory_ledger_drift_items",
      help: "Items whose quantity differs from the sum of their ledger movements at the last check; anything but 0 is an alarm",
      registers: [registry],
    }),
    ledgerCheckDuration: new Gauge({
      name: "inventory_ledger_check_duration_seconds",
      help: "How long the last ledger check (quantity = sum of movements, every item) took",
      registers: [registry],
    }),
    chaosEvents: new Counter({
      name: "inventory_chaos_events_total",
      help: "Faults injected by the chaos injector, by type",
      labelNames: ["type"] as const,
      registers: [registry],
    }),
  };
  // Gauges that cost a query are refreshed when someone scrapes, at most every `minIntervalMs`,
  // rather than on a timer that queries whether anyone looks or not.
  const hooks: Array<() => Promise<void>> = [];
  if (opts.version !== undefined) m.buildInfo.labels(opts.version).set(1);
  return {
    ...m,
    /** Sets both breaker gauges: the coded `circuit_breaker_state` and the per-state series. */
    setBreakerState(state: BreakerStateName) {
      m.breakerState.set(BREAKER_STATES[state]);
      for (const s of Object.keys(BREAKER_STATES) as BreakerStateName[]) m.breakerCurrentState.labels(s).set(s === state ? 1 : 0);
    },
    /** Runs `refresh` before a scrape, at most once per `minIntervalMs`; a failure leaves the last values. */
    refreshOnScrape(refresh: () => Promise<void>, minIntervalMs = 5_000) {
      let last = -Infinity;
      let running: Promise<void> | null = null;
      hooks.push(() => {
        if (running) return running;
        if (clock.now() - last < minIntervalMs) return Promise.resolve();
        running = refresh()
          .catch(() => {})
          .finally(() => {
            last = clock.now();
            running = null;
          });
        return running;
      });
    },
    /** The exposition text, after the scrape hooks ran. */
    async scrape(): Promise<string> {
      await Promise.all(hooks.map((h) => h()));
      return registry.metrics();
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
