import { Elysia } from "elysia";
import { AppError } from "../platform/errors.ts";
import { html, type Html } from "./html.ts";
import { duration, time } from "./components/format.ts";
import { CSRF_FIELD, type UiSession } from "./ui-security.ts";
import { formField, htmlResponse, isHtmx, notice, type ViewContext } from "./view-context.ts";
import { CHAOS_PRESETS, type ChaosActive, type ChaosExperiment, type ChaosPresetName, type ChaosRequest } from "./view-deps.ts";

const EVENT_LIMIT = 12;

const PRESET_TEXT: Record<ChaosPresetName, { title: string; blurb: string }> = {
  mild: { title: "Mild", blurb: "Occasional added latency." },
  moderate: { title: "Moderate", blurb: "More latency, some failed calls." },
  extreme: { title: "Extreme", blurb: "Heavy latency, crashes and lost responses." },
};

/** `minMs` → "min ms", `duration_s` → "duration s". */
const words = (key: string) => key.replace(/([a-z0-9])([A-Z])/g, "$1 $2").replaceAll("_", " ").toLowerCase();

/** A stored configuration as nested definition lists; every key and value is escaped text. */
function describeConfig(value: unknown, depth = 0): Html {
  if (value === null || value === undefined) return html`–`;
  if (typeof value !== "object") return html`${String(value)}`;
  if (depth > 4) return html`${JSON.stringify(value)}`;
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return html`–`;
  return html`<dl class="config">${entries.map(([k, v]) => html`<div><dt>${words(k)}</dt><dd>${describeConfig(v, depth + 1)}</dd></div>`)}</dl>`;
}

function activePanel(active: ChaosActive | null): Html {
  if (!active) {
    return html`<div class="chaos-active chaos-active--off" data-chaos="off">
  <h2>Active configuration</h2>
  <p><span class="pill pill--ok">Off</span> No faults are being injected.</p>
</div>`;
  }
  return html`<div class="chaos-active" data-chaos="on" data-chaos-label="${active.label}">
  <h2>Active configuration</h2>
  <p><span class="pill pill--chaos">${active.label}</span> <span class="chaos-active__left">${duration(active.secondsLeft)} left</span> <span class="muted">(it switches itself off)</span></p>
  ${describeConfig(active.config)}
</div>`;
}

