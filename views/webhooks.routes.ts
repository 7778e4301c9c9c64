import { randomUUID } from "node:crypto";
import { Elysia } from "elysia";
import { IDEMPOTENCY_KEY_PATTERN } from "../modules/orders/index.ts";
import { html, type Html } from "./html.ts";
import { count, ms, time } from "./components/format.ts";
import { CSRF_FIELD, type UiSession } from "./ui-security.ts";
import { formField, htmlResponse, isHtmx, notice, whileKeyInFlight, type ViewContext } from "./view-context.ts";
import type { WebhookAttemptView, WebhookEndpointView, WebhooksAccess } from "./view-deps.ts";

const ATTEMPT_LIMIT = 10;
const KEY = new RegExp(IDEMPOTENCY_KEY_PATTERN);
const EVENT_ID = /^[\x21-\x7e]{1,200}$/;
const WEBHOOK_ID = /^wh_[0-9a-f]{32}$/;
/** Made when a form is rendered, so a double click or a resubmitted form is one change. */
const newKey = (what: "redeliver" | "enable") => `ui-${what}-${randomUUID()}`;

/**
 * Endpoints, their health, pending deliveries and breaker, recent attempts, a Redeliver button
 * per recent event and a Re-enable button on a disabled endpoint.
 */
export function webhookRoutes(ctx: ViewContext) {
  const { deps, security } = ctx;

  const hidden = (session: UiSession) => html`<input type="hidden" name="${CSRF_FIELD}" value="${session.csrfToken}">`;

  const loginForm = (session: UiSession) => html`<section class="card login" aria-labelledby="login-title">
  <h2 id="login-title">Sign in to see webhooks</h2>
  <p>Endpoints and their deliveries are admin data: the server's <code>ADMIN_TOKEN</code> is asked for once and kept in an HttpOnly cookie for this browser.</p>
  <form method="post" action="/ui/login" class="stack">
    ${hidden(session)}
    <input type="hidden" name="next" value="/webhooks">
    <label for="admin-token">Admin token</label>
    <input id="admin-token" name="token" type="password" autocomplete="current-password" required>
    <button class="button button--primary" type="submit">Sign in</button>
  </form>
</section>`;

  const health = (w: WebhookEndpointView, now: number): Html => {
    if (w.disabled_at) {
      return html`<span class="pill pill--failing" data-health="disabled">Disabled</span> <span class="muted">${time(w.disabled_at, now)}${w.disabled_reason ? html`: ${w.disabled_reason}` : ""}</span>`;
    }
    if (w.failing_since) return html`<span class="pill pill--failing" data-health="failing">Failing</span> <span class="muted">since ${time(w.failing_since, now)}</span>`;
    return html`<span class="pill pill--ok" data-health="enabled">Enabled</span>`;
  };

  const redeliverForm = (session: UiSession, eventId: string) => html`<form method="post" action="/ui/webhooks/redeliver" hx-post="/ui/webhooks/redeliver" hx-target="#webhooks-message" class="inline">
      ${hidden(session)}
      <input type="hidden" name="event_id" value="${eventId}">
      <input type="hidden" name="idempotency_key" value="${newKey("redeliver")}">
      <button class="button button--small" type="submit" data-redeliver="${eventId}">Redeliver</button>
    </form>`;

  const enableForm = (session: UiSession, id: string) => html`<form method="post" action="/ui/webhooks/enable" hx-post="/ui/webhooks/enable" hx-target="#webhooks-message" class="inline">
      ${hidden(session)}
      <input type="hidden" name="webhook_id" value="${id}">
      <input type="hidden" name="idempotency_key" value="${newKey("enable")}">
      <button class="button button--small" type="submit" data-enable="${id}">Re-enable</button>
    </form>`;

  const pending = (w: WebhookEndpointView, now: number): Html =>
    w.pending_deliveries === 0
      ? html`<span data-pending="0">none</span>`
      : html`<span data-pending="${w.pending_deliveries}">${count(w.pending_deliveries)}</span>${w.oldest_pending_at ? html` <span class="muted">oldest since ${time(w.oldest_pending_at, now)}</span>` : ""}`;

  const breaker = (w: WebhookEndpointView, open: ReadonlySet<string> | null): Html => {
    if (!open) return html`<span class="muted" data-breaker="unknown">no relay in this process</span>`;
    return open.has(w.id)
      ? html`<span class="pill pill--failing" data-breaker="open">Open</span> <span class="muted">in this process: its deliveries wait</span>`
      : html`<span class="pill pill--ok" data-breaker="closed">Closed</span>`;
  };

  const attemptsTable = (session: UiSession, attempts: WebhookAttemptView[], now: number): Html => {
    if (attempts.length === 0) return html`<p class="empty">No delivery attempts yet.</p>`;
    // One button per event, on its newest attempt: a redelivery sends the event, not an attempt.
    const seen = new Set<string>();
    return html`<table class="table">
    <caption class="visually-hidden">The newest ${ATTEMPT_LIMIT} delivery attempts, newest first</caption>
    <thead><tr><th scope="col">When</th><th scope="col">Event</th><th scope="col" class="num">Attempt</th><th scope="col" class="num">Status</th><th scope="col" class="num">Duration</th><th scope="col">Error</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
    <tbody>${attempts.map((a) => {
      const first = !seen.has(a.event_id);
      seen.add(a.event_id);
      const ok = a.status_code !== null && a.status_code >= 200 && a.status_code < 300;
      return html`<tr class="attempt" data-event-id="${a.event_id}" data-outcome="${ok ? "ok" : "failed"}"><td class="nowrap">${time(a.at, now)}</td><td><code>${a.event_id}</code></td><td class="num">${a.attempt}</td><td class="num">${a.status_code ?? "–"}</td><td class="num">${ms(a.duration_ms)}</td><td class="muted">${a.error ?? ""}</td><td>${first ? redeliverForm(session, a.event_id) : ""}</td></tr>`;
    })}</tbody>
  </table>`;
  };

  const endpointCard = async (webhooks: WebhooksAccess, session: UiSession, w: WebhookEndpointView, now: number, open: ReadonlySet<string> | null): Promise<Html> => {
    let attempts: WebhookAttemptView[] = [];
    let readError: Html | null = null;
    try {
      attempts = (await webhooks.deliveries(w.id, ATTEMPT_LIMIT)).attempts;
    } catch (err) {
      readError = notice("error", html`The attempts could not be read: ${ctx.describe(err, "webhook attempts").message}`);
    }
    const lastOk = attempts.find((a) => a.status_code !== null && a.status_code >= 200 && a.status_code < 300);
    const lastBad = attempts.find((a) => !(a.status_code !== null && a.status_code >= 200 && a.status_code < 300));
    return html`<section class="card webhook" data-webhook-id="${w.id}" aria-label="Endpoint ${w.url}">
  <h2><code>${w.url}</code></h2>
  ${w.description ? html`<p class="webhook__description">${w.description}</p>` : ""}
  <dl class="config">
    <div><dt>id</dt><dd><code>${w.id}</code></dd></div>
    <div><dt>health</dt><dd>${health(w, now)}${w.disabled_at ? html` ${enableForm(session, w.id)}` : ""}</dd></div>
    <div><dt>pending</dt><dd>${pending(w, now)}</dd></div>
    <div><dt>breaker</dt><dd>${breaker(w, open)}</dd></div>
    <div><dt>events</dt><dd>${w.events.join(", ")}</dd></div>
    <div><dt>last success</dt><dd>${lastOk ? time(lastOk.at, now) : "–"}</dd></div>
    <div><dt>last failure</dt><dd>${lastBad ? time(lastBad.at, now) : "–"}</dd></div>
  </dl>
  <h3>Recent attempts</h3>
  ${readError ?? attemptsTable(session, attempts, now)}
</section>`;
  };

  const body = async (session: UiSession, message?: Html): Promise<Html> => {
    const head = html`<div class="page-head">
  <h1>Webhooks</h1>
  <p class="lede">Where order events are sent, whether each endpoint is healthy, and its latest delivery attempts. Secrets are never shown here.</p>
</div>`;
    const webhooks = deps.webhooks;
    if (!webhooks) return html`${head}${notice("info", "No orders module sends events from this instance: there are no webhooks here.")}`;
    if (!session.admin.ok) {
      if (session.admin.code === "admin_closed") {
        return html`${head}${notice("warning", html`Webhooks are closed: this production instance has no <code>ADMIN_TOKEN</code>.`)}`;
      }
      return html`${head}${loginForm(session)}`;
    }
    const signedIn = session.tokenConfigured
      ? html`<form method="post" action="/ui/logout" class="signout">${hidden(session)}<span class="muted">Signed in as admin.</span> <button class="button button--link" type="submit">Sign out</button></form>`
      : html``;
    let list: Html;
    try {
      const endpoints = await webhooks.list();
      const now = ctx.clock.now();
      const open = deps.webhookBreakers ? new Set(deps.webhookBreakers.openEndpoints()) : null;
      list =
        endpoints.length === 0
          ? html`<p class="empty">No endpoints yet. Register one with <code>POST /api/admin/webhooks</code>.</p>`
          : html`${await Promise.all(endpoints.map((w) => endpointCard(webhooks, session, w, now, open)))}`;
    } catch (err) {
      list = notice("error", html`The endpoints could not be read: ${ctx.describe(err, "webhooks page").message}`);
    }
    return html`${head}${signedIn}
<div id="webhooks-message" role="status" aria-live="polite">${message ?? ""}</div>
<div id="webhooks-list">${list}</div>`;
  };

  const respond = async (request: Request, session: UiSession, status: number, message: Html) => {
    if (isHtmx(request)) return htmlResponse(message, { status, session });
    return htmlResponse(ctx.page("webhooks", "Webhooks", await body(session, message)), { status, session });
  };

  /** What every form post checks first: the CSRF token, an orders module here, an admin session. */
  const guard = async (request: Request, form: unknown): Promise<Response | { session: UiSession; webhooks: WebhooksAccess }> => {
    const session = security.session(request);
    const csrf = security.verify(request, formField(form, CSRF_FIELD));
    if (!csrf.ok) return respond(request, session, 403, notice("error", `Refused: ${csrf.reason}.`));
    const webhooks = deps.webhooks;
    if (!webhooks) return respond(request, session, 404, notice("error", "No orders module sends events from this instance."));
    if (!session.admin.ok) {
      return session.admin.code === "admin_closed"
        ? respond(request, session, 403, notice("error", "Webhooks are closed: no ADMIN_TOKEN is configured."))
        : respond(request, session, 401, notice("error", html`Your admin session has ended. <a href="/webhooks">Sign in again</a>.`));
    }
    return { session, webhooks };
  };

  return new Elysia({ name: "views-webhooks", detail: { hide: true } })
    .get("/webhooks", async ({ request }) => {
      const session = security.session(request);
      return htmlResponse(ctx.page("webhooks", "Webhooks", await body(session)), { session });
    })
    .post("/ui/webhooks/redeliver", async ({ request, body: form }) => {
      const g = await guard(request, form);
      if (g instanceof Response) return g;
      const { session, webhooks } = g;
      const eventId = formField(form, "event_id") ?? "";
      const key = formField(form, "idempotency_key") ?? "";
      if (!EVENT_ID.test(eventId)) return respond(request, session, 400, notice("error", "Which event? The form names none; reload the page."));
      if (!KEY.test(key)) return respond(request, session, 400, notice("error", "The form's idempotency key is missing or malformed; reload the page."));
      try {
        const answer = await whileKeyInFlight(ctx.clock, () => webhooks.redeliver(eventId, key));
        const n = (() => {
          try {
            return (JSON.parse(answer.body) as { deliveries?: unknown }).deliveries;
          } catch {
            return undefined;
          }
        })();
        const what = typeof n === "number" ? html` to ${n} endpoint${n === 1 ? "" : "s"}` : "";
        return respond(
          request,
          session,
          200,
          notice("success", answer.replayed ? html`Event <code>${eventId}</code> was already redelivered by this form.` : html`Event <code>${eventId}</code> will be sent again${what}.`),
        );
      } catch (err) {
        const d = ctx.describe(err, "webhook redeliver");
        return respond(request, session, d.status, notice("error", d.message));
      }
    })
    .post("/ui/webhooks/enable", async ({ request, body: form }) => {
      const g = await guard(request, form);
      if (g instanceof Response) return g;
      const { session, webhooks } = g;
      const id = formField(form, "webhook_id") ?? "";
      const key = formField(form, "idempotency_key") ?? "";
      if (!WEBHOOK_ID.test(id)) return respond(request, session, 400, notice("error", "Which endpoint? The form names none; reload the page."));
      if (!KEY.test(key)) return respond(request, session, 400, notice("error", "The form's idempotency key is missing or malformed; reload the page."));
      try {
        const answer = await whileKeyInFlight(ctx.clock, () => webhooks.enable(id, key));
        return respond(
          request,
          session,
          200,
          notice("success", answer.replayed ? html`Endpoint <code>${id}</code> was already re-enabled by this form.` : html`Endpoint <code>${id}</code> is enabled again: its pending deliveries go out as they fall due.`),
        );
      } catch (err) {
        const d = ctx.describe(err, "webhook enable");
        return respond(request, session, d.status, notice("error", d.message));
      }
    });
}
