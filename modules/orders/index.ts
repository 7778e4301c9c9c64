/**
 * The orders module's only door. It reaches inventory only through `InventoryPort`.
 */
import type { AnyElysia } from "elysia";
import { migrateModule } from "../../migrations/index.ts";
import { OrderService, directPolicy, type CancelOutcome, type OrderInput, type OrderOutcomeEvent, type OrderServiceDeps, type PayOutcome } from "./internal/order.service.ts";
import type { OrderView } from "./internal/order.model.ts";
import type { OrderResponse } from "./internal/order.reply.ts";
import { orderRoutes } from "./internal/order.routes.ts";
import { ORDER_TABLES, type OrderStatus } from "./internal/order.tables.ts";
import { RetryWorker, type RetryWorkerOptions } from "./internal/retry-worker.ts";
import { WebhookRelay, type WebhookRelayOptions } from "./internal/webhook-relay.ts";
import { webhookRoutes, type RouteGuard } from "./internal/webhook.routes.ts";
import { WebhookService, type WebhookSettings } from "./internal/webhook.service.ts";
import { oldestUndeliveredAgeS } from "./internal/webhook.repository.ts";
import { WEBHOOK_SCHEMAS } from "./internal/webhook.model.ts";

export type { CallPolicy, CancelOutcome, OrderInput, OrderOutcomeEvent, OrderServiceDeps, PayOutcome } from "./internal/order.service.ts";
export type { OrderView } from "./internal/order.model.ts";
export type { OrderResponse } from "./internal/order.reply.ts";
export { createInventoryPolicy } from "./internal/inventory-policy.ts";
export type { BreakerState, BreakerStateChange, InventoryPolicy, InventoryPolicyOptions } from "./internal/inventory-policy.ts";
export type { RetryResult, RetryWorkerOptions } from "./internal/retry-worker.ts";
export type { RetryWorker } from "./internal/retry-worker.ts";
export { ORDER_LIMITS } from "./internal/order.model.ts";
export { IDEMPOTENCY_KEY_PATTERN } from "./internal/order.reply.ts";
import { ORDER_SCHEMAS as ORDER_ONLY_SCHEMAS } from "./internal/order.model.ts";
/** The schemas the orders role's routes refer to by name (orders, events, webhooks). */
export const ORDER_SCHEMAS = { ...ORDER_ONLY_SCHEMAS, ...WEBHOOK_SCHEMAS } as const;
export type { DeliveryOutcome, WebhookRelay, WebhookRelayOptions } from "./internal/webhook-relay.ts";
export { RETRY_SCHEDULE_MS } from "./internal/webhook-relay.ts";
export type { WebhookService, WebhookSettings, WebhookView } from "./internal/webhook.service.ts";
export type { EventView, EventType } from "./internal/outbox.repository.ts";
export { EVENT_TYPES } from "./internal/outbox.repository.ts";
export { sign as signWebhook } from "./internal/webhook.signing.ts";
export { ORDER_STATUSES, FINAL_STATUSES, CANCELLABLE_STATUSES, type OrderStatus } from "./internal/order.tables.ts";

export type OrdersModuleDeps = OrderServiceDeps;

/** An order with every state it has been in, oldest first. */
export interface OrderWithHistory extends OrderView {
  history: NonNullable<OrderView["history"]>;
}

