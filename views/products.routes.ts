import { Elysia } from "elysia";
import { randomUUID } from "node:crypto";
import { INVENTORY_LIMITS, type InventoryItem } from "../modules/inventory/index.ts";
import { IDEMPOTENCY_KEY_PATTERN, ORDER_LIMITS } from "../modules/orders/index.ts";
import { html, type Html } from "./html.ts";
import { count } from "./components/format.ts";
import { failureResult, orderResult, type Line } from "./components/order-result.ts";
import { CSRF_FIELD, type UiSession } from "./ui-security.ts";
import { formField, formFields, htmlResponse, isHtmx, notice, whileKeyInFlight, type ViewContext } from "./view-context.ts";
import type { OrderAnswer } from "./view-deps.ts";

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
function keyField(key: string, oob = false): Html {
  return html`<input type="hidden" name="idempotency_key" id="order-key" value="${key}"${oob ? html` hx-swap-oob="true"` : ""}>`;
}

/** One line of the order form. Every card sends its item and its quantity; a zero is no line. */
function quantityField(itemId: string, value: string, oob = false): Html {
  return html`<input class="order-form__qty" id="qty-${itemId}" name="quantity" type="number" inputmode="numeric" min="0" max="${ORDER_LIMITS.quantityMax}" step="1" value="${value}"${oob ? html` hx-swap-oob="true"` : ""}>`;
}

function productCard(item: InventoryItem, canOrder: boolean, quantity: string): Html {
  const id = item.item_id;
  return html`<li class="card product" data-item-id="${id}">
  <div class="product__head">
    <h2 class="product__name">${item.item_name}</h2>
    <code class="product__id">${id}</code>
  </div>
  <p class="product__stock">${stock(item)} <span class="product__unit">in stock</span></p>
  ${
    canOrder
      ? html`<div class="order-form__row">
    <input type="hidden" name="item_id" value="${id}">
    <label class="order-form__label" for="qty-${id}">Quantity</label>
    ${quantityField(id, quantity)}
  </div>`
      : ""
  }
</li>`;
}

interface FormState {
  /** The answer to the last submit, shown beside the button. */
  result?: Html;
  /** What each quantity field shows: what was entered, when the order did not go through. */
  quantities?: ReadonlyMap<string, string>;
  /** The key the form carries: a fresh one, unless the last outcome is unknown and a retry must reuse it. */
  key?: string;
}

async function productsBody(ctx: ViewContext, session: UiSession, state: FormState = {}): Promise<{ body: Html; status: number }> {
  let items: InventoryItem[];
  try {
    items = await ctx.deps.inventory.list();
  } catch (err) {
    const d = ctx.describe(err, "products page: inventory list");
    return {
      status: 503,
      body: html`<h1>Products</h1>${state.result ? notice("error", state.result) : ""}${notice("error", html`The catalog could not be loaded: ${d.message}`)}`,
    };
  }
  const canOrder = !!ctx.deps.orders;
  const list = html`<ul class="products" role="list" hx-get="/ui/fragments/stock" hx-trigger="every 5s" hx-swap="none">
  ${items.map((item) => productCard(item, canOrder, state.quantities?.get(item.item_id) ?? "0"))}
</ul>`;
  let catalog: Html;
  if (items.length === 0) catalog = html`${state.result ? notice("error", state.result) : ""}${notice("info", "The catalog is empty.")}`;
  else if (!canOrder) catalog = html`${state.result ? notice("error", state.result) : ""}${list}`;
  else {
    catalog = html`<form id="order-form" class="order-form" method="post" action="/ui/orders" hx-post="/ui/orders" hx-target="#order-result">
  <input type="hidden" name="${CSRF_FIELD}" value="${session.csrfToken}">
  ${keyField(state.key ?? newKey())}
  ${list}
  <div class="basket">
    <p class="basket__hint">Set a quantity on every item you want, then place them as one order: it takes all its lines or none.</p>
    <button class="button button--primary" type="submit">Place order</button>
    <div id="order-result" class="order-result" role="status" aria-live="polite">${state.result ?? ""}</div>
  </div>
</form>`;
  }
  return {
    status: 200,
    body: html`<div class="page-head">
  <h1>Products</h1>
  <p class="lede">Live stock from inventory. Put a quantity on each item you want and place them as one order. The form carries an idempotency key made when it was rendered: a double click or a resubmitted form is answered from the first result and never orders twice.</p>
</div>
${canOrder ? "" : notice("info", "This instance hosts inventory only; orders are placed on an orders instance.")}
${catalog}`,
  };
}

type Parsed = { ok: true; lines: Line[] } | { ok: false; message: string };

