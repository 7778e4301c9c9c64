import { Elysia } from "elysia";
import { IDEMPOTENCY_KEY_PATTERN, ORDER_STATUSES, type OrderStatus } from "../modules/orders/index.ts";
import { html, type Html } from "./html.ts";
import { count, shortId } from "./components/format.ts";
import { actionsSection, cancellable, detailBody, ordersTable, payAction, payable, REASON_MAX, type ActionState } from "./components/order-detail.ts";
import { failureResult, orderResult } from "./components/order-result.ts";
import { ASSET } from "./layout.ts";
import { CSRF_FIELD, type UiSession } from "./ui-security.ts";
import { formField, htmlResponse, isHtmx, notice, whileKeyInFlight, type ViewContext } from "./view-context.ts";
import type { OrderAnswer, OrderWithHistory } from "./view-deps.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const KEY = new RegExp(IDEMPOTENCY_KEY_PATTERN);
const LIST_LIMIT = 50;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** Who the history names for a cancel asked from these pages. */
const ACTOR = "web";
/** The pages that show a hold's deadline tick it down with this script. */
const COUNTDOWN = { scripts: [ASSET.countdown] };

function parseStatus(v: unknown): OrderStatus | undefined {
  return typeof v === "string" && (ORDER_STATUSES as readonly string[]).includes(v) ? (v as OrderStatus) : undefined;
}

