import { Elysia, t } from "elysia";
import { problemFor, type ProblemCode } from "../../../platform/problems.ts";
import type { InventoryService } from "./inventory.service.ts";
import { noteOrderId } from "../../../platform/log-context.ts";
import { jsonResponse, problemResponses, schemaRef } from "../../../platform/openapi.ts";
import { CreateItemBody, DeductBody, InventoryItemSchema, ItemParams, PayBody, ReleaseBody, StockEventsQuery, ThresholdBody } from "./inventory.model.ts";

const REJECTION_CODE = { unknown_item: "unknown_item", insufficient_stock: "insufficient_stock", released: "order_released" } as const;

/**
 * What inventory's routes need from whoever mounts them: a hook that refuses a request with a
 * response, or lets it through with `undefined`. It takes the request alone, so Elysia parses
 * nothing more for it. The HTTP layer's admin and service guards have this shape.
 */
export type RouteGuard = (ctx: { request: Request }) => Response | undefined;

/** A refusal as `application/problem+json`: the problem body from the platform's catalog. */
function refusal(code: ProblemCode, detail: string, extensions: Record<string, unknown>): Response {
  const body = problemFor(code, detail, extensions);
  return new Response(JSON.stringify(body), { status: body.status, headers: { "content-type": "application/problem+json" } });
}

const ITEM_EXAMPLE = { item_id: "ps5", item_name: "PlayStation 5", quantity: 42, reserved_quantity: 0, low_stock_threshold: 0, updated_at: "2026-01-05T10:00:00.000Z" };
const STOCK_EVENT_EXAMPLE = {
  id: "evt_5d1e0c3b9a7f4e21b8c6d4a2f0e1b3c500000000",
  type: "stock.low",
  created_at: "2026-01-05T10:00:00.012Z",
  data: { item_id: "ps5", item_name: "PlayStation 5", quantity: 5, reserved_quantity: 1, available: 5, low_stock_threshold: 5 },
};
const HEALTH = {
  type: "object",
  required: ["ok", "checks"],
  properties: { ok: { type: "boolean" }, checks: { type: "object", additionalProperties: { type: "object", properties: { ok: { type: "boolean" }, detail: { type: "string" } } } } },
};
const healthResponses = {
  200: jsonResponse("Inventory can serve", HEALTH, { ok: true, checks: { database: { ok: true } } }),
  503: jsonResponse("Inventory cannot serve; the failing check says why", HEALTH),
};
const LINE = {
  type: "object",
  required: ["item_id", "quantity"],
  properties: { item_id: { type: "string" }, quantity: { type: "integer" } },
};
const DEDUCT_RESULT = {
  type: "object",
  required: ["outcome", "order_id", "lines", "replayed"],
  properties: {
    outcome: { type: "string", enum: ["applied"] },
    order_id: { type: "string", format: "uuid" },
    lines: {
      type: "array",
      items: { ...LINE, required: ["item_id", "quantity", "remaining"], properties: { ...LINE.properties, remaining: { type: ["integer", "null"] } } },
      description: "Every line, in the order sent, with the item's stock right after it (null on a replay)",
    },
    hold_expires_at: { type: "string", format: "date-time", description: "With `hold_s`: the lines are reserved, not sold, until this moment" },
    item_id: { type: "string", description: "The seed's one-item body only: its item" },
    quantity: { type: "integer", description: "The seed's one-item body only: its quantity" },
    remaining: { type: ["integer", "null"], description: "The seed's one-item body only: the stock left" },
    replayed: { type: "boolean", description: "True when this order id was deducted before: the first outcome, repeated" },
  },
};
const HOLD_RESULT = {
  type: "object",
  required: ["order_id", "outcome", "hold_expires_at"],
  properties: {
    order_id: { type: "string", format: "uuid" },
    outcome: {
      type: "string",
      enum: ["paid", "expired", "released", "held", "not_held"],
      description: "paid: sold; expired: deadline passed, stock back; released: cancelled; held: still live; not_held: the order holds nothing",
    },
    hold_expires_at: { type: ["string", "null"], format: "date-time" },
  },
};
const RELEASE_RESULT = {
  type: "object",
  required: ["order_id", "restored", "quantity", "lines"],
  properties: {
    order_id: { type: "string", format: "uuid" },
    restored: { type: "boolean" },
    quantity: { type: "integer", description: "Units restored over all lines" },
    lines: { type: "array", items: LINE, description: "The lines restored (empty when nothing stood)" },
  },
};

