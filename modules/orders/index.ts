/**
 * The orders module's only door. It reaches inventory only through `InventoryPort`.
 */
import { migrateModule } from "../../migrations/index.ts";
import { OrderService, directPolicy, type OrderOutcomeEvent, type OrderServiceDeps } from "./internal/order.service.ts";
import { orderRoutes } from "./internal/order.routes.ts";
import { ORDER_TABLES } from "./internal/order.tables.ts";
import { RetryWorker, type RetryWorkerOptions } from "./internal/retry-worker.ts";

export type { CallPolicy, OrderOutcomeEvent, OrderView } from "./internal/order.service.ts";
export type { RetryResult, RetryWorkerOptions } from "./internal/retry-worker.ts";
export { ORDER_STATUSES, FINAL_STATUSES, type OrderStatus } from "./internal/order.tables.ts";

export interface OrdersModuleDeps extends OrderServiceDeps {
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
    /** Each lookup of an idempotency key that already existed (a replay, a conflict or a reuse). */
    onKeyLookup: (l: () => void) => service.onKeyLookup(l),
    countByStatus: () => service.countByStatus(),
    health: () => service.health(),
    /** The retry worker and sweeper for this module's queued orders (orders role only). */
    createRetryWorker: (opts: Omit<RetryWorkerOptions, "database" | "inventory" | "policy">) =>
      new RetryWorker({ database: deps.database, inventory: deps.inventory, policy: deps.policy ?? directPolicy, ...opts }),
  };
}

export type OrdersModule = ReturnType<typeof createOrdersModule>;
