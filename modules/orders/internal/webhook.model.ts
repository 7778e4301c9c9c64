import { t } from "elysia";
import { Type } from "@sinclair/typebox";
import { Timestamp } from "../../../platform/schemas.ts";
import { EVENT_ID_PATTERN, EVENT_TYPES } from "./outbox.repository.ts";
import { OrderSchema } from "./order.model.ts";

export const WEBHOOK_LIMITS = { urlMax: 2_000, descriptionMax: 200, attemptsPageMax: 100, eventsPageMax: 500, eventsPageDefault: 100 } as const;

const EventTypeSchema = t.Union(EVENT_TYPES.map((e) => t.Literal(e)));

export const CreateWebhookBody = t.Object(
  {
    url: t.String({ minLength: 1, maxLength: WEBHOOK_LIMITS.urlMax, description: "Where events are POSTed: an absolute http(s) URL" }),
    events: t.Array(t.Union([EventTypeSchema, t.Literal("*")]), { minItems: 1, maxItems: 20, description: 'Event types to send, or `"*"` for all' }),
    description: t.Optional(t.String({ maxLength: WEBHOOK_LIMITS.descriptionMax, pattern: "^[^\\u0000-\\u001f\\u007f-\\u009f]*$" })),
  },
  { additionalProperties: false },
);

export const WebhookParams = t.Object({ id: t.String({ minLength: 1, maxLength: 64, pattern: "^wh_[0-9a-f]{32}$" }) });
export const EventParams = t.Object({ id: t.String({ minLength: 1, maxLength: 64, pattern: EVENT_ID_PATTERN }) });

const Nullable = <T extends Parameters<typeof t.Union>[0][number]>(s: T) => t.Union([s, t.Null()]);

export const WebhookSchema = t.Object({
  id: t.String(),
  url: t.String(),
  events: t.Array(t.String()),
  description: Nullable(t.String()),
  created_at: Timestamp,
  failing_since: Nullable(Timestamp),
  disabled_at: Nullable(Timestamp),
  disabled_reason: Nullable(t.String({ description: "Why the endpoint no longer receives events (it failed for days)" })),
  previous_secret_expires_at: Nullable(Timestamp),
  pending_deliveries: Type.Integer({ minimum: 0, description: "Deliveries to this endpoint not yet sent: due, waiting for a retry, or held while it is disabled" }),
  oldest_pending_at: Nullable(Timestamp),
});

export const WebhookWithSecretSchema = t.Composite([
  WebhookSchema,
  t.Object({ secret: t.String({ description: "`whsec_` + base64 of the key bytes; shown in this answer only" }) }),
]);

export const AttemptsSchema = t.Object({
  webhook_id: t.String(),
  attempts: t.Array(
    t.Object({
      at: Timestamp,
      event_id: t.String(),
      attempt: Type.Integer(),
      status_code: Nullable(Type.Integer()),
      duration_ms: Type.Integer(),
      error: Nullable(t.String()),
    }),
  ),
});

const OrderEventData = t.Composite([t.Omit(OrderSchema, ["history"]), t.Object({ seq: Type.Integer({ description: "This event's place among its order's events, from 1" }) })]);
const StockLowEventData = t.Object(
  {
    item_id: t.String(),
    item_name: t.String(),
    quantity: Type.Integer({ description: "Available units right after the change (held units have left it)" }),
    reserved_quantity: Type.Integer(),
    available: Type.Integer({ description: "What can still be ordered: equal to `quantity`" }),
    low_stock_threshold: Type.Integer(),
  },
  { description: "`stock.low`: the item right after the change that made it low" },
);

export const EventSchema = t.Object({
  id: t.String({
    description:
      "The same on every delivery of this event (the `webhook-id` header). Order events: `evt_` + the order id's hex digits + the event's seq in 8 hex digits; `stock.low`: `evt_` + 32 random hex digits + `00000000`",
  }),
  type: EventTypeSchema,
  created_at: Timestamp,
  data: t.Union([OrderEventData, StockLowEventData], {
    description: "`order.*`: the order as the API showed it at this change, with its `seq`; `stock.low`: the item (`item_id`, `item_name`, `quantity`, `reserved_quantity`, `available`, `low_stock_threshold`) right after the change that made it low",
  }),
});

export const EventPageSchema = t.Object({
  events: t.Array(EventSchema),
  next_after: Nullable(t.String({ description: "Pass as `after` for the next page" })),
});

export const EventsQuery = t.Object(
  {
    after: t.Optional(t.String({ pattern: EVENT_ID_PATTERN, description: "The last event id already read" })),
    types: t.Optional(t.String({ maxLength: 500, description: "Comma-separated event types" })),
    limit: t.Optional(t.Numeric({ minimum: 1, maximum: WEBHOOK_LIMITS.eventsPageMax, multipleOf: 1 })),
  },
  { additionalProperties: false },
);

export const WEBHOOK_SCHEMAS = { Webhook: WebhookSchema, WebhookWithSecret: WebhookWithSecretSchema, WebhookAttempts: AttemptsSchema, Event: EventSchema, EventPage: EventPageSchema } as const;
