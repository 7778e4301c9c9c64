import { Elysia, t } from "elysia";
import { jsonResponse, problemResponses, schemaRef, withProblems, type ApiResponse } from "../../../platform/openapi.ts";
import { problemFor } from "../../../platform/problems.ts";
import { CancelOrderBody, CreateOrderBody, orderLines, ListQuery, ORDER_LIMITS, OrderParams, OrderSchema, type OrderView } from "./order.model.ts";
import { IDEMPOTENCY_KEY_PATTERN, messageFor, parseIdempotencyKey, type OrderResponse } from "./order.reply.ts";
import type { OrderService } from "./order.service.ts";

const ORDER_ID = "0b6f6a52-3c1e-4a8e-9d2f-5b7c1e2a9f10";

/** An order as the document shows it in examples. */
function example(status: OrderView["status"], reason: string | null): OrderView {
  const lines = [{ item_id: "ps5", quantity: 1 }];
  return {
    order_id: ORDER_ID,
    lines,
    item_id: "ps5",
    quantity: 1,
    status,
    reason,
    message: messageFor({ status, reason, lines }),
    attempts: status === "queued" ? 1 : 0,
    created_at: "2026-01-05T10:00:00.000Z",
    updated_at: "2026-01-05T10:00:00.012Z",
  };
}

const IDEMPOTENCY_KEY_PARAMETER = {
  name: "Idempotency-Key",
  in: "header" as const,
  required: true,
  description:
    "One key per logical order, kept across retries: a retry with the same key and body is answered with the first answer. 1–255 printable ASCII characters, no space at either end; the IETF draft's quoted form (`\"abc\"`) is accepted too.",
  schema: { type: "string" as const, minLength: 1, maxLength: ORDER_LIMITS.idempotencyKeyMax, pattern: IDEMPOTENCY_KEY_PATTERN },
  example: "7d0c6a1e-order-1",
};

const ORDER_HEADERS = {
  Location: { description: "Where the order can be read: `/api/orders/{order_id}`", schema: { type: "string" } },
  "Idempotent-Replayed": { description: "`true` when this is the stored answer to an earlier request with the same key", schema: { type: "string", enum: ["true"] } },
};

/** A refused order is a problem that still carries the order; its state travels as `order_status`. */
function rejectedExample(reason: "insufficient_stock" | "unknown_item") {
  const lines = [{ item_id: "ps5", quantity: 5000 }];
  const rejected = { ...example("rejected", reason), lines, quantity: 5000, rejected_lines: [{ item_id: "ps5", reason }] };
  const { status, ...order } = { ...rejected, message: messageFor(rejected) };
  return problemFor(reason, `Order ${ORDER_ID} was ${status}: ${reason}`, { ...order, order_status: status });
}
const rejectedResponse = (() => {
  const base = withProblems({}, ["insufficient_stock", "unknown_item", "order_released", "idempotency_key_reused"])["422"]!;
  const content = base.content as Record<string, { examples: Record<string, { summary: string; value: unknown }> }>;
  const media = content["application/problem+json"]!;
  media.examples.insufficient_stock!.value = rejectedExample("insufficient_stock");
  media.examples.unknown_item!.value = rejectedExample("unknown_item");
  return { ...base, headers: ORDER_HEADERS } as ApiResponse;
})();

/** An order request's answer as HTTP: its stored body, where the order lives, and whether it is a replay. */
function answer(res: OrderResponse): Response {
  const headers: Record<string, string> = {
    "content-type": res.status >= 400 ? "application/problem+json" : "application/json",
  };
  if (res.orderId) headers.location = `/api/orders/${res.orderId}`;
  if (res.replayed) headers["idempotent-replayed"] = "true";
  return new Response(res.body, { status: res.status, headers });
}

