import { Elysia } from "elysia";
import { INVENTORY_LIMITS, type InventoryItem, type MovementPage } from "../modules/inventory/index.ts";
import { html, type Html } from "./html.ts";
import { count, shortId, time } from "./components/format.ts";
import { htmlResponse, notice, type ViewContext } from "./view-context.ts";

const ITEM_ID = new RegExp(INVENTORY_LIMITS.itemIdPattern);
const PAGE = 50;

/** What each movement type means, in a reader's words. */
const MOVEMENT_LABEL: Record<string, string> = {
  create: "opening stock",
  deduct: "sold",
  release: "given back (cancelled)",
  restock: "restocked",
  adjust: "adjusted",
  hold: "held for an order",
  hold_release: "hold released",
  sale: "hold paid",
};

const signed = (n: number) => (n > 0 ? `+${count(n)}` : n < 0 ? `−${count(-n)}` : "0");

function movementsTable(page: MovementPage, now: number): Html {
  if (page.movements.length === 0) return notice("info", "No movements on this page.");
  return html`<table class="table movements">
  <thead><tr><th>When</th><th>Movement</th><th class="num">Available</th><th class="num">Reserved</th><th>Order</th><th>Reason</th></tr></thead>
  <tbody>
    ${page.movements.map(
      (m) => html`<tr data-movement-id="${m.id}" data-type="${m.type}">
      <td>${time(m.created_at, now)}</td>
      <td><code>${m.type}</code> <span class="muted">${MOVEMENT_LABEL[m.type] ?? ""}</span></td>
      <td class="num">${signed(m.quantity_change)}</td>
      <td class="num">${m.reserved_change ? signed(m.reserved_change) : ""}</td>
      <td>${m.order_id ? html`<a href="/orders/${m.order_id}"><code>${shortId(m.order_id)}</code></a>` : ""}</td>
      <td>${m.reason ?? ""}</td>
    </tr>`,
    )}
  </tbody>
</table>`;
}

function itemBody(item: InventoryItem, page: MovementPage, before: number | undefined, now: number): Html {
  const id = encodeURIComponent(item.item_id);
  const nav = html`<nav class="pager" aria-label="Ledger pages">
  ${before !== undefined ? html`<a href="/items/${id}">Newest</a>` : ""}
  ${page.next_before !== null ? html`<a href="/items/${id}?before=${page.next_before}" rel="next">Older movements</a>` : ""}
</nav>`;
  return html`<div class="page-head">
  <h1>${item.item_name} <code>${item.item_id}</code></h1>
  <p class="lede">Every change of this item's stock is a movement in its ledger. The available quantity is always the sum of the movements' available column, the reserved quantity the sum of the reserved column; a check compares them on a schedule, and a difference is an alarm, never corrected.</p>
</div>
<dl class="facts">
  <div><dt>Available</dt><dd>${count(item.quantity)}</dd></div>
  <div><dt>Reserved</dt><dd>${count(item.reserved_quantity)}</dd></div>
  <div><dt>Low-stock threshold</dt><dd>${item.low_stock_threshold > 0 ? html`${count(item.low_stock_threshold)}${item.quantity <= item.low_stock_threshold ? html` <strong>low</strong>` : ""}` : html`<span class="muted">off</span>`}</dd></div>
  <div><dt>Updated</dt><dd>${time(item.updated_at, now)}</dd></div>
</dl>
<h2>Ledger${before !== undefined ? html` <span class="muted">(older than movement ${before})</span>` : ""}</h2>
${movementsTable(page, now)}
${nav}`;
}

/** `/items/:item_id`: an item's stock and its ledger, newest first, paged with plain links (no JavaScript needed). */
export function itemRoutes(ctx: ViewContext) {
  const { deps, security } = ctx;
  return new Elysia({ name: "views-items", detail: { hide: true } }).get("/items/:item_id", async ({ params, request }) => {
    const session = security.session(request);
    const notFound = (message: string, status = 404) =>
      htmlResponse(ctx.page("products", "Item not found", html`<h1>Item not found</h1>${notice("error", message)}<p><a href="/">Back to the products</a></p>`), { status, session });
    const itemId = params.item_id;
    if (!ITEM_ID.test(itemId)) return notFound("No item with that id.");
    const raw = new URL(request.url).searchParams.get("before");
    const before = raw !== null && /^\d{1,15}$/.test(raw) && Number(raw) > 0 ? Number(raw) : undefined;
    if (raw !== null && before === undefined) return notFound("That page of the ledger does not exist.", 400);
    try {
      const [item, page] = await Promise.all([deps.inventory.get(itemId), deps.inventory.movements(itemId, { limit: PAGE, ...(before ? { before } : {}) })]);
      if (!item || !page) return notFound("No item with that id.");
      return htmlResponse(ctx.page("products", `${item.item_name}: ledger`, itemBody(item, page, before, ctx.clock.now())), { session });
    } catch (err) {
      const d = ctx.describe(err, "item page");
      return htmlResponse(ctx.page("products", "Item", html`<h1>${itemId}</h1>${notice("error", html`The ledger could not be loaded: ${d.message}`)}`), {
        status: d.status >= 500 ? 503 : d.status,
        session,
      });
    }
  });
}
