/**
 * The orders module's only door. It reaches inventory only through `InventoryPort`.
 */
import type { Database } from "../../src/platform/db.ts";
import type { KeyValueStore } from "../../src/platform/kv/kv.port.ts";
import type { Clock } from "../../src/platform/clock.ts";
import { migrateModule } from "../../migrations/index.ts";
import type { InventoryPort } from "../inventory/index.ts";
import { OrderService, directPolicy, type CallPolicy, type OrderOutcomeEvent } from "./internal/order.service.ts";
import { orderRoutes } from "./internal/order.routes.ts";
import { ORDER_TABLES } from "./internal/order.tables.ts";
import { RetryWorker, type RetryWorkerOptions } from "./internal/retry-worker.ts";

export type { CallPolicy, OrderOutcomeEvent, OrderView } from "./internal/order.service.ts";
export type { RetryResult, RetryWorkerOptions } from "./internal/retry-worker.ts";
export { ORDER_STATUSES, FINAL_STATUSES, type OrderStatus } from "./internal/order.tables.ts";

export interface OrdersModuleDeps {
  database: Database;
  inventory: InventoryPort;
  kv: KeyValueStore;
  policy?: CallPolicy;
  enqueue?: (orderId: string, requestId: string | null) => Promise<void>;
  idempotencyTtlS: number;
  clock?: Clock;
  onError?: (err: unknown, context: string) => void;
  beforeCreate?: (request: Request) => Response | undefined;
}

export function createOrdersModule(deps: OrdersModuleDeps) {
  const service = new OrderService(deps);
  return {
    service,
    routes: orderRoutes(service, { beforeCreate: deps.beforeCreate }),
    tables: ORDER_TABLES,
    migrate: () => migrateModule(deps.database.db, "orders"),
    onOutcome: (l: (e: OrderOutcomeEvent) => void) => service.onOutcome(l),
    countByStatus: () => service.countByStatus(),
    health: () => service.health(),
    /** The retry worker and sweeper for this module's queued orders (orders role only). */
    createRetryWorker: (opts: Omit<RetryWorkerOptions, "database" | "inventory" | "policy">) =>
      new RetryWorker({ database: deps.database, inventory: deps.inventory, policy: deps.policy ?? directPolicy, ...opts }),
  };
}

export type OrdersModule = ReturnType<typeof createOrdersModule>;
