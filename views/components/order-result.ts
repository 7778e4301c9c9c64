import { html, type Html } from "../html.ts";
import { count, shortId, stateBadge } from "./format.ts";
import type { OrderAnswer } from "../view-deps.ts";

const REASONS: Record<string, string> = {
  insufficient_stock: "not enough stock",
  unknown_item: "no such item",
  released: "the order was cancelled",
  cancelled: "cancelled",
  cancel_requested: "cancel requested; the stock is being given back",
};

/** A machine reason (`insufficient_stock`, `inventory_unavailable:timeout`, …) in words. */
export function describeReason(reason: string | null | undefined): string {
  if (!reason) return "";
  if (reason.startsWith("inventory_unavailable")) {
    const kind = reason.split(":")[1];
    return `inventory did not answer${kind ? ` (${kind.replaceAll("_", " ")})` : ""}; queued for retry`;
  }
  return REASONS[reason] ?? reason.replaceAll("_", " ");
}

export interface Line {
  item_id: string;
  quantity: number;
}

export interface LineRejection {
  item_id: string;
  reason: string;
}

/** What the pages read from an answer's body: an order (2xx) or a problem that carries one (4xx). */
export interface ParsedAnswer {
  state: string;
  reason: string | null;
  lines: Line[];
  rejectedLines: LineRejection[];
  /** A problem's `detail`, when the answer is one. */
  detail: string | null;
  /** The order's `message`, written for people ("Order cancelled; its stock was given back."). */
  message: string | null;
}

const isLine = (v: unknown): v is Line =>
  !!v && typeof (v as Line).item_id === "string" && typeof (v as Line).quantity === "number";
const isRejection = (v: unknown): v is LineRejection =>
  !!v && typeof (v as LineRejection).item_id === "string" && typeof (v as LineRejection).reason === "string";

export function parseAnswer(res: Pick<OrderAnswer, "status" | "body">): ParsedAnswer {
  const out: ParsedAnswer = { state: "unknown", reason: null, lines: [], rejectedLines: [], detail: null, message: null };
  try {
    const b = JSON.parse(res.body) as Record<string, unknown>;
    out.state = String(res.status >= 400 ? (b.order_status ?? "rejected") : (b.status ?? "unknown"));
    out.reason = typeof b.reason === "string" ? b.reason : null;
    out.lines = Array.isArray(b.lines) ? b.lines.filter(isLine) : [];
    out.rejectedLines = Array.isArray(b.rejected_lines) ? b.rejected_lines.filter(isRejection) : [];
    out.detail = res.status >= 400 && typeof b.detail === "string" ? b.detail : null;
    out.message = typeof b.message === "string" ? b.message : null;
  } catch {
    // The body is ours and always JSON; if it is not, the status code still tells the story.
  }
  return out;
}

const units = (lines: Line[]) => lines.reduce((n, l) => n + l.quantity, 0);

/** "3 lines, 6 units" / "1 line, 2 units". */
export function linesSummary(lines: Line[]): string {
  const u = units(lines);
  return `${count(lines.length)} ${lines.length === 1 ? "line" : "lines"}, ${count(u)} ${u === 1 ? "unit" : "units"}`;
}

/** Each refused line, named, with why; `names` maps item ids to display names where known. */
export function rejectedLinesList(rejected: LineRejection[], lines: Line[], names: ReadonlyMap<string, string>): Html {
  const asked = new Map(lines.map((l) => [l.item_id, l.quantity]));
  return html`<ul class="result__lines" aria-label="Lines refused">
  ${rejected.map((r) => {
    const name = names.get(r.item_id);
    const q = asked.get(r.item_id);
    return html`<li class="result__line" data-item-id="${r.item_id}" data-line-reason="${r.reason}"><code>${r.item_id}</code>${name ? html` ${name}` : ""}${q !== undefined ? html` × ${count(q)}` : ""}: <strong>${describeReason(r.reason)}</strong></li>`;
  })}
</ul>`;
}

/**
 * The answer to an order or cancel request: the HTTP status the API gives, the order's state and
 * why. `opts.message` says it in the order's own words (a cancel's answer) instead of its reason.
 */
export function orderResult(res: OrderAnswer, names: ReadonlyMap<string, string> = new Map(), opts: { message?: boolean } = {}): Html {
  const a = parseAnswer(res);
  const listed = a.rejectedLines.length > 0;
  const why = listed
    ? a.lines.length > 1
      ? "nothing was taken: an order takes all its lines or none"
      : ""
    : a.detail && res.status !== 422
      ? a.detail
      : opts.message && a.message
        ? a.message
        : describeReason(a.reason);
  return html`<div class="result result--${res.status}" data-http-status="${res.status}" data-order-state="${a.state}">
  <span class="result__code" title="HTTP status">${res.status}</span>
  ${stateBadge(a.state)}
  ${res.orderId ? html`<span>order <a href="/orders/${res.orderId}"><code>${shortId(res.orderId)}</code></a></span>` : ""}
  ${a.lines.length ? html`<span class="result__summary">${linesSummary(a.lines)}</span>` : ""}
  ${why ? html`<span class="result__reason">${why}</span>` : ""}
  ${res.replayed ? html`<span class="result__replayed">replayed: same key, first answer</span>` : ""}
  ${listed ? rejectedLinesList(a.rejectedLines, a.lines, names) : ""}
</div>`;
}

/** A request that produced no order answer (refused at the door, or failed): its status and why. */
export function failureResult(status: number, message: string | Html): Html {
  return html`<div class="result result--${status}" data-http-status="${status}" data-order-state="none">
  <span class="result__code" title="HTTP status">${status}</span>
  <span class="result__reason">${message}</span>
</div>`;
}