/** The order service as the rest of the program uses it (the API routes, the pages, the tests). */
export interface Orders {
  /**
   * Creates an order under an idempotency key; a finished request under the same key is replayed.
   * `await orders.create("7d0c…", { lines: [{ item_id: "ps5", quantity: 1 }] }, requestId)` →
   * `{ status: 201, body: "{…order…}", replayed: false, orderId: "0b6f…" }`.
   * Throws errors with a stable `code` for 400 (an item on two lines), 409 (key in flight) and 422 (key reused).
   */
  create(key: string, input: OrderInput, requestId: string | null): Promise<OrderResponse>;
  /**
   * Cancels an order under an idempotency key: `{ status: 200 }` cancelled, `202` cancelling
   * (finished from the retry queue), `409` not cancellable (a problem body). Throws `not_found`.
   * `await orders.cancel(id, "c-1", { reason: "changed my mind" }, requestId, "web")`.
   */
  cancel(orderId: string, key: string, input: { reason?: string | undefined }, requestId: string | null, actor: string): Promise<OrderResponse>;
  /**
   * Pays for a reserved order under an idempotency key: `{ status: 200 }` confirmed, `202`
   * payment recorded (finished from the retry queue), `409` hold expired or nothing to pay for.
   * `await orders.pay(id, "p-1", requestId)`.
   */
  pay(orderId: string, key: string, requestId: string | null): Promise<OrderResponse>;
  /** `await orders.get(id)` → the order and its state history; throws a `not_found` error. */
  get(orderId: string): Promise<OrderWithHistory>;
  /** `await orders.list({ status: "queued", limit: 50 })` → at most 100, newest first. */
  list(opts: { status?: OrderStatus; limit?: number }): Promise<OrderView[]>;
  /** `orders.onOutcome((e) => histogram.observe(e.durationMs))`: every answered order request; returns an unsubscribe. */
  onOutcome(listener: (e: OrderOutcomeEvent) => void): () => void;
  /** `await orders.countByStatus()` → `{ pending: 0, confirmed: 12, … }` (scans the table). */
  countByStatus(): Promise<Record<OrderStatus, number>>;
}

/** What the composition root gets from `createOrdersModule`. */
export interface OrdersModule {
  readonly service: Orders;
  /** `/api/orders`: one prefixed Elysia instance to mount. */
  readonly routes: AnyElysia;
  /** The tables this module owns, for readiness checks. */
  readonly tables: readonly string[];
  /** Applies this module's pending migrations; resolves to the names applied. */
  migrate(): Promise<string[]>;
  onOutcome(listener: (e: OrderOutcomeEvent) => void): () => void;
  /** Each lookup of an idempotency key that already existed (a replay, a conflict or a reuse). */
  onKeyLookup(listener: () => void): () => void;
  /** Every answered cancel request, by outcome. */
  onCancel(listener: (outcome: CancelOutcome) => void): () => void;
  /** Every answered pay request, by outcome. */
  onPay(listener: (outcome: PayOutcome) => void): () => void;
  countByStatus(): Promise<Record<OrderStatus, number>>;
  /**
   * The outbox's outside: subscriptions (admin), the catch-up list, redelivery, and the relay
   * that sends events (orders role). `webhooks({ adminGuard, settings }).routes` to mount.
   */
  webhooks(opts: { adminGuard: RouteGuard; settings: WebhookSettings }): {
    service: WebhookService;
    routes: AnyElysia;
    createRelay(o: Omit<WebhookRelayOptions, "database">): WebhookRelay;
    /** Seconds since the oldest event still waiting for some endpoint was written (0: none waits). */
    oldestUndeliveredAgeS(now: Date): Promise<number>;
  };
  /** The retry worker and sweeper for this module's queued orders (orders role only). */
  createRetryWorker(opts: Omit<RetryWorkerOptions, "database" | "inventory" | "policy">): RetryWorker;
}

export function createOrdersModule(deps: OrdersModuleDeps): OrdersModule {
  const service = new OrderService(deps);
  return {
    service,
    routes: orderRoutes(service),
    tables: ORDER_TABLES,
    migrate: () => migrateModule(deps.database.db, "orders"),
    onOutcome: (l) => service.onOutcome(l),
    onKeyLookup: (l) => service.onKeyLookup(l),
    onCancel: (l) => service.onCancel(l),
    onPay: (l) => service.onPay(l),
    countByStatus: () => service.countByStatus(),
    webhooks: ({ adminGuard, settings }) => {
      const webhookService = new WebhookService(deps.database, settings);
      return {
        service: webhookService,
        routes: webhookRoutes(webhookService, adminGuard),
        createRelay: (o) => new WebhookRelay({ database: deps.database, inventory: deps.inventory, ...o }),
        oldestUndeliveredAgeS: (now) => oldestUndeliveredAgeS(deps.database, now),
      };
    },
    createRetryWorker: (opts) =>
      new RetryWorker({ database: deps.database, inventory: deps.inventory, policy: deps.policy ?? directPolicy, ...opts }),
  };
}
