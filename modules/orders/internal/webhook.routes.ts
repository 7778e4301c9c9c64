import { Elysia } from "elysia";
import { IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_KEY_PATTERN, parseIdempotencyKey } from "../../../platform/idempotency-key.ts";
import { jsonResponse, problemResponses, schemaRef } from "../../../platform/openapi.ts";
import type { StoredAnswer } from "./webhook.repository.ts";
import type { WebhookService } from "./webhook.service.ts";
import { CreateWebhookBody, EventParams, EventsQuery, WebhookParams, WEBHOOK_LIMITS } from "./webhook.model.ts";

export type RouteGuard = (ctx: { request: Request }) => Response | undefined;

const WH = "wh_6f1c2b9e0d8a4c7b9e3f5a1d2c4b6e8f";
const EVT = "evt_0b6f6a523c1e4a8e9d2f5b7c1e2a9f1000000002";
const WEBHOOK_EXAMPLE = {
  id: WH,
  url: "https://shop.example/hooks/valerix",
  events: ["order.confirmed", "order.cancelled"],
  description: "Fulfilment",
  created_at: "2026-01-05T10:00:00.000Z",
  failing_since: null,
  disabled_at: null,
  disabled_reason: null,
  previous_secret_expires_at: null,
  pending_deliveries: 0,
  oldest_pending_at: null,
};
const SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const EVENT_EXAMPLE = {
  id: EVT,
  type: "order.confirmed",
  created_at: "2026-01-05T10:00:00.012Z",
  data: {
    order_id: "0b6f6a52-3c1e-4a8e-9d2f-5b7c1e2a9f10",
    lines: [{ item_id: "ps5", quantity: 1 }],
    item_id: "ps5",
    quantity: 1,
    status: "confirmed",
    reason: null,
    message: "Order confirmed.",
    attempts: 0,
    created_at: "2026-01-05T10:00:00.000Z",
    updated_at: "2026-01-05T10:00:00.012Z",
    seq: 2,
  },
};

const REPLAYED_HEADER = {
  "Idempotent-Replayed": { description: "`true` when this is the stored answer to an earlier request with the same key", schema: { type: "string", enum: ["true"] } },
};
const KEY_PARAMETER = {
  name: "Idempotency-Key",
  in: "header" as const,
  required: true,
  description: `One key per logical change, kept across retries: the same key and request is answered with the first answer (\`Idempotent-Replayed: true\`), another request with 422. A refusal changes nothing, not even the key. 1–${IDEMPOTENCY_KEY_MAX} printable ASCII characters.`,
  schema: { type: "string" as const, minLength: 1, maxLength: IDEMPOTENCY_KEY_MAX, pattern: IDEMPOTENCY_KEY_PATTERN },
  example: "webhook-fulfilment-1",
};
const KEY_PROBLEMS = ["missing_idempotency_key", "invalid_idempotency_key", "idempotency_key_reused"] as const;

function send(answer: StoredAnswer): Response {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (answer.replayed) headers["idempotent-replayed"] = "true";
  return new Response(answer.body, { status: answer.status, headers });
}
const keyOf = (request: Request) => parseIdempotencyKey(request.headers.get("idempotency-key"));

