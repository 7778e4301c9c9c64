import { Elysia } from "elysia";
import { FINAL_STATUSES, ORDER_STATUSES, type OrderStatus, type OrderView } from "../modules/orders/index.ts";
import { html, type Html } from "./html.ts";
import { count, shortId, stateBadge, time } from "./components/format.ts";
import { htmlResponse, notice, type ViewContext } from "./view-context.ts";
import type { OrderWithHistory } from "./view-deps.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LIST_LIMIT = 50;

function parseStatus(v: unknown): OrderStatus | undefined {
  return typeof v === "string" && (ORDER_STATUSES as readonly string[]).includes(v) ? (v as OrderStatus) : undefined;
}

const listQuery = (status: OrderStatus | undefined) => (status ? `?status=${status}` : "");

function ordersTable(orders: OrderView[], now: number, status: OrderStatus | undefined): Html {
  if (orders.length === 0) {
    return html`<p class="empty">${status ? html`No ${status} orders yet.` : "No orders yet. Place one from the products page."}</p>`;
  }
  return html`<table class="table orders-table">
  <caption class="visually-hidden">${status ? `The newest ${status} orders` : "The newest orders"}, newest first</caption>
  <thead><tr><th scope="col">Order</th><th scope="col">Item</th><th scope="col" class="num">Qty</th><th scope="col">State</th><th scope="col">Reason</th><th scope="col" class="num">Attempts</th><th scope="col">Updated</th></tr></thead>
  <tbody>
    ${orders.map(
      (o) => html`<tr id="order-${o.order_id}" data-state="${o.status}">
      <td><a href="/orders/${o.order_id}"><code>${shortId(o.order_id)}</code></a></td>
      <td>${o.lines.map((l, i) => html`${i ? ", " : ""}<code>${l.item_id}</code>`)}</td>
      <td class="num">${count(o.lines.reduce((n, l) => n + l.quantity, 0))}</td>
      <td>${stateBadge(o.status)}</td>
      <td class="muted">${o.reason ?? ""}</td>
      <td class="num">${o.attempts}</td>
      <td>${time(o.updated_at, now)}</td>
    </tr>`,
    )}
  </tbody>
</table>`;
}

function detailBody(o: OrderWithHistory, now: number): Html {
  const final = (FINAL_STATUSES as readonly string[]).includes(o.status);
  // While the order can still move, the fragment polls; a final one returns without the trigger and stops.
  const live = final ? html`` : html` hx-get="/ui/fragments/orders/${o.order_id}" hx-trigger="every 2s" hx-swap="outerMorph"`;
  return html`<section id="order-detail" class="card order-detail" data-state="${o.status}"${live}>
  <dl class="facts">
    <div><dt>State</dt><dd>${stateBadge(o.status)}${final ? "" : html` <span class="muted">(refreshing)</span>`}</dd></div>
    <div><dt>Lines</dt><dd>${o.lines.map((l, i) => html`${i ? ", " : ""}<code>${l.item_id}</code> × ${count(l.quantity)}`)}</dd></div>
    <div><dt>Attempts</dt><dd>${o.attempts}</dd></div>
    <div><dt>Reason</dt><dd>${o.reason ?? "–"}</dd></div>
    <div><dt>Created</dt><dd>${time(o.created_at, now)}</dd></div>
  </dl>
  <h2>History</h2>
  <ol class="timeline">
    ${o.history.map(
      (h) => html`<li class="timeline__item">
      ${stateBadge(h.status)}
      ${h.reason ? html`<span class="muted">${h.reason}</span>` : ""}
      <time datetime="${h.at}">${h.at.replace("T", " ").replace("Z", " UTC")}</time>
    </li>`,
    )}
  </ol>
</section>`;
}

export function orderRoutes(ctx: ViewContext) {
  const { deps, security } = ctx;

  const listFragment = async (status: OrderStatus | undefined): Promise<Html> => {
    if (!deps.orders) return notice("info", "This instance does not host orders.");
    try {
      return ordersTable(await deps.orders.list({ status, limit: LIST_LIMIT }), ctx.clock.now(), status);
    } catch (err) {
      return notice("error", html`Orders could not be loaded: ${ctx.describe(err, "orders list").message}`);
    }
  };

  const loadOrder = async (id: string): Promise<{ order: OrderWithHistory } | { status: number; message: string }> => {
    if (!deps.orders) return { status: 404, message: "This instance does not host orders." };
    if (!UUID.test(id)) return { status: 404, message: "No order with that id." };
    try {
      return { order: await deps.orders.get(id) };
    } catch (err) {
      const d = ctx.describe(err, "order detail");
      return { status: d.status, message: d.status === 404 ? "No order with that id." : d.message };
    }
  };

  return new Elysia({ name: "views-orders", detail: { hide: true } })
    .get("/orders", async ({ request, query }) => {
      const session = security.session(request);
      const status = parseStatus(query.status);
      const filters = [undefined, ...ORDER_STATUSES].map(
        (s) => html`<li><a href="/orders${listQuery(s)}"${s === status ? html` aria-current="true"` : ""}>${s ?? "all"}</a></li>`,
      );
      const body = html`<div class="page-head">
  <h1>Orders</h1>
  <p class="lede">The newest ${LIST_LIMIT} orders, refreshed every two seconds: a <em>queued</em> order turns <em>confirmed</em> here once the retry worker gets through.</p>
</div>
<nav class="filters" aria-label="Filter by state"><ul>${filters}</ul></nav>
<div id="orders-live" hx-get="/ui/fragments/orders${listQuery(status)}" hx-trigger="every 2s" hx-swap="innerMorph">
  ${await listFragment(status)}
</div>`;
      return htmlResponse(ctx.page("orders", status ? `Orders: ${status}` : "Orders", body), { session });
    })
    .get("/ui/fragments/orders", async ({ query }) => htmlResponse(await listFragment(parseStatus(query.status))))
    .get("/orders/:id", async ({ request, params }) => {
      const session = security.session(request);
      const r = await loadOrder(params.id);
      if ("status" in r) {
        const body = html`<div class="page-head"><h1>Order not found</h1></div>${notice("warning", r.message)}<p><a href="/orders">All orders</a></p>`;
        return htmlResponse(ctx.page("orders", "Order not found", body), { status: r.status, session });
      }
      const body = html`<div class="page-head">
  <p class="crumbs"><a href="/orders">Orders</a></p>
  <h1>Order <code>${shortId(r.order.order_id)}</code></h1>
  <p class="lede mono">${r.order.order_id}</p>
</div>
${detailBody(r.order, ctx.clock.now())}`;
      return htmlResponse(ctx.page("orders", `Order ${shortId(r.order.order_id)}`, body), { session });
    })
    .get("/ui/fragments/orders/:id", async ({ params }) => {
      const r = await loadOrder(params.id);
      if ("status" in r) return htmlResponse(notice("warning", r.message), { status: r.status });
      return htmlResponse(detailBody(r.order, ctx.clock.now()));
    });
}