/** The order API. The request id (set by the app from `x-request-id`) follows the order to inventory. */
export function orderRoutes(service: OrderService) {
  return new Elysia({ prefix: "/api/orders", name: "order-routes", detail: { tags: ["orders"] } })
    .post(
      "",
      async ({ body, request }) => {
        const key = parseIdempotencyKey(request.headers.get("idempotency-key"));
        return answer(await service.create(key, { lines: orderLines(body) }, request.headers.get("x-request-id")));
      },
      {
        body: CreateOrderBody,
        detail: {
          operationId: "createOrder",
          summary: "Create an order (idempotent by Idempotency-Key)",
          description:
            "201 confirmed; 202 queued (inventory slow or down; follow Location); 422 rejected (unknown item, insufficient stock) or key reused with another body; 409 same key still in flight; 400 missing or malformed key or body; 503 with Retry-After while the database is away (the outcome is unknown: retry with the same key). A finished request is replayed byte for byte with `Idempotent-Replayed: true` for 24 h.",
          parameters: [IDEMPOTENCY_KEY_PARAMETER],
          requestBody: {
            required: true,
            content: {
              "application/json": {
                examples: {
                  lines: { summary: "An order of several lines", value: { lines: [{ item_id: "ps5", quantity: 1 }, { item_id: "dualsense", quantity: 2 }] } },
                  one_item: { summary: "The one-item form (one line)", value: { item_id: "ps5", quantity: 1 } },
                },
              },
            },
          },
          responses: {
            201: jsonResponse("Confirmed: stock was deducted", schemaRef("Order"), example("confirmed", null), ORDER_HEADERS),
            202: jsonResponse(
              "Queued: inventory did not answer in time; the order will be finished from the retry queue. Follow Location for its state.",
              schemaRef("Order"),
              example("queued", "inventory_unavailable:timeout"),
              ORDER_HEADERS,
            ),
            ...problemResponses("missing_idempotency_key", "invalid_idempotency_key", "invalid_request", "duplicate_line_item", "idempotency_key_in_use"),
            422: rejectedResponse,
          },
        },
      },
    )
    .get("", ({ query }) => service.list({ status: query.status, limit: query.limit }), {
      query: ListQuery,
      response: t.Array(OrderSchema),
      detail: {
        operationId: "listOrders",
        summary: "The last 100 orders, newest first, optionally filtered by status",
        responses: { 200: jsonResponse("Orders, newest first", { type: "array", items: schemaRef("Order") }, [example("confirmed", null)]) },
      },
    })
    .post(
      "/:id/cancel",
      async ({ params, body, request }) => {
        const key = parseIdempotencyKey(request.headers.get("idempotency-key"));
        const requestId = request.headers.get("x-request-id");
        // Who asked: the API's caller, known here by the request id its logs carry.
        const actor = requestId ? `api (request ${requestId})` : "api";
        return answer(await service.cancel(params.id, key, body ?? {}, requestId, actor));
      },
      {
        params: OrderParams,
        body: t.Optional(CancelOrderBody),
        detail: {
          operationId: "cancelOrder",
          summary: "Cancel an order and give its stock back (idempotent by Idempotency-Key)",
          description:
            "From `pending`, `queued` or `confirmed`: 200 `cancelled` once inventory has released the order (every line's stock restored exactly once, any later deduction refused); 202 `cancelling` when inventory cannot be reached now (finished from the retry queue; follow Location). A cancelled order answers 200 again and releases nothing; a `rejected` or `failed` order is a 409 `order-not-cancellable`. The optional `reason` is kept in the order's history with who asked. The same key and body replay the first answer; another body under the key is a 422.",
          parameters: [IDEMPOTENCY_KEY_PARAMETER],
          requestBody: { required: false, content: { "application/json": { example: { reason: "Customer changed their mind" } } } },
          responses: {
            200: jsonResponse("Cancelled: the stock is back", schemaRef("Order"), { ...example("cancelled", "cancelled"), history: undefined }, ORDER_HEADERS),
            202: jsonResponse(
              "Cancelling: inventory could not be reached; the retry queue finishes it. Follow Location.",
              schemaRef("Order"),
              example("cancelling", "cancel_requested"),
              ORDER_HEADERS,
            ),
            ...problemResponses(
              "missing_idempotency_key",
              "invalid_idempotency_key",
              "invalid_request",
              "not_found",
              "idempotency_key_in_use",
              "order_not_cancellable",
              "idempotency_key_reused",
            ),
          },
        },
      },
    )
    .get("/:id", ({ params }) => service.get(params.id), {
      params: OrderParams,
      detail: {
        operationId: "getOrder",
        summary: "One order with its state history",
        responses: {
          200: jsonResponse("The order and every state it has been in", schemaRef("Order"), {
            ...example("confirmed", null),
            history: [
              { status: "pending", reason: null, at: "2026-01-05T10:00:00.000Z" },
              { status: "confirmed", reason: null, at: "2026-01-05T10:00:00.012Z" },
            ],
          }),
          ...problemResponses("invalid_request", "not_found"),
        },
      },
    });
}
