import { Elysia } from "elysia";
import { randomUUID } from "node:crypto";
import { INVENTORY_LIMITS, type InventoryItem } from "../modules/inventory/index.ts";
import { IDEMPOTENCY_KEY_PATTERN, ORDER_LIMITS } from "../modules/orders/index.ts";
import { html, type Html } from "./html.ts";
import { count, shortId, stateBadge } from "./components/format.ts";
import { CSRF_FIELD, type UiSession } from "./ui-security.ts";
import { formField, htmlResponse, isHtmx, notice, type ViewContext } from "./view-context.ts";

const ITEM_ID = new RegExp(INVENTORY_LIMITS.itemIdPattern);
/** The API's own rule for keys, so a form key is refused here exactly when the API would refuse it. */
const KEY = new RegExp(IDEMPOTENCY_KEY_PATTERN);
const LOW_STOCK = 10;

const newKey = () => `ui-${randomUUID()}`;

function stock(item: InventoryItem, oob = false): Html {
  const tone = item.quantity === 0 ? "stock--out" : item.quantity < LOW_STOCK ? "stock--low" : "";
  return html`<span class="stock ${tone}" id="stock-${item.item_id}"${oob ? html` hx-swap-oob="true"` : ""}>${count(item.quantity)}</span>`;
}

/** The form's key field. A fresh one is swapped in after each answer, so the next click is a new order. */
function keyField(itemId: string, key: string, oob = false): Html {
  return html`<input type="hidden" name="idempotency_key" id="key-${itemId}" value="${key}"${oob ? html` hx-swap-oob="true"` : ""}>`;
}

function productCard(item: InventoryItem, session: UiSession, canOrder: boolean, result?: Html): Html {
  const id = item.item_id;
  return html`<li class="card product">
  <div class="product__head">
    <h2 class="product__name">${item.item_name}</h2>
    <code class="product__id">${id}</code>
  </div>
  <p class="product__stock">${stock(item)} <span class="product__unit">in stock</span></p>
  ${
    canOrder
      ? html`<form class="order-form" method="post" action="/ui/orders" hx-post="/ui/orders" hx-target="find .order-result">
    <input type="hidden" name="item_id" value="${id}">
    <input type="hidden" name="${CSRF_FIELD}" value="${session.csrfToken}">
    ${keyField(id, newKey())}
    <div class="order-form__row">
      <label class="order-form__label" for="qty-${id}">Quantity</label>
      <input class="order-form__qty" id="qty-${id}" name="quantity" type="number" inputmode="numeric" min="1" max="${ORDER_LIMITS.quantityMax}" step="1" value="1" required>
      <button class="button button--primary" type="submit">Place order</button>
    </div>
    <div class="order-result" role="status" aria-live="polite">${result ?? ""}</div>
  </form>`
      : ""
  }
</li>`;
}

async function productsBody(ctx: ViewContext, session: UiSession, results: Record<string, Html> = {}): Promise<{ body: Html; status: number }> {
  let items: InventoryItem[];
  try {
    items = await ctx.deps.inventory.list();
  } catch (err) {
    const d = ctx.describe(err, "products page: inventory list");
    return {
      status: 503,
      body: html`<h1>Products</h1>${notice("error", html`The catalog could not be loaded: ${d.message}`)}`,
    };
  }
  const canOrder = !!ctx.deps.orders;
  return {
    status: 200,
    body: html`<div class="page-head">
  <h1>Products</h1>
  <p class="lede">Live stock from inventory. Every form carries an idempotency key made when it was rendered: a double click or a resubmitted form is answered from the first result and never orders twice.</p>
</div>
${canOrder ? "" : notice("info", "This instance hosts inventory only; orders are placed on an orders instance.")}
${
  items.length === 0
    ? notice("info", "The catalog is empty.")
    : html`<ul class="products" role="list" hx-get="/ui/fragments/stock" hx-trigger="every 5s" hx-swap="none">
  ${items.map((item) => productCard(item, session, canOrder, results[item.item_id]))}
</ul>`
}`,
  };
}

const REASONS: Record<string, string> = {
  insufficient_stock: "not enough stock",
  unknown_item: "no such item",
  released: "the order was cancelled",
};

function describeReason(reason: string | null): string {
  if (!reason) return "";
  if (reason.startsWith("inventory_unavailable")) {
    const kind = reason.split(":")[1];
    return `inventory did not answer${kind ? ` (${kind.replaceAll("_", " ")})` : ""}; queued for retry`;
  }
  return REASONS[reason] ?? reason.replaceAll("_", " ");
}