/** Webhook subscriptions (admin), redelivery (admin), and the public catch-up list of events. */
export function webhookRoutes(service: WebhookService, adminGuard: RouteGuard) {
  const events = new Elysia({ prefix: "/api/events", name: "event-routes", detail: { tags: ["orders"] } }).get("", ({ query }) => service.events(query), {
    query: EventsQuery,
    detail: {
      operationId: "listEvents",
      summary: "Events (order changes and `stock.low`) in the order they happened, for catching up on missed webhooks",
      description: `The same events the webhooks send, oldest first. Pass the last id you have as \`after\` (or \`next_after\` from the previous page); \`types\` filters by comma-separated event types; \`limit\` 1–${WEBHOOK_LIMITS.eventsPageMax} (default ${WEBHOOK_LIMITS.eventsPageDefault}). An event appears once every change committed before it is visible too, so a cursor never skips one.`,
      responses: { 200: jsonResponse("A page of events", schemaRef("EventPage"), { events: [EVENT_EXAMPLE], next_after: EVT }), ...problemResponses("invalid_request", "not_found") },
    },
  });

  const admin = new Elysia({ prefix: "/api/admin", name: "webhook-admin-routes", detail: { tags: ["admin"] } })
    .onBeforeHandle(adminGuard)
    .post("/webhooks", async ({ body, request }) => send(await service.create(keyOf(request), body)), {
      body: CreateWebhookBody,
      detail: {
        operationId: "createWebhook",
        summary: "Subscribe an endpoint to order and stock events; the signing secret is shown in this answer only",
        description:
          "Events are POSTed as Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`), retried with backoff for about a day, in order per order (`stock.low` events have no order and wait for none). The URL must be http(s); in production, hosts resolving to loopback, link-local or private addresses are refused (WEBHOOK_ALLOW_PRIVATE=true allows them).",
        security: [{ bearer: [] }],
        parameters: [KEY_PARAMETER],
        requestBody: { required: true, content: { "application/json": { example: { url: WEBHOOK_EXAMPLE.url, events: WEBHOOK_EXAMPLE.events, description: "Fulfilment" } } } },
        responses: {
          201: jsonResponse("The subscription, with its secret", schemaRef("WebhookWithSecret"), { ...WEBHOOK_EXAMPLE, secret: SECRET_EXAMPLE }, REPLAYED_HEADER),
          ...problemResponses("invalid_request", ...KEY_PROBLEMS),
        },
      },
    })
    .get("/webhooks", () => service.list(), {
      detail: {
        operationId: "listWebhooks",
        summary: "Every subscription, with its health; secrets are never listed",
        security: [{ bearer: [] }],
        responses: { 200: jsonResponse("Subscriptions, oldest first", { type: "array", items: schemaRef("Webhook") }, [WEBHOOK_EXAMPLE]) },
      },
    })
    .get("/webhooks/:id", ({ params }) => service.get(params.id), {
      params: WebhookParams,
      detail: {
        operationId: "getWebhook",
        summary: "One subscription (no secret)",
        security: [{ bearer: [] }],
        responses: { 200: jsonResponse("The subscription", schemaRef("Webhook"), WEBHOOK_EXAMPLE), ...problemResponses("invalid_request", "not_found") },
      },
    })
    .delete("/webhooks/:id", async ({ params, request }) => send(await service.remove(params.id, keyOf(request))), {
      params: WebhookParams,
      detail: {
        operationId: "deleteWebhook",
        summary: "Unsubscribe: nothing more is sent to the endpoint",
        security: [{ bearer: [] }],
        parameters: [KEY_PARAMETER],
        responses: {
          200: jsonResponse("Deleted", { type: "object", required: ["id", "deleted"], properties: { id: { type: "string" }, deleted: { type: "boolean" } } }, { id: WH, deleted: true }, REPLAYED_HEADER),
          ...problemResponses("invalid_request", "not_found", ...KEY_PROBLEMS),
        },
      },
    })
    .post("/webhooks/:id/rotate-secret", async ({ params, request }) => send(await service.rotate(params.id, keyOf(request))), {
      params: WebhookParams,
      detail: {
        operationId: "rotateWebhookSecret",
        summary: "A new signing secret, shown in this answer only; the old one keeps signing too for a while",
        description: "Until `previous_secret_expires_at` (WEBHOOK_ROTATION_WINDOW_S) every attempt carries two signatures, one per secret, so the receiver can switch at its own pace.",
        security: [{ bearer: [] }],
        parameters: [KEY_PARAMETER],
        responses: {
          200: jsonResponse("The subscription, with its new secret", schemaRef("WebhookWithSecret"), { ...WEBHOOK_EXAMPLE, previous_secret_expires_at: "2026-01-06T10:00:00.000Z", secret: SECRET_EXAMPLE }, REPLAYED_HEADER),
          ...problemResponses("invalid_request", "not_found", ...KEY_PROBLEMS),
        },
      },
    })
    .post("/webhooks/:id/enable", async ({ params, request }) => send(await service.enable(params.id, keyOf(request))), {
      params: WebhookParams,
      detail: {
        operationId: "enableWebhook",
        summary: "Send to a disabled endpoint again",
        description:
          "Clears `disabled_at`, `disabled_reason` and `failing_since`; the endpoint's pending deliveries go out as they fall due. Events written while it was disabled were not queued for it: read them from `GET /api/events`. Enabling an endpoint that is not disabled changes nothing but `failing_since`.",
        security: [{ bearer: [] }],
        parameters: [KEY_PARAMETER],
        responses: {
          200: jsonResponse("The subscription, enabled", schemaRef("Webhook"), { ...WEBHOOK_EXAMPLE, pending_deliveries: 3, oldest_pending_at: "2026-01-04T09:00:00.000Z" }, REPLAYED_HEADER),
          ...problemResponses("invalid_request", "not_found", ...KEY_PROBLEMS),
        },
      },
    })
    .get("/webhooks/:id/deliveries", ({ params }) => service.deliveries(params.id, WEBHOOK_LIMITS.attemptsPageMax), {
      params: WebhookParams,
      detail: {
        operationId: "listWebhookDeliveries",
        summary: `The endpoint's latest ${WEBHOOK_LIMITS.attemptsPageMax} delivery attempts, newest first`,
        security: [{ bearer: [] }],
        responses: {
          200: jsonResponse("Attempts", schemaRef("WebhookAttempts"), {
            webhook_id: WH,
            attempts: [{ at: "2026-01-05T10:00:00.100Z", event_id: EVT, attempt: 1, status_code: 200, duration_ms: 42, error: null }],
          }),
          ...problemResponses("invalid_request", "not_found"),
        },
      },
    })
    .post("/events/:id/redeliver", async ({ params, request }) => send(await service.redeliver(params.id, keyOf(request))), {
      params: EventParams,
      detail: {
        operationId: "redeliverEvent",
        summary: "Send an event again to every enabled subscription it matches",
        security: [{ bearer: [] }],
        parameters: [KEY_PARAMETER],
        responses: {
          202: jsonResponse(
            "Queued: one new delivery per matching subscription",
            { type: "object", required: ["event_id", "deliveries"], properties: { event_id: { type: "string" }, deliveries: { type: "integer" } } },
            { event_id: EVT, deliveries: 1 },
            REPLAYED_HEADER,
          ),
          ...problemResponses("invalid_request", "not_found", ...KEY_PROBLEMS),
        },
      },
    });

  return new Elysia({ name: "webhooks" }).use(events).use(admin);
}
