import { Elysia } from "elysia";
import { IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_KEY_PATTERN, optionalIdempotencyKey, parseIdempotencyKey } from "../../../platform/idempotency-key.ts";
import { jsonResponse, problemResponses, schemaRef } from "../../../platform/openapi.ts";
import { INVENTORY_LIMITS } from "../inventory.rules.ts";
import type { StoredAnswer } from "./request-keys.repository.ts";
import type { LedgerService } from "./ledger.service.ts";
import { ItemParams, RestockBody } from "./inventory.model.ts";
import { AdjustBody, LEDGER_LIMITS, MovementPageSchema, MovementsQuery } from "./ledger.model.ts";
import type { RouteGuard } from "./inventory.routes.ts";

const STOCK_CHANGE_EXAMPLE = { item_id: "ps5", item_name: "PlayStation 5", quantity: 40, reserved_quantity: 0, low_stock_threshold: 0, updated_at: "2026-01-05T10:00:00.000Z", movement_id: 1234 };
const PAGE_EXAMPLE = {
  item_id: "ps5",
  movements: [
    { id: 1234, type: "adjust", quantity_change: -2, reserved_change: 0, order_id: null, reason: "Two units broken in transit", created_at: "2026-01-05T10:00:00.000Z" },
    { id: 1201, type: "deduct", quantity_change: -1, reserved_change: 0, order_id: "0b6f6a52-3c1e-4a8e-9d2f-5b7c1e2a9f10", reason: null, created_at: "2026-01-05T09:58:12.004Z" },
  ],
  next_before: 1201,
};

const REPLAYED_HEADER = {
  "Idempotent-Replayed": { description: "`true` when this is the stored answer to an earlier request with the same key", schema: { type: "string", enum: ["true"] } },
};
const keyParameter = (required: boolean) => ({
  name: "Idempotency-Key",
  in: "header" as const,
  required,
  description:
    `One key per logical change, kept across retries: the same key and body is answered with the first answer (\`Idempotent-Replayed: true\`), another body with 422. A refusal (404, 409, 422 stock limit) changes nothing, not even the key: the same key may be sent again once the stock allows it. 1–${IDEMPOTENCY_KEY_MAX} printable ASCII characters.` +
    (required ? "" : " Optional here: without it the restock is applied as sent (the seed's clients send none)."),
  schema: { type: "string" as const, minLength: 1, maxLength: IDEMPOTENCY_KEY_MAX, pattern: IDEMPOTENCY_KEY_PATTERN },
  example: "restock-2026-01-05-ps5",
});

function send(answer: StoredAnswer): Response {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (answer.replayed) headers["idempotent-replayed"] = "true";
  return new Response(answer.body, { status: answer.status, headers });
}

/** The ledger's HTTP surface: an item's movements (public), restock and adjust (admin). */
export function ledgerRoutes(ledger: LedgerService, adminGuard: RouteGuard) {
  const api = new Elysia({ prefix: "/api/inventory", name: "ledger-routes", detail: { tags: ["inventory"] } }).get(
    "/:item_id/movements",
    ({ params, query }) => ledger.movements(params.item_id, query),
    {
      params: ItemParams,
      query: MovementsQuery,
      response: { 200: MovementPageSchema },
      detail: {
        operationId: "listInventoryMovements",
        summary: "An item's ledger: every change of its quantity, newest first",
        description: `Each movement is one change of the item's quantity (\`create\`, \`deduct\`, \`release\`, \`restock\`, \`adjust\`; for holds \`hold\`, \`hold_release\`, \`sale\`), with its order id and reason where there is one; the item's quantity is always the sum of the movements' \`quantity_change\`, its reserved quantity the sum of their \`reserved_change\`. Pages of \`limit\` (1–${LEDGER_LIMITS.pageMax}, default ${LEDGER_LIMITS.pageDefault}); pass \`next_before\` as \`before\` for the next, older page.`,
        responses: { 200: jsonResponse("A page of movements, newest first", schemaRef("MovementPage"), PAGE_EXAMPLE), ...problemResponses("invalid_request", "not_found") },
      },
    },
  );

  const admin = new Elysia({ prefix: "/api/admin/inventory", name: "ledger-admin-routes", detail: { tags: ["admin"] } })
    .onBeforeHandle(adminGuard)
    .post(
      "/:item_id/restock",
      async ({ params, body, request }) => send(await ledger.restock(params.item_id, optionalIdempotencyKey(request.headers.get("idempotency-key")), body)),
      {
        params: ItemParams,
        body: RestockBody,
        detail: {
          operationId: "restockInventoryItem",
          summary: "Add stock, recorded as a `restock` movement (with its reason, when given)",
          security: [{ bearer: [] }],
          parameters: [keyParameter(false)],
          requestBody: { required: true, content: { "application/json": { example: { quantity: 10, reason: "Delivery 4711" } } } },
          responses: {
            200: jsonResponse("The item with its new stock and the movement", schemaRef("StockChange"), { ...STOCK_CHANGE_EXAMPLE, quantity: 52 }, REPLAYED_HEADER),
            ...problemResponses("invalid_request", "missing_idempotency_key", "invalid_idempotency_key", "not_found", "stock_limit", "idempotency_key_reused"),
          },
        },
      },
    )
    .post(
      "/:item_id/adjust",
      async ({ params, body, request }) => send(await ledger.adjust(params.item_id, parseIdempotencyKey(request.headers.get("idempotency-key")), body)),
      {
        params: ItemParams,
        body: AdjustBody,
        detail: {
          operationId: "adjustInventoryItem",
          summary: "Correct stock by hand (a count, breakage), recorded as an `adjust` movement with its reason",
          description: `\`quantity_change\` is added to the stock (negative takes away; not 0, at most ${LEDGER_LIMITS.adjustMax} either way). A change that would take the stock below zero is a 409 and changes nothing; above ${INVENTORY_LIMITS.stockMax} is a 422. The change, its movement and the key's answer commit together.`,
          security: [{ bearer: [] }],
          parameters: [keyParameter(true)],
          requestBody: { required: true, content: { "application/json": { example: { quantity_change: -2, reason: "Two units broken in transit" } } } },
          responses: {
            200: jsonResponse("The item with its new stock and the movement", schemaRef("StockChange"), STOCK_CHANGE_EXAMPLE, REPLAYED_HEADER),
            ...problemResponses("invalid_request", "missing_idempotency_key", "invalid_idempotency_key", "not_found", "stock_below_zero", "stock_limit", "idempotency_key_reused"),
          },
        },
      },
    );

  return new Elysia({ name: "ledger" }).use(api).use(admin);
}
