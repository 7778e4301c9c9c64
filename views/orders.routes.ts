import { Elysia } from "elysia";
import { randomUUID } from "node:crypto";
import { INVENTORY_LIMITS } from "../modules/inventory/index.ts";
import { CANCELLABLE_STATUSES, FINAL_STATUSES, IDEMPOTENCY_KEY_PATTERN, ORDER_STATUSES, type OrderStatus, type OrderView } from "../modules/orders/index.ts";
import { html, type Html } from "./html.ts";
import { count, shortId, stateBadge, time } from "./components/format.ts";
import { describeReason, failureResult, orderResult, type Line } from "./components/order-result.ts";
import { CSRF_FIELD, type UiSession } from "./ui-security.ts";
import { formField, htmlResponse, isHtmx, notice, whileKeyInFlight, type ViewContext } from "./view-context.ts";
import type { OrderAnswer, OrderWithHistory } from "./view-deps.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const KEY = new RegExp(IDEMPOTENCY_KEY_PATTERN);
const LIST_LIMIT = 50;
/** Lines named in a list row before the rest are counted instead. */
const ROW_LINES = 3;
/** The API's rule for a cancel reason: 1–200 characters, no control characters. */
const REASON_MAX = INVENTORY_LIMITS.reasonMax;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** Who the history names for a cancel asked from these pages. */
const ACTOR = "web";

const newCancelKey = () => `ui-cancel-${randomUUID()}`;
const cancellable = (status: string) => (CANCELLABLE_STATUSES as readonly string[]).includes(status);

function parseStatus(v: unknown): OrderStatus | undefined {
  return typeof v === "string" && (ORDER_STATUSES as readonly string[]).includes(v) ? (v as OrderStatus) : undefined;
}

const listQuery = (status: OrderStatus | undefined) => (status ? `?status=${status}` : "");
const units = (lines: readonly Line[]) => lines.reduce((n, l) => n + l.quantity, 0);

function linesCell(lines: readonly Line[]): Html {
  const shown = lines.slice(0, ROW_LINES);
  const more = lines.length - shown.length;
  return html`${shown.map((l, i) => html`${i ? ", " : ""}<code>${l.item_id}</code> × ${count(l.quantity)}`)}${more > 0 ? html` <span class="muted">and ${more} more</span>` : ""}`;
}

function ordersTable(orders: OrderView[], now: number, status: OrderStatus | undefined): Html {
  if (orders.length === 0) {
    return html`<p class="empty">${status ? html`No ${status} orders yet.` : "No orders yet. Place one from the products page."}</p>`;
  }
  return html`<table class="table orders-table">
  <caption class="visually-hidden">${status ? `The newest ${status} orders` : "The newest orders"}, newest first</caption>
  <thead><tr><th scope="col">Order</th><th scope="col">Lines</th><th scope="col" class="num">Units</th><th scope="col">State</th><th scope="col">Reason</th><th scope="col" class="num">Attempts</th><th scope="col">Updated</th></tr></thead>
  <tbody>
    ${orders.map(
      (o) => html`<tr id="order-${o.order_id}" data-state="${o.status}" data-lines="${o.lines.length}">
      <td><a href="/orders/${o.order_id}"><code>${shortId(o.order_id)}</code></a></td>
      <td>${linesCell(o.lines)}</td>
      <td class="num">${count(units(o.lines))}</td>
      <td>${stateBadge(o.status)}</td>
      <td class="muted">${describeReason(o.reason)}</td>
      <td class="num">${o.attempts}</td>
      <td>${time(o.updated_at, now)}</td>
    </tr>`,
    )}
  </tbody>
</table>`;
}

function linesTable(o: OrderView, names: ReadonlyMap<string, string>): Html {
  const refused = new Map((o.rejected_lines ?? []).map((r) => [r.item_id, r.reason]));
  const showOutcome = o.status === "rejected";
  return html`<table class="table lines-table">
  <caption class="visually-hidden">The order's lines, in the order sent</caption>
  <thead><tr><th scope="col">Item</th><th scope="col">Name</th><th scope="col" class="num">Quantity</th>${showOutcome ? html`<th scope="col">Outcome</th>` : ""}</tr></thead>
  <tbody>
    ${o.lines.map((l) => {
      const why = refused.get(l.item_id);
      return html`<tr class="line${why ? " line--refused" : ""}" data-item-id="${l.item_id}"${why ? html` data-line-reason="${why}"` : ""}>
      <td><code>${l.item_id}</code></td>
      <td>${names.get(l.item_id) ?? ""}</td>
      <td class="num">${count(l.quantity)}</td>
      ${showOutcome ? html`<td>${why ? html`<strong class="line__refused">${describeReason(why)}</strong>` : html`<span class="muted">fine, but nothing was taken</span>`}</td>` : ""}
    </tr>`;
    })}
  </tbody>
  ${o.lines.length > 1 ? html`<tfoot><tr><td colspan="2" class="muted">${count(o.lines.length)} lines</td><td class="num">${count(units(o.lines))}</td>${showOutcome ? html`<td></td>` : ""}</tr></tfoot>` : ""}
</table>`;
}

