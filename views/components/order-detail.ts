import { randomUUID } from "node:crypto";
import { INVENTORY_LIMITS } from "../../modules/inventory/index.ts";
import { CANCELLABLE_STATUSES, FINAL_STATUSES, type OrderStatus, type OrderView } from "../../modules/orders/index.ts";
import { html, type Html } from "../html.ts";
import { CSRF_FIELD, type UiSession } from "../ui-security.ts";
import type { OrderWithHistory } from "../view-deps.ts";
import { count, shortId, stateBadge, time, utc } from "./format.ts";
import { holdDeadline } from "./hold.ts";
import { describeReason, type Line } from "./order-result.ts";

/** The pieces of the orders list and the order page; the routes (orders.routes.ts) put them together. */

/** Lines named in a list row before the rest are counted instead. */
const ROW_LINES = 3;
/** The API's rule for a cancel reason: 1–200 characters, no control characters. */
export const REASON_MAX = INVENTORY_LIMITS.reasonMax;

const newCancelKey = () => `ui-cancel-${randomUUID()}`;
const newPayKey = () => `ui-pay-${randomUUID()}`;
export const cancellable = (status: string) => (CANCELLABLE_STATUSES as readonly string[]).includes(status);
/** A hold waiting for its payment: once paid (even if inventory has not confirmed yet) there is nothing more to pay. */
export const payable = (o: Pick<OrderView, "status" | "hold_expires_at" | "paid_at">) => o.status === "reserved" && !!o.hold_expires_at && !o.paid_at;
const units = (lines: readonly Line[]) => lines.reduce((n, l) => n + l.quantity, 0);

function linesCell(lines: readonly Line[]): Html {
  const shown = lines.slice(0, ROW_LINES);
  const more = lines.length - shown.length;
  return html`${shown.map((l, i) => html`${i ? ", " : ""}<code>${l.item_id}</code> × ${count(l.quantity)}`)}${more > 0 ? html` <span class="muted">and ${more} more</span>` : ""}`;
}

export function ordersTable(orders: OrderView[], now: number, status: OrderStatus | undefined): Html {
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
      <td class="muted">${o.status === "reserved" && o.hold_expires_at ? (o.paid_at ? "paid; confirming with inventory" : holdDeadline(o.hold_expires_at, now)) : describeReason(o.reason)}</td>
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

/** What became of the hold: its time left, paid, expired or released, with the deadline itself. */
function holdFact(o: OrderView, now: number): Html {
  const deadline = html`<time datetime="${o.hold_expires_at}">${utc(o.hold_expires_at!)}</time>`;
  const paid = o.paid_at ? html`paid at <time datetime="${o.paid_at}">${utc(o.paid_at)}</time>` : "";
  switch (o.status) {
    case "reserved":
      return o.paid_at ? html`${paid}; confirming with inventory (deadline ${deadline})` : holdDeadline(o.hold_expires_at!, now);
    case "confirmed":
      return html`${paid || "paid"}, before the deadline ${deadline}`;
    case "expired":
      return html`expired unpaid at ${deadline}; the stock went back`;
    default:
      return html`deadline ${deadline}${paid ? html`; ${paid}` : ""}`;
  }
}

export function detailBody(o: OrderWithHistory, now: number, names: ReadonlyMap<string, string>, oob = false): Html {
  const final = (FINAL_STATUSES as readonly string[]).includes(o.status);
  // While the order can still move, the fragment polls; a final one returns without the trigger and stops.
  // The poll says whether the page shows a pay form, so the answer can add or take it away when
  // that changes (a queued hold becomes reserved; a hold is paid or expires) and leave it alone otherwise.
  const live = final ? html`` : html` hx-get="/ui/fragments/orders/${o.order_id}${payable(o) ? "?pay=shown" : ""}" hx-trigger="every 2s" hx-swap="outerMorph"`;
  const hold = o.hold_expires_at ? html` data-hold-expires-at="${o.hold_expires_at}"` : "";
  return html`<section id="order-detail" class="card order-detail" data-state="${o.status}"${hold}${live}${oob ? html` hx-swap-oob="outerMorph"` : ""}>
  <dl class="facts">
    <div><dt>State</dt><dd>${stateBadge(o.status)}${final ? "" : html` <span class="muted">(refreshing)</span>`}</dd></div>
    <div><dt>Lines</dt><dd>${count(o.lines.length)} (${count(units(o.lines))} ${units(o.lines) === 1 ? "unit" : "units"})</dd></div>
    <div><dt>Attempts</dt><dd>${o.attempts}</dd></div>
    <div><dt>Reason</dt><dd>${describeReason(o.reason) || "–"}</dd></div>
    ${o.hold_expires_at && !payable(o) ? html`<div><dt>Hold</dt><dd>${holdFact(o, now)}</dd></div>` : ""}
    <div><dt>Created</dt><dd>${time(o.created_at, now)}</dd></div>
    <div><dt>Updated</dt><dd>${time(o.updated_at, now)}</dd></div>
  </dl>
  ${
    // A hold waiting for payment says so with its deadline, in place of the order's own message.
    payable(o)
      ? html`<p class="hold-banner" role="note">Held for you: ${holdDeadline(o.hold_expires_at!, now)}. Pay before then, or the stock goes back.</p>`
      : html`<p class="order-message">${o.message}</p>`
  }
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

export interface ActionState {
  /** The cancel form's key and reason, kept for a retry when the outcome is unknown. */
  key?: string;
  reason?: string;
  /** The pay form's key, kept the same way. */
  payKey?: string;
}

/**
 * The pay form, while the order is a hold waiting for payment. Like the cancel form it carries a
 * key made when it is rendered, so a double click or a resubmit is one payment. It sits in its
 * own box so the detail's poll can take it away (paid, expired) and leave the cancel form alone.
 */
export function payAction(o: OrderView, session: UiSession, key: string | undefined, oob = false): Html {
  const form = payable(o)
    ? html`<form class="card pay-form" method="post" action="/ui/orders/${o.order_id}/pay" hx-post="/ui/orders/${o.order_id}/pay" hx-target="#pay-result">
    <input type="hidden" name="${CSRF_FIELD}" value="${session.csrfToken}">
    <input type="hidden" name="idempotency_key" id="pay-key" value="${key ?? newPayKey()}">
    <div class="pay-form__row">
      <button class="button button--primary" type="submit">Pay now</button>
      <span class="pay-form__hint muted">Pay before the deadline below to confirm the order; a second click is the same payment.</span>
    </div>
  </form>`
    : "";
  return html`<div id="pay-action" class="pay-action"${oob ? html` hx-swap-oob="true"` : ""}>${form}</div>`;
}

/**
 * The pay form (for a hold) and the cancel form, while the order can be paid or cancelled. Each
 * key is made when its form is rendered, so a double click or a resubmitted form is one request;
 * the section stays in the page (empty) so an answer or a poll can take the forms away.
 */
export function actionsSection(o: OrderView, session: UiSession, state: ActionState = {}, oob = false): Html {
  // The pay box is there while the order can be cancelled, empty unless it can be paid, so a poll can fill it.
  const pay = cancellable(o.status) ? payAction(o, session, state.payKey) : "";
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
  return html`<section id="order-actions" class="order-actions" aria-label="Actions"${oob ? html` hx-swap-oob="true"` : ""}>${pay}${form}</section>`;
}