export function chaosRoutes(ctx: ViewContext) {
  const { deps, security } = ctx;

  const livePanel = async (): Promise<Html> => {
    const chaos = deps.chaos;
    if (!chaos) return html``;
    try {
      const [active, events] = await Promise.all([chaos.current(), chaos.events(EVENT_LIMIT)]);
      const now = ctx.clock.now();
      return html`${activePanel(active)}
<div class="chaos-events">
  <h2>Recent faults</h2>
  ${
    events.length === 0
      ? html`<p class="empty">No faults injected yet.</p>`
      : html`<table class="table">
    <caption class="visually-hidden">The newest ${EVENT_LIMIT} injected faults, newest first</caption>
    <thead><tr><th scope="col">When</th><th scope="col">Fault</th><th scope="col">Detail</th></tr></thead>
    <tbody>${events.map((e) => html`<tr><td class="nowrap">${time(e.at, now)}</td><td><span class="badge badge--fault">${e.fault}</span></td><td class="muted">${e.detail ?? ""}</td></tr>`)}</tbody>
  </table>`
  }
</div>`;
    } catch (err) {
      return notice("error", html`The chaos state could not be read: ${ctx.describe(err, "chaos panel").message}`);
    }
  };

  const hidden = (session: UiSession) => html`<input type="hidden" name="${CSRF_FIELD}" value="${session.csrfToken}">`;

  const loginForm = (session: UiSession, error?: string) => html`<section class="card login" aria-labelledby="login-title">
  <h2 id="login-title">Sign in to change chaos settings</h2>
  <p>Admin actions need the server's <code>ADMIN_TOKEN</code>. It is asked for once and kept in an HttpOnly cookie for this browser.</p>
  ${error ? notice("error", error) : ""}
  <form method="post" action="/ui/login" class="stack">
    ${hidden(session)}
    <input type="hidden" name="next" value="/chaos">
    <label for="admin-token">Admin token</label>
    <input id="admin-token" name="token" type="password" autocomplete="current-password" required>
    <button class="button button--primary" type="submit">Sign in</button>
  </form>
</section>`;

  const presets = (session: UiSession, message?: Html) => html`<section class="card presets-card" aria-labelledby="presets-title">
  <h2 id="presets-title">Presets</h2>
  <div class="presets">
    ${CHAOS_PRESETS.map(
      (p) => html`<form method="post" action="/ui/chaos/preset" hx-post="/ui/chaos/preset" hx-target="#chaos-message" class="preset">
      ${hidden(session)}
      <input type="hidden" name="preset" value="${p}">
      <button class="button button--preset button--${p}" type="submit" data-preset="${p}">${PRESET_TEXT[p].title}</button>
      <span class="preset__blurb">${PRESET_TEXT[p].blurb}</span>
    </form>`,
    )}
    <form method="post" action="/ui/chaos/disable" hx-post="/ui/chaos/disable" hx-target="#chaos-message" class="preset">
      ${hidden(session)}
      <button class="button button--danger" type="submit" data-preset="disable">Disable all chaos</button>
      <span class="preset__blurb">Stop every fault now.</span>
    </form>
  </div>
  <div id="chaos-message" class="chaos-message" role="status" aria-live="polite">${message ?? ""}</div>
</section>`;

  const customForm = (session: UiSession) => html`<section class="card" aria-labelledby="custom-title">
  <h2 id="custom-title">Custom experiment</h2>
  <form method="post" action="/ui/chaos/custom" hx-post="/ui/chaos/custom" hx-target="#chaos-message" class="custom-form">
    ${hidden(session)}
    <fieldset>
      <legend>Latency</legend>
      <div class="field"><label for="latency-min">Min (ms)</label><input id="latency-min" name="latency_min_ms" type="number" min="0" max="30000" step="1" value="0"></div>
      <div class="field"><label for="latency-max">Max (ms)</label><input id="latency-max" name="latency_max_ms" type="number" min="0" max="30000" step="1" value="0"></div>
      <div class="field"><label for="latency-pct">Calls (%)</label><input id="latency-pct" name="latency_pct" type="number" min="0" max="100" step="1" value="0"></div>
    </fieldset>
    <fieldset>
      <legend>Crash</legend>
      <div class="field"><label for="crash-pct">Calls (%)</label><input id="crash-pct" name="crash_pct" type="number" min="0" max="100" step="1" value="0"></div>
      <div class="field"><label for="crash-mode">As</label><select id="crash-mode" name="crash_mode"><option value="500">HTTP 500</option><option value="503">HTTP 503</option><option value="reset">connection reset</option></select></div>
    </fieldset>
    <fieldset>
      <legend>Lost response</legend>
      <p class="fieldset__hint">The deduction commits, then the answer is lost.</p>
      <div class="field"><label for="partial-pct">Calls (%)</label><input id="partial-pct" name="partial_pct" type="number" min="0" max="100" step="1" value="0"></div>
    </fieldset>
    <fieldset>
      <legend>Pattern and duration</legend>
      <div class="field"><label for="pattern">Pattern</label><select id="pattern" name="pattern"><option value="random">seeded random</option><option value="every-nth">every Nth call</option></select></div>
      <div class="field"><label for="seed">Seed</label><input id="seed" name="seed" type="number" min="0" max="4294967295" step="1" placeholder="any"></div>
      <div class="field"><label for="nth">N</label><input id="nth" name="nth" type="number" min="1" max="100000" step="1" value="3"></div>
      <div class="field"><label for="duration">Duration (s)</label><input id="duration" name="duration_s" type="number" min="5" max="86400" step="1" value="300" required></div>
    </fieldset>
    <div class="custom-form__actions"><button class="button button--primary" type="submit">Start experiment</button></div>
  </form>
</section>`;

  const signedIn = (session: UiSession) =>
    session.tokenConfigured
      ? html`<form method="post" action="/ui/logout" class="signout">${hidden(session)}<span class="muted">Signed in as admin.</span> <button class="button button--link" type="submit">Sign out</button></form>`
      : deps.config.nodeEnv !== "production"
        ? notice("warning", html`No <code>ADMIN_TOKEN</code> is set: chaos controls are open to anyone who can reach this port (development only).`)
        : html``;

  /** The chaos page, as whoever asks may see it. */
  const chaosBody = async (session: UiSession, opts: { message?: Html; loginError?: string } = {}): Promise<Html> => {
    const head = html`<div class="page-head">
  <h1>Chaos</h1>
  <p class="lede">Inject faults at inventory's edge — latency, crashes, committed deductions whose answer is lost — and watch orders stay correct: nothing confirmed twice, nothing accepted and then lost.</p>
</div>`;
    if (!deps.chaos) return html`${head}${notice("info", "No chaos injector runs in this instance.")}`;
    if (!session.admin.ok) {
      if (session.admin.code === "admin_closed") {
        return html`${head}${notice("warning", html`Chaos controls are closed: this production instance has no <code>ADMIN_TOKEN</code>.`)}`;
      }
      return html`${head}${loginForm(session, opts.loginError)}`;
    }
    return html`${head}${signedIn(session)}
${presets(session, opts.message)}
<div class="chaos-layout">
  <div id="chaos-live" class="card chaos-layout__live" hx-get="/ui/fragments/chaos" hx-trigger="every 2s" hx-swap="innerMorph">${await livePanel()}</div>
  ${customForm(session)}
</div>`;
  };

  /**
   * Runs one admin action from the page: same origin, CSRF token, then the admin rule. Answers
   * with a message fragment and the refreshed panel (htmx), or the whole page (plain form post).
   */
  const action = async (request: Request, body: unknown, run: (chaos: NonNullable<typeof deps.chaos>) => Promise<Html>): Promise<Response> => {
    const session = security.session(request);
    const respond = async (status: number, message: Html) => {
      if (isHtmx(request)) {
        const panel = session.admin.ok && deps.chaos ? html`<div id="chaos-live" hx-swap-oob="innerMorph">${await livePanel()}</div>` : "";
        return htmlResponse(html`${message}${panel}`, { status, session });
      }
      return htmlResponse(ctx.page("chaos", "Chaos", await chaosBody(session, { message })), { status, session });
    };
    const csrf = security.verify(request, formField(body, CSRF_FIELD));
    if (!csrf.ok) return respond(403, notice("error", `Refused: ${csrf.reason}.`));
    if (!deps.chaos) return respond(404, notice("error", "No chaos injector runs in this instance."));
    if (!session.admin.ok) {
      return session.admin.code === "admin_closed"
        ? respond(403, notice("error", "Chaos controls are closed: no ADMIN_TOKEN is configured."))
        : respond(401, notice("error", html`Your admin session has ended. <a href="/chaos">Sign in again</a>.`));
    }
    try {
      return respond(200, await run(deps.chaos));
    } catch (err) {
      // The interface promises refusals as errors with a `code` and a readable message.
      const code = (err as { code?: unknown } | null)?.code;
      if (!(err instanceof AppError) && err instanceof Error && typeof code === "string") return respond(422, notice("error", err.message));
      const d = ctx.describe(err, "chaos action");
      return respond(d.status, notice("error", d.message));
    }
  };

  const started = (active: ChaosActive | null) =>
    active === null
      ? notice("success", "All chaos is off.")
      : notice("success", html`<strong>${active.label}</strong> chaos is on for ${duration(active.secondsLeft)}.`);

  return new Elysia({ name: "views-chaos", detail: { hide: true } })
    .get("/chaos", async ({ request }) => {
      const session = security.session(request);
      return htmlResponse(ctx.page("chaos", "Chaos", await chaosBody(session)), { session });
    })
    .get("/ui/fragments/chaos", async ({ request }) => {
      // The panel shows configuration and faults: the same admin rule as the page.
      if (!security.admin(request).ok) return htmlResponse(notice("warning", html`<a href="/chaos">Sign in</a> to see the chaos state.`), { status: 401 });
      return htmlResponse(await livePanel());
    })
    .post("/ui/chaos/preset", ({ request, body }) =>
      action(request, body, async (chaos) => {
        const preset = formField(body, "preset");
        if (!(CHAOS_PRESETS as readonly string[]).includes(preset ?? "")) throw new ChaosFormError("Pick mild, moderate or extreme.");
        return started(await chaos.configure({ preset: preset as ChaosPresetName }));
      }),
    )
    .post("/ui/chaos/custom", ({ request, body }) =>
      action(request, body, async (chaos) => started(await chaos.configure(parseExperiment(body)))),
    )
    .post("/ui/chaos/disable", ({ request, body }) =>
      action(request, body, async (chaos) => {
        await chaos.disable();
        return notice("success", "All chaos is off.");
      }),
    )
    .post("/ui/login", async ({ request, body }) => {
      const session = security.session(request);
      const csrf = security.verify(request, formField(body, CSRF_FIELD));
      if (!csrf.ok) {
        return htmlResponse(ctx.page("chaos", "Chaos", await chaosBody(session, { loginError: `Refused: ${csrf.reason}.` })), { status: 403, session });
      }
      const token = formField(body, "token") ?? "";
      const verdict = security.checkToken(token);
      if (!verdict.ok || !token) {
        const loginError = verdict.ok || verdict.code === "unauthorized" ? "That is not the admin token." : "Admin actions are closed: no ADMIN_TOKEN is configured.";
        return htmlResponse(ctx.page("chaos", "Chaos", await chaosBody(session, { loginError })), { status: verdict.ok ? 400 : verdict.code === "unauthorized" ? 401 : 403, session });
      }
      const next = formField(body, "next") ?? "/chaos";
      // Only a path on this site: never `//host` or `/\host`, which browsers read as another origin.
      const target = /^\/(?![/\\])[\x21-\x7e]*$/.test(next) ? next : "/chaos";
      return new Response(null, {
        status: 303,
        headers: [
          ["location", target],
          ["cache-control", "no-store"],
          ["set-cookie", security.adminCookie(request, token)],
          ...session.setCookies.map((c): [string, string] => ["set-cookie", c]),
        ],
      });
    })
    .post("/ui/logout", async ({ request, body }) => {
      const session = security.session(request);
      const csrf = security.verify(request, formField(body, CSRF_FIELD));
      if (!csrf.ok) return htmlResponse(ctx.page("chaos", "Chaos", notice("error", `Refused: ${csrf.reason}.`)), { status: 403, session });
      return new Response(null, {
        status: 303,
        headers: [
          ["location", "/chaos"],
          ["cache-control", "no-store"],
          ["set-cookie", security.clearAdminCookie(request)],
        ],
      });
    });
}