const listQuery = (status: OrderStatus | undefined) => (status ? `?status=${status}` : "");

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

  const orderPage = (o: OrderWithHistory, session: UiSession, names: ReadonlyMap<string, string>, opts: ActionState & { result?: Html; payResult?: Html } = {}): Html => {
    const body = html`<div class="page-head">
  <p class="crumbs"><a href="/orders">Orders</a></p>
  <h1>Order <code>${shortId(o.order_id)}</code></h1>
  <p class="lede mono">${o.order_id}</p>
</div>
${actionsSection(o, session, opts)}
<div id="pay-result" class="order-result" role="status" aria-live="polite">${opts.payResult ?? ""}</div>
<div id="cancel-result" class="order-result" role="status" aria-live="polite">${opts.result ?? ""}</div>
${detailBody(o, ctx.clock.now(), names)}`;
    return ctx.page("orders", `Order ${shortId(o.order_id)}`, body, COUNTDOWN);
  };

  const notFoundPage = (status: number, message: string | Html, session: UiSession) => {
    const body = html`<div class="page-head"><h1>Order not found</h1></div>${notice("warning", message)}<p><a href="/orders">All orders</a></p>`;
    return htmlResponse(ctx.page("orders", "Order not found", body), { status, session });
  };

  /**
   * The answer to an action on the order page: with htmx, the result for the form's box and the
   * actions and detail out of band; without, the whole order page with the result in its box.
   * `again` carries what a retry must reuse (the key) when the outcome is unknown.
   */
  const answerAction = async (request: Request, session: UiSession, id: string, box: "cancel" | "pay", status: number, result: Html, again: ActionState) => {
    const loaded = await loadOrder(id);
    const names = "order" in loaded ? await itemNames() : new Map<string, string>();
    if (isHtmx(request)) {
      const oob = "order" in loaded ? html`${actionsSection(loaded.order, session, again, true)}${detailBody(loaded.order, ctx.clock.now(), names, true)}` : "";
      return htmlResponse(html`${result}${oob}`, { status, session });
    }
    if (!("order" in loaded)) return notFoundPage(status, result, session);
    const shown = box === "pay" ? { payResult: result } : { result };
    return htmlResponse(orderPage(loaded.order, session, names, { ...shown, ...again }), { status, session });
  };

  /** Cancels from the order page; the answer is a fragment (htmx) or the whole page (a plain form post). */
  const cancelOrder = async (request: Request, id: string, body: unknown): Promise<Response> => {
    const session = security.session(request);
    const key = formField(body, "idempotency_key") ?? "";
    const typed = formField(body, "reason") ?? "";

    // An unknown outcome (the database away, the first copy still running) is retried with the
    // same key and reason; after an answer the form, if the order is still cancellable, gets a new key.
    const respond = (status: number, result: Html, keep: boolean) =>
      answerAction(request, session, id, "cancel", status, result, keep && KEY.test(key) ? { key, reason: typed.slice(0, REASON_MAX) } : {});

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

  /**
   * Pays for a held order from the order page: 200 confirmed, 202 payment recorded while inventory
   * is away (confirmed from the retry queue), 409 when the hold expired first. The answer is a
   * fragment (htmx) or the whole page (a plain form post), like a cancel's.
   */
  const payOrder = async (request: Request, id: string, body: unknown): Promise<Response> => {
    const session = security.session(request);
    const key = formField(body, "idempotency_key") ?? "";
    const respond = (status: number, result: Html, keep: boolean) =>
      answerAction(request, session, id, "pay", status, result, keep && KEY.test(key) ? { payKey: key } : {});

    const csrf = security.verify(request, formField(body, CSRF_FIELD));
    if (!csrf.ok) return respond(403, failureResult(403, `Refused: ${csrf.reason}.`), true);
    if (!deps.orders) return respond(404, failureResult(404, "This instance does not host orders."), false);
    if (!UUID.test(id)) return respond(404, failureResult(404, "No order with that id."), false);
    if (!KEY.test(key)) return respond(400, failureResult(400, "The form's idempotency key is missing or malformed; reload the page."), false);

    const orders = deps.orders;
    let answer: OrderAnswer;
    try {
      answer = await whileKeyInFlight(ctx.clock, () => orders.pay(id, key, request.headers.get("x-request-id")));
    } catch (err) {
      const d = ctx.describe(err, "pay order from page");
      const message = d.status === 404 ? "No order with that id." : d.message;
      return respond(d.status, failureResult(d.status, message), d.status >= 500 || d.code === "idempotency_key_in_use");
    }
    return respond(answer.status, orderResult(answer, new Map(), { message: true, now: ctx.clock.now() }), false);
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
  <p class="lede">The newest ${LIST_LIMIT} orders, refreshed every two seconds: a <em>queued</em> order turns <em>confirmed</em> here once the retry worker gets through, a <em>cancelling</em> one turns <em>cancelled</em> once its stock is back, and a <em>reserved</em> one shows the time left to pay before it turns <em>expired</em>.</p>
</div>
<nav class="filters" aria-label="Filter by state"><ul>${filters}</ul></nav>
<div id="orders-live" hx-get="/ui/fragments/orders${listQuery(status)}" hx-trigger="every 2s" hx-swap="innerMorph">
  ${await listFragment(status)}
</div>`;
      return htmlResponse(ctx.page("orders", status ? `Orders: ${status}` : "Orders", body, COUNTDOWN), { session });
    })
    .get("/ui/fragments/orders", async ({ query }) => htmlResponse(await listFragment(parseStatus(query.status))))
    .get("/orders/:id", async ({ request, params }) => {
      const session = security.session(request);
      const r = await loadOrder(params.id);
      if ("status" in r) return notFoundPage(r.status, r.message, session);
      return htmlResponse(orderPage(r.order, session, await itemNames()), { session });
    })
    .get("/ui/fragments/orders/:id", async ({ request, params, query }) => {
      const r = await loadOrder(params.id);
      if ("status" in r) return htmlResponse(notice("warning", r.message), { status: r.status });
      // Once the order can no longer be cancelled, the poll takes the forms away. While it can, the
      // cancel form is left alone (its key and a half-typed reason stay as they are), and the pay
      // form is swapped only when the page's (`pay=shown`) and the order's payability differ:
      // added once a queued hold is reserved, taken away once paid or expired.
      const shown = query.pay === "shown";
      let actions: Html | "" = "";
      if (!cancellable(r.order.status)) actions = html`<section id="order-actions" class="order-actions" aria-label="Actions" hx-swap-oob="true"></section>`;
      else if (payable(r.order) !== shown) {
        const session = security.session(request);
        return htmlResponse(html`${detailBody(r.order, ctx.clock.now(), await itemNames())}${payAction(r.order, session, undefined, true)}`, { session });
      }
      return htmlResponse(html`${detailBody(r.order, ctx.clock.now(), await itemNames())}${actions}`);
    })
    .post("/ui/orders/:id/cancel", ({ request, params, body }) => cancelOrder(request, params.id, body))
    .post("/ui/orders/:id/pay", ({ request, params, body }) => payOrder(request, params.id, body));
}