/** Inventory's HTTP surface: public reads, the internal deduct/release used by orders in split mode, and admin writes. */
export function inventoryRoutes(service: InventoryService, adminGuard: RouteGuard, serviceGuard: RouteGuard) {
  const api = new Elysia({ prefix: "/api/inventory", name: "inventory-routes", detail: { tags: ["inventory"] } })
    .get("", () => service.list(), {
      response: t.Array(InventoryItemSchema),
      detail: {
        operationId: "listInventory",
        summary: "List every item with its stock",
        responses: { 200: jsonResponse("Every item, ordered by item_id", { type: "array", items: schemaRef("InventoryItem") }, [ITEM_EXAMPLE]) },
      },
    })
    .get("/health", async ({ set }) => {
      const h = await service.health();
      if (!h.ok) set.status = 503;
      return h;
    }, { detail: { operationId: "inventoryHealth", summary: "Inventory module health", responses: healthResponses } })
    .get("/service/health", async ({ set }) => {
      const h = await service.health();
      if (!h.ok) set.status = 503;
      return h;
    }, {
      beforeHandle: serviceGuard,
      detail: {
        security: [{ bearer: [] }],
        operationId: "inventoryServiceHealth",
        summary: "Inventory module health behind the service token (what the orders role checks)",
        responses: healthResponses,
        description: "Answers as `/api/inventory/health` does, but only to the service token that deduct and release take, so a wrong token or URL shows on the orders role's health before any order fails.",
      },
    })
    .get("/service/stock-events", ({ query }) => service.stockEvents(query.after ?? null, query.limit ?? 100), {
      beforeHandle: serviceGuard,
      query: StockEventsQuery,
      detail: {
        security: [{ bearer: [] }],
        operationId: "listStockEvents",
        summary: "Inventory's own events (`stock.low`), oldest first, for the orders role's relay to import",
        description:
          "Internal: the orders role reads these after its cursor and delivers them with the order events (clients read them at `GET /api/events`). An event is listed once every change committed before it is visible, so a cursor never skips one; `next_after` is opaque.",
        responses: { 200: jsonResponse("A page of stock events", schemaRef("StockEventPage"), { events: [STOCK_EVENT_EXAMPLE], next_after: "812.4" }), ...problemResponses("invalid_request") },
      },
    })
    .get("/:item_id", ({ params }) => service.require(params.item_id), {
      params: ItemParams,
      response: { 200: InventoryItemSchema },
      detail: {
        operationId: "getInventoryItem",
        summary: "One item with its stock",
        responses: { 200: jsonResponse("The item", schemaRef("InventoryItem"), ITEM_EXAMPLE), ...problemResponses("invalid_request", "not_found") },
      },
    })
    .post(
      "/deduct",
      async ({ body }) => {
        noteOrderId(body.order_id);
        const seedForm = !("lines" in body);
        const lines = "lines" in body ? body.lines : [{ item_id: body.item_id, quantity: body.quantity }];
        const r = await service.deduct({ order_id: body.order_id, lines, ...("hold_s" in body && body.hold_s !== undefined ? { hold_s: body.hold_s } : {}) });
        // The seed's one-item body is answered with its one line at the top level too.
        const single = seedForm ? { item_id: lines[0]!.item_id, quantity: lines[0]!.quantity } : {};
        if (r.outcome === "applied") return { ...r, ...single, ...(seedForm ? { remaining: r.lines[0]?.remaining ?? null } : {}) };
        // A refusal is an answer, not a failure: 422 with the outcome, so the HTTP client can
        // tell it from a transport error and never retries it.
        return refusal(REJECTION_CODE[r.reason], `Order ${r.order_id} was refused: ${r.reason}`, { ...r, ...single });
      },
      {
        beforeHandle: serviceGuard,
        body: DeductBody,
        detail: {
          security: [{ bearer: [] }],
          operationId: "deductStock",
          summary: "Deduct every line of one order, all or nothing, at most once per order_id",
          responses: {
            200: jsonResponse("Applied (now or before: see `replayed`)", DEDUCT_RESULT),
            ...problemResponses("invalid_request", "duplicate_line_item", "unknown_item", "insufficient_stock", "order_released"),
          },
          description:
            "Takes `{order_id, lines}` (or the seed's one-item `{order_id, item_id, quantity}`). Every line is applied in one transaction or none is. A repeat with the same order_id returns the first outcome, lines included, with `replayed: true`. Refusals are 422 problems carrying `outcome`, `reason` and `rejected_lines` (every failing line); an item on two lines is a 400 `duplicate-line-item`.",
        },
      },
    )
    .post("/pay", ({ body }) => {
      noteOrderId(body.order_id);
      return service.pay(body.order_id, body.paid_at);
    }, {
      beforeHandle: serviceGuard,
      body: PayBody,
      detail: {
        operationId: "payHold",
        summary: "Turn a live hold into a sale, if it was paid before its deadline (idempotent)",
        description: "Decided under the order's account lock against the deadline recorded when the hold was made: paid in time, the reservation becomes a sale (`paid`); paid too late, the hold expires now (`expired`). Exactly one of payment and expiry wins.",
        security: [{ bearer: [] }],
        responses: { 200: jsonResponse("How the hold stands now", HOLD_RESULT, { order_id: "0b6f6a52-3c1e-4a8e-9d2f-5b7c1e2a9f10", outcome: "paid", hold_expires_at: "2026-01-05T10:15:00.000Z" }), ...problemResponses("invalid_request") },
      },
    })
    .post("/expire", ({ body }) => {
      noteOrderId(body.order_id);
      return service.expire(body.order_id);
    }, {
      beforeHandle: serviceGuard,
      body: ReleaseBody,
      detail: {
        operationId: "expireHold",
        summary: "Release a hold whose deadline has passed (idempotent; a live hold answers `held`)",
        security: [{ bearer: [] }],
        responses: { 200: jsonResponse("How the hold stands now", HOLD_RESULT, { order_id: "0b6f6a52-3c1e-4a8e-9d2f-5b7c1e2a9f10", outcome: "expired", hold_expires_at: "2026-01-05T10:15:00.000Z" }), ...problemResponses("invalid_request") },
      },
    })
    .post("/release", ({ body }) => {
      noteOrderId(body.order_id);
      return service.release(body.order_id);
    }, {
      beforeHandle: serviceGuard,
      body: ReleaseBody,
      detail: {
        operationId: "releaseStock",
        summary: "Close an order's account: restore a standing deduction and block later ones (idempotent)",
        security: [{ bearer: [] }],
        responses: { 200: jsonResponse("Released; `restored` tells whether stock came back", RELEASE_RESULT), ...problemResponses("invalid_request") },
      },
    });

  const admin = new Elysia({ prefix: "/api/admin/inventory", name: "inventory-admin-routes", detail: { tags: ["admin"] } })
    .onBeforeHandle(adminGuard)
    .post(
      "",
      async ({ body, set }) => {
        const item = await service.createItem(body.item_id, body.item_name, body.quantity, body.low_stock_threshold ?? 0);
        set.status = 201;
        return item;
      },
      {
        body: CreateItemBody,
        detail: {
          operationId: "createInventoryItem",
          summary: "Create an item with its opening stock",
          security: [{ bearer: [] }],
          description: "`low_stock_threshold` (optional, default 0 = off): at or below it the item is low, and a `stock.low` event is written when it becomes so (at creation too, when the opening stock is already at or below it).",
          requestBody: { required: true, content: { "application/json": { example: { item_id: "deck", item_name: "Steam Deck", quantity: 50, low_stock_threshold: 5 } } } },
          responses: {
            201: jsonResponse("Created", schemaRef("InventoryItem"), { ...ITEM_EXAMPLE, item_id: "deck", item_name: "Steam Deck", quantity: 50, low_stock_threshold: 5 }),
            ...problemResponses("invalid_request", "item_exists"),
          },
        },
      },
    )
    .patch("/:item_id", ({ params, body }) => service.setLowStockThreshold(params.item_id, body.low_stock_threshold), {
      params: ItemParams,
      body: ThresholdBody,
      detail: {
        operationId: "updateInventoryItem",
        summary: "Set an item's low-stock threshold (0 turns it off)",
        description:
          "The item is low while its available quantity is at or below the threshold; one `stock.low` event is written each time it becomes low, whether by a deduction, a hold, an adjustment or by this call (setting a threshold at or above the current stock), and none while it stays low. Sets a value, so sending it again changes nothing: no `Idempotency-Key` is needed.",
        security: [{ bearer: [] }],
        requestBody: { required: true, content: { "application/json": { example: { low_stock_threshold: 10 } } } },
        responses: { 200: jsonResponse("The item with its threshold", schemaRef("InventoryItem"), { ...ITEM_EXAMPLE, low_stock_threshold: 10 }), ...problemResponses("invalid_request", "not_found") },
      },
    });

  return new Elysia({ name: "inventory" }).use(api).use(admin);
}