/** The custom form's own refusal, before the injector sees the input. */
export class ChaosFormError extends AppError {
  readonly code = "invalid_request";
}

function int(body: unknown, name: string, label: string, min: number, max: number, fallback?: number): number {
  const raw = (formField(body, name) ?? "").trim();
  if (raw === "" && fallback !== undefined) return fallback;
  if (!/^\d{1,10}$/.test(raw)) throw new ChaosFormError(`${label} must be a whole number from ${min} to ${max}.`);
  const n = Number(raw);
  if (n < min || n > max) throw new ChaosFormError(`${label} must be a whole number from ${min} to ${max}.`);
  return n;
}

/** The custom form, checked here for readable messages; the injector validates again. */
export function parseExperiment(body: unknown): ChaosRequest {
  const latencyPct = int(body, "latency_pct", "Latency: calls affected", 0, 100, 0);
  const crashPct = int(body, "crash_pct", "Crash: calls affected", 0, 100, 0);
  const partialPct = int(body, "partial_pct", "Lost response: calls affected", 0, 100, 0);
  if (latencyPct + crashPct + partialPct === 0) throw new ChaosFormError("Choose at least one fault: set a percentage above 0.");
  const exp: ChaosExperiment = {
    pattern:
      formField(body, "pattern") === "every-nth"
        ? { kind: "every-nth", n: int(body, "nth", "N", 1, 100_000) }
        : (() => {
            const seedRaw = (formField(body, "seed") ?? "").trim();
            return seedRaw === "" ? { kind: "random" as const } : { kind: "random" as const, seed: int(body, "seed", "Seed", 0, 4_294_967_295) };
          })(),
    durationS: int(body, "duration_s", "Duration", 5, 86_400),
  };
  if (latencyPct > 0) {
    const minMs = int(body, "latency_min_ms", "Latency min", 0, 30_000, 0);
    const maxMs = int(body, "latency_max_ms", "Latency max", 0, 30_000, minMs);
    if (maxMs < minMs) throw new ChaosFormError("Latency max must be at least latency min.");
    if (maxMs === 0) throw new ChaosFormError("Latency needs a max above 0 ms.");
    exp.latency = { minMs, maxMs, probability: latencyPct / 100 };
  }
  if (crashPct > 0) {
    const mode = formField(body, "crash_mode");
    if (mode !== "500" && mode !== "503" && mode !== "reset") throw new ChaosFormError("Crash must be HTTP 500, HTTP 503 or a connection reset.");
    exp.crash = { probability: crashPct / 100, mode };
  }
  if (partialPct > 0) exp.partial = { probability: partialPct / 100 };
  return { experiment: exp };
}
