import { Elysia, t } from "elysia";
import { CreateOrderBody, ListQuery, ORDER_LIMITS, OrderParams, OrderSchema } from "./order.model.ts";
import { parseIdempotencyKey } from "./order.reply.ts";
import type { OrderService } from "./order.service.ts";

/** The order API. The request id (set by the app from `x-request-id`) follows the order to inventory. */
export function orderRoutes(service: OrderService) {
  return new Elysia({ prefix: "/api/orders", name: "order-routes", detail: { tags: ["orders"] } })
    .post(
      "/",
      async ({ body, request }) => {
        const key = parseIdempotencyKey(request.headers.get("idempotency-key"));
        const requestId = request.headers.get("x-request-id");
        const res = await service.create(key, body, requestId);
        const headers: Record<string, string> = {
          "content-type": res.status >= 400 ? "application/problem+json" : "application/json",
        };
        if (res.orderId) headers.location = `/api/orders/${res.orderId}`;
        if (res.replayed) headers["idempotent-replayed"] = "true";
        return new Response(res.body, { status: res.status, headers });
      },
      {
        body: CreateOrderBody,
        headers: t.Object({ "idempotency-key": t.Optional(t.String({ maxLength: 1024 })) }),
        detail: {
          summary: "Create an order (idempotent by Idempotency-Key)",
          description:
            "201 confirmed; 202 queued (inventory slow or down; follow Location); 422 rejected (unknown item, insufficient stock) or key reused with another body; 409 same key still in flight; 503 with Retry-After while the database is unavailable (retry with the same key); 400 missing or malformed key or body. A finished request is replayed byte for byte with `Idempotent-Replayed: true` for 24 h.",
          parameters: [
            { name: "Idempotency-Key", in: "header", required: true, schema: { type: "string", minLength: 1, maxLength: ORDER_LIMITS.idempotencyKeyMax }, example: "order-7f3c2a" },
          ],
          responses: {
            201: { description: "Confirmed", content: { "application/json": { schema: { $ref: "#/components/schemas/Order" } } } },
            202: { description: "Queued for retry; follow Location" },
            400: { description: "Missing or malformed key or body (problem+json)" },
            409: { description: "Same key still in flight (problem+json)" },
            422: { description: "Rejected order or key reused with a different body (problem+json)" },
            503: { description: "The database is unavailable (problem+json, Retry-After): nothing was accepted; retry with the same key" },
          },
        },
      },
    )
    .get("/", ({ query }) => service.list({ status: query.status, limit: query.limit }), {
      query: ListQuery,
      response: t.Array(OrderSchema),
      detail: { summary: "The last 100 orders, newest first, optionally filtered by status" },
    })
    .get("/:id", ({ params }) => service.get(params.id), {
      params: OrderParams,
      detail: { summary: "One order with its state history" },
    });
}