/** The form's lines: one per card with a quantity above zero, in the catalog's order. */
function parseLines(body: unknown): Parsed {
  const ids = formFields(body, "item_id");
  const quantities = formFields(body, "quantity");
  if (ids.length !== quantities.length) return { ok: false, message: "The form arrived incomplete; reload the page and try again." };
  const lines: Line[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!ITEM_ID.test(id)) return { ok: false, message: "Unknown item id." };
    const raw = quantities[i]!.trim();
    if (raw === "" || /^0+$/.test(raw)) continue;
    const q = /^\d{1,6}$/.test(raw) ? Number(raw) : NaN;
    if (!(q >= 1 && q <= ORDER_LIMITS.quantityMax)) {
      return { ok: false, message: `Quantity for ${id} must be a whole number from 0 to ${count(ORDER_LIMITS.quantityMax)}.` };
    }
    lines.push({ item_id: id, quantity: q });
  }
  if (lines.length === 0) return { ok: false, message: "Nothing to order: set a quantity above zero on at least one item." };
  if (lines.length > INVENTORY_LIMITS.linesMax) {
    return { ok: false, message: `An order has at most ${INVENTORY_LIMITS.linesMax} lines; this one has ${lines.length}.` };
  }
  return { ok: true, lines };
}

/**
 * Whether the form should keep its key for the next submit: when the outcome is unknown (the
 * database went away, the first request is still running), a retry must carry the same key to
 * be answered from the first request rather than order again.
 */
const keepsKey = (status: number) => status >= 500 || status === 409;

export function productRoutes(ctx: ViewContext) {
  const { deps, security } = ctx;

  /** Places one order of every line the form names; the answer is a fragment (htmx) or the whole page (a plain form post). */
  const placeOrder = async (request: Request, body: unknown): Promise<Response> => {
    const session = security.session(request);
    const submittedKey = formField(body, "idempotency_key") ?? "";
    const entered = new Map<string, string>();
    const ids = formFields(body, "item_id");
    const quantities = formFields(body, "quantity");
    ids.forEach((id, i) => ITEM_ID.test(id) && entered.set(id, quantities[i] ?? "0"));

    const respond = async (status: number, result: Html, after: { ordered?: Line[]; extra?: Html } = {}) => {
      const key = keepsKey(status) && KEY.test(submittedKey) ? submittedKey : newKey();
      if (isHtmx(request)) {
        // The answer stays bound to the key that made it; the form gets the key for the next click
        // and, once the order went through, its quantities back at zero.
        const reset = (after.ordered ?? []).filter((l) => ITEM_ID.test(l.item_id)).map((l) => quantityField(l.item_id, "0", true));
        return htmlResponse(html`${result}${keyField(key, true)}${reset}${after.extra ?? ""}`, { status, session });
      }
      const page = await productsBody(ctx, session, { result, key, quantities: after.ordered ? undefined : entered });
      return htmlResponse(ctx.page("products", "Products", page.body), { status, session });
    };

    const csrf = security.verify(request, formField(body, CSRF_FIELD));
    if (!csrf.ok) return respond(403, failureResult(403, `Refused: ${csrf.reason}.`));
    if (!deps.orders) return respond(404, failureResult(404, "This instance does not take orders."));
    if (!KEY.test(submittedKey)) return respond(400, failureResult(400, "The form's idempotency key is missing or malformed; reload the page."));
    const parsed = parseLines(body);
    if (!parsed.ok) return respond(400, failureResult(400, parsed.message));
    const { lines } = parsed;

    // Orders placed here are order requests like any other: they count in the health banner.
    const started = performance.now();
    const orders = deps.orders;
    let answer: OrderAnswer | null = null;
    let status: number;
    let failure: Html | null = null;
    try {
      answer = await whileKeyInFlight(ctx.clock, () => orders.create(submittedKey, { lines }, request.headers.get("x-request-id")));
      status = answer.status;
    } catch (err) {
      const d = ctx.describe(err, "place order from page");
      status = d.status;
      failure = failureResult(d.status, d.message);
    } finally {
      deps.window.record(performance.now() - started);
    }
    // Names for the answer, and the new stock figures of the items it touched.
    let names = new Map<string, string>();
    let stockOob: Html[] = [];
    try {
      const touched = new Set(lines.map((l) => l.item_id));
      const items = await deps.inventory.list();
      names = new Map(items.map((i) => [i.item_id, i.item_name]));
      stockOob = items.filter((i) => touched.has(i.item_id)).map((i) => stock(i, true));
    } catch {
      // The stock figures refresh on the next poll anyway; the answer names items by id.
    }
    const result = answer ? orderResult(answer, names) : failure!;
    const went = status === 201 || status === 202;
    return respond(status, result, { ...(went ? { ordered: lines } : {}), extra: html`${stockOob}` });
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