function detailBody(o: OrderWithHistory, now: number, names: ReadonlyMap<string, string>, oob = false): Html {
  const final = (FINAL_STATUSES as readonly string[]).includes(o.status);
  // While the order can still move, the fragment polls; a final one returns without the trigger and stops.
  const live = final ? html`` : html` hx-get="/ui/fragments/orders/${o.order_id}" hx-trigger="every 2s" hx-swap="outerMorph"`;
  return html`<section id="order-detail" class="card order-detail" data-state="${o.status}"${live}${oob ? html` hx-swap-oob="outerMorph"` : ""}>
  <dl class="facts">
    <div><dt>State</dt><dd>${stateBadge(o.status)}${final ? "" : html` <span class="muted">(refreshing)</span>`}</dd></div>
    <div><dt>Lines</dt><dd>${count(o.lines.length)} (${count(units(o.lines))} ${units(o.lines) === 1 ? "unit" : "units"})</dd></div>
    <div><dt>Attempts</dt><dd>${o.attempts}</dd></div>
    <div><dt>Reason</dt><dd>${describeReason(o.reason) || "–"}</dd></div>
    <div><dt>Created</dt><dd>${time(o.created_at, now)}</dd></div>
    <div><dt>Updated</dt><dd>${time(o.updated_at, now)}</dd></div>
  </dl>
  <p class="order-message">${o.message}</p>
  <h2>Lines</h2>
  ${linesTable(o, names)}
  <h2>History</h2>
  <ol class="timeline">
    ${o.history.map(
      (h) => html`<li class="timeline__item" data-status="${h.status}">
      ${stateBadge(h.status)}
      ${h.reason ? html`<span class="muted">${describeReason(h.reason)}</span>` : ""}
      ${h.actor ? html`<span class="timeline__actor">by ${h.actor}</span>` : ""}
      ${h.note ? html`<q class="timeline__note">${h.note}</q>` : ""}
      <time datetime="${h.at}">${h.at.replace("T", " ").replace("Z", " UTC")}</time>
    </li>`,
    )}
  </ol>
</section>`;
}

/**
 * The cancel form, while the order can be cancelled. Its key is made when the form is rendered,
 * so a double click or a resubmitted form is one cancel; the section stays in the page (empty)
 * so an answer or a poll can take the form away.
 */
function actionsSection(o: OrderView, session: UiSession, state: { key?: string; reason?: string } = {}, oob = false): Html {
  const form = cancellable(o.status)
    ? html`<form class="card cancel-form" method="post" action="/ui/orders/${o.order_id}/cancel" hx-post="/ui/orders/${o.order_id}/cancel" hx-target="#cancel-result">
    <input type="hidden" name="${CSRF_FIELD}" value="${session.csrfToken}">
    <input type="hidden" name="idempotency_key" id="cancel-key" value="${state.key ?? newCancelKey()}">
    <div class="cancel-form__row">
      <label for="cancel-reason">Reason <span class="muted">(optional)</span></label>
      <input id="cancel-reason" name="reason" type="text" maxlength="${REASON_MAX}" autocomplete="off" value="${state.reason ?? ""}">
      <button class="button button--danger" type="submit">Cancel order</button>
    </div>
    <p class="cancel-form__hint muted">Every line's stock goes back, exactly once; a second click is the same cancel.</p>
  </form>`
    : "";
  return html`<section id="order-actions" class="order-actions" aria-label="Actions"${oob ? html` hx-swap-oob="true"` : ""}>${form}</section>`;
}

type ParsedReason = { ok: true; reason: string | undefined } | { ok: false; message: string };

