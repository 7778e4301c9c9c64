/**
 * The pages: server-rendered HTML with htmx 4 for the live parts. No build step, no client
 * framework, nothing loaded from another host. Every page reads the same services the JSON API
 * uses (passed in `ViewDeps`), and every state-changing form is guarded against forgery.
 *
 * Routes: `/` products, `/items/:item_id` an item's ledger, `/orders` and `/orders/:id`, `/status`, `/chaos`, `/webhooks`; fragments under
 * `/ui/fragments/*`, form posts under `/ui/*`, files under `/ui/assets/*`.
 */
import { Elysia } from "elysia";
import { assetRoutes } from "./assets.routes.ts";
import { chaosRoutes } from "./chaos.routes.ts";
import { itemRoutes } from "./items.routes.ts";
import { orderRoutes } from "./orders.routes.ts";
import { productRoutes } from "./products.routes.ts";
import { statusRoutes } from "./status.routes.ts";
import { webhookRoutes } from "./webhooks.routes.ts";
import { createViewContext } from "./view-context.ts";
import type { ViewDeps } from "./view-deps.ts";

export type {
  BreakerState,
  BreakerView,
  ChaosActive,
  ChaosControl,
  ChaosEventView,
  ChaosExperiment,
  ChaosPresetName,
  ChaosRequest,
  LatencyWindow,
  OrderAnswer,
  OrdersAccess,
  OrderWithHistory,
  ViewDeps,
  WebhookAttemptView,
  WebhookBreakers,
  WebhookEndpointView,
  WebhooksAccess,
} from "./view-deps.ts";
export { CHAOS_PRESETS } from "./view-deps.ts";
export { CSRF_COOKIE, CSRF_FIELD } from "./ui-security.ts";

/**
 * `app.use(createViews({ window, orders: orders.service, inventory, health, config }))`.
 * Orders placed from the pages are recorded in `deps.window` here, so the composition root's
 * own recording must stay limited to `POST /api/orders`.
 */
export function createViews(deps: ViewDeps) {
  const ctx = createViewContext(deps);
  return new Elysia({ name: "views" })
    .use(assetRoutes())
    .use(productRoutes(ctx))
    .use(itemRoutes(ctx))
    .use(orderRoutes(ctx))
    .use(statusRoutes(ctx))
    .use(chaosRoutes(ctx))
    .use(webhookRoutes(ctx));
}