/** The answer to one order request: the HTTP status the API gives, the order's state and why. */
function orderResult(res: { status: number; body: string; replayed: boolean; orderId: string | null }): Html {
  let state = "unknown";
  let reason: string | null = null;
  try {
    const parsed = JSON.parse(res.body) as { status?: unknown; order_status?: unknown; reason?: unknown };
    state = String(res.status >= 400 ? parsed.order_status ?? "rejected" : parsed.status ?? "unknown");
    reason = typeof parsed.reason === "string" ? parsed.reason : null;
  } catch {
    // The body is ours and always JSON; if it is not, the status code still tells the story.
  }
  return html`<p class="result result--${res.status}" data-http-status="${res.status}" data-order-state="${state}">
  <span class="result__code" title="HTTP status">${res.status}</span>
  ${stateBadge(state)}
  ${res.orderId ? html`<span>order <a href="/orders/${res.orderId}"><code>${shortId(res.orderId)}</code></a></span>` : ""}
  ${reason ? html`<span class="result__reason">${describeReason(reason)}</span>` : ""}
  ${res.replayed ? html`<span class="result__replayed">replayed: same key, first answer</span>` : ""}
</p>`;
}

function failureResult(status: number, message: string): Html {
  return html`<p class="result result--${status}" data-http-status="${status}" data-order-state="none">
  <span class="result__code" title="HTTP status">${status}</span>
  <span class="result__reason">${message}</span>
</p>`;
}

export function productRoutes(ctx: ViewContext) {
  const { deps, security } = ctx;

  /** Places one order; the answer is a fragment (htmx) or the whole page (a plain form post). */
  const placeOrder = async (request: Request, body: unknown): Promise<Response> => {
    const session = security.session(request);
    const itemId = formField(body, "item_id") ?? "";
    const respond = async (status: number, result: Html, extra: Html = html``) => {
      if (isHtmx(request)) {
        // A fresh key for the next click; the answer above stays bound to the key that made it.
        const fresh = ITEM_ID.test(itemId) ? keyField(itemId, newKey(), true) : "";
        return htmlResponse(html`${result}${fresh}${extra}`, { status, session });
      }
      const page = await productsBody(ctx, session, ITEM_ID.test(itemId) ? { [itemId]: result } : {});
      const shown = ITEM_ID.test(itemId) ? page.body : html`${notice("error", result)}${page.body}`;
      return htmlResponse(ctx.page("products", "Products", shown), { status, session });
    };

    const csrf = security.verify(request, formField(body, CSRF_FIELD));
    if (!csrf.ok) return respond(403, failureResult(403, `Refused: ${csrf.reason}.`));
    if (!deps.orders) return respond(404, failureResult(404, "This instance does not take orders."));

    const quantityRaw = formField(body, "quantity") ?? "";
    const quantity = /^\d{1,6}$/.test(quantityRaw.trim()) ? Number(quantityRaw.trim()) : NaN;
    const key = formField(body, "idempotency_key") ?? "";
    if (!ITEM_ID.test(itemId)) return respond(400, failureResult(400, "Unknown item id."));
    if (!(quantity >= 1 && quantity <= ORDER_LIMITS.quantityMax)) {
      return respond(400, failureResult(400, `Quantity must be a whole number from 1 to ${count(ORDER_LIMITS.quantityMax)}.`));
    }
    if (!KEY.test(key)) return respond(400, failureResult(400, "The form's idempotency key is missing or malformed; reload the page."));

    // Orders placed here are order requests like any other: they count in the health banner.
    const started = performance.now();
    let status: number;
    let result: Html;
    try {
      const res = await deps.orders.create(key, { item_id: itemId, quantity }, request.headers.get("x-request-id"));
      status = res.status;
      result = orderResult(res);
    } catch (err) {
      const d = ctx.describe(err, "place order from page");
      status = d.status;
      result = failureResult(d.status, d.message);
    } finally {
      deps.window.record(performance.now() - started);
    }
    let stockOob: Html = html``;
    try {
      const item = await deps.inventory.get(itemId);
      if (item) stockOob = stock(item, true);
    } catch {
      // The stock figure refreshes on the next poll anyway.
    }
    return respond(status, result, stockOob);
  };

  return new Elysia({ name: "views-products", detail: { hide: true } })
    .get("/", async ({ request }) => {
      const session = security.session(request);
      const { body, status } = await productsBody(ctx, session);
      return htmlResponse(ctx.page("products", "Products", body), { status, session });
    })
    .get("/ui/fragments/stock", async () => {
      // Only out-of-band pieces: each stock figure finds its own place, the forms are left alone.
      try {
        const items = await deps.inventory.list();
        return htmlResponse(html`${items.map((i) => stock(i, true))}`);
      } catch {
        return new Response(null, { status: 204 });
      }
    })
    .post("/ui/orders", ({ request, body }) => placeOrder(request, body));
}