function parseReason(body: unknown): ParsedReason {
  const reason = (formField(body, "reason") ?? "").trim();
  if (reason === "") return { ok: true, reason: undefined };
  if (reason.length > REASON_MAX) return { ok: false, message: `The reason is at most ${REASON_MAX} characters; this one has ${count(reason.length)}.` };
  if (CONTROL.test(reason)) return { ok: false, message: "The reason cannot contain control characters." };
  return { ok: true, reason };
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

  /** Item names for the lines; the page still reads without them when inventory does not answer. */
  const itemNames = async (): Promise<Map<string, string>> => {
    try {
      return new Map((await deps.inventory.list()).map((i) => [i.item_id, i.item_name]));
    } catch {
      return new Map();
    }
  };

  const orderPage = (o: OrderWithHistory, session: UiSession, names: ReadonlyMap<string, string>, opts: { result?: Html; key?: string; reason?: string } = {}): Html => {
    const body = html`<div class="page-head">
  <p class="crumbs"><a href="/orders">Orders</a></p>
  <h1>Order <code>${shortId(o.order_id)}</code></h1>
  <p class="lede mono">${o.order_id}</p>
</div>
${actionsSection(o, session, opts)}
<div id="cancel-result" class="order-result" role="status" aria-live="polite">${opts.result ?? ""}</div>
${detailBody(o, ctx.clock.now(), names)}`;
    return ctx.page("orders", `Order ${shortId(o.order_id)}`, body);
  };

  const notFoundPage = (status: number, message: string | Html, session: UiSession) => {
    const body = html`<div class="page-head"><h1>Order not found</h1></div>${notice("warning", message)}<p><a href="/orders">All orders</a></p>`;
    return htmlResponse(ctx.page("orders", "Order not found", body), { status, session });
  };

  /** Cancels from the order page; the answer is a fragment (htmx) or the whole page (a plain form post). */
  const cancelOrder = async (request: Request, id: string, body: unknown): Promise<Response> => {
    const session = security.session(request);
    const key = formField(body, "idempotency_key") ?? "";
    const typed = formField(body, "reason") ?? "";

    const respond = async (status: number, result: Html, keep: boolean) => {
      // An unknown outcome (the database away, the first copy still running) is retried with the
      // same key and reason; after an answer the form, if the order is still cancellable, gets a new key.
      const again = keep && KEY.test(key) ? { key, reason: typed.slice(0, REASON_MAX) } : {};
      const loaded = await loadOrder(id);
      const names = "order" in loaded ? await itemNames() : new Map<string, string>();
      if (isHtmx(request)) {
        const oob = "order" in loaded ? html`${actionsSection(loaded.order, session, again, true)}${detailBody(loaded.order, ctx.clock.now(), names, true)}` : "";
        return htmlResponse(html`${result}${oob}`, { status, session });
      }
      if (!("order" in loaded)) return notFoundPage(status, result, session);
      return htmlResponse(orderPage(loaded.order, session, names, { result, ...again }), { status, session });
    };

    const csrf = security.verify(request, formField(body, CSRF_FIELD));
    if (!csrf.ok) return respond(403, failureResult(403, `Refused: ${csrf.reason}.`), true);
    if (!deps.orders) return respond(404, failureResult(404, "This instance does not host orders."), false);
    if (!UUID.test(id)) return respond(404, failureResult(404, "No order with that id."), false);
    if (!KEY.test(key)) return respond(400, failureResult(400, "The form's idempotency key is missing or malformed; reload the page."), false);
    const reason = parseReason(body);
    if (!reason.ok) return respond(400, failureResult(400, reason.message), false);

    const orders = deps.orders;
    let answer: OrderAnswer;
    try {
      answer = await whileKeyInFlight(ctx.clock, () =>
        orders.cancel(id, key, reason.reason === undefined ? {} : { reason: reason.reason }, request.headers.get("x-request-id"), ACTOR),
      );
    } catch (err) {
      const d = ctx.describe(err, "cancel order from page");
      const message = d.status === 404 ? "No order with that id." : d.message;
      return respond(d.status, failureResult(d.status, message), d.status >= 500 || d.code === "idempotency_key_in_use");
    }
    return respond(answer.status, orderResult(answer, new Map(), { message: true }), false);
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
  <p class="lede">The newest ${LIST_LIMIT} orders, refreshed every two seconds: a <em>queued</em> order turns <em>confirmed</em> here once the retry worker gets through, and a <em>cancelling</em> one turns <em>cancelled</em> once its stock is back.</p>
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
      if ("status" in r) return notFoundPage(r.status, r.message, session);
      return htmlResponse(orderPage(r.order, session, await itemNames()), { session });
    })
    .get("/ui/fragments/orders/:id", async ({ params }) => {
      const r = await loadOrder(params.id);
      if ("status" in r) return htmlResponse(notice("warning", r.message), { status: r.status });
      // Once the order can no longer be cancelled, the poll takes the cancel form away; while it
      // can, the form is left alone (its key and a half-typed reason stay as they are).
      const actions = cancellable(r.order.status) ? "" : html`<section id="order-actions" class="order-actions" aria-label="Actions" hx-swap-oob="true"></section>`;
      return htmlResponse(html`${detailBody(r.order, ctx.clock.now(), await itemNames())}${actions}`);
    })
    .post("/ui/orders/:id/cancel", ({ request, params, body }) => cancelOrder(request, params.id, body));
}
