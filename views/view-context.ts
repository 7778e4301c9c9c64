import { systemClock, type Clock } from "../platform/clock.ts";
import { AppError } from "../platform/errors.ts";
import { statusOf } from "../platform/problems.ts";
import type { Html } from "./html.ts";
import { html } from "./html.ts";
import { page, type Section } from "./layout.ts";
import { healthBanner } from "./components/banner.ts";
import { ActivityHistory } from "./activity-history.ts";
import { UiSecurity, type UiSession } from "./ui-security.ts";
import type { ViewDeps } from "./view-deps.ts";

/** What every page module shares: the deps, the CSRF/admin rules, the traffic history, the clock. */
export interface ViewContext {
  deps: ViewDeps;
  security: UiSecurity;
  history: ActivityHistory;
  clock: Clock;
  windowSeconds: number;
  /** Renders a whole page around `body`, with the banner as it stands now. */
  page(section: Section | null, title: string, body: Html): Html;
  banner(): Html;
  /** `describeError`, reporting unexpected errors to `deps.onError` for the log. */
  describe(err: unknown, context: string): { status: number; code: string; message: string };
}

export function createViewContext(deps: ViewDeps): ViewContext {
  const clock = deps.clock ?? systemClock;
  const windowSeconds = deps.windowSeconds ?? 30;
  const history = new ActivityHistory(5_000, 36, clock);
  deps.orders?.onOutcome?.((e) => {
    history.recordOrder(e.durationMs);
    if (deps.breaker) history.observeBreaker(deps.breaker.state);
  });
  deps.breaker?.onStateChange?.(({ to }) => history.observeBreaker(to));
  const banner = () => healthBanner(deps.window.snapshot(), windowSeconds);
  return {
    deps,
    security: new UiSecurity(deps.config),
    history,
    clock,
    windowSeconds,
    banner,
    describe: (err, context) => {
      const d = describeError(err);
      if (d.status >= 500) deps.onError?.(err, context);
      return d;
    },
    page: (section, title, body) => page({ title, section, banner: banner(), body }),
  };
}

export const isHtmx = (request: Request) => request.headers.get("hx-request") === "true";

/** An HTML response that is never cached (it shows live state) and carries the session's cookies. */
export function htmlResponse(body: Html | string, opts: { status?: number; session?: UiSession; headers?: Record<string, string> } = {}): Response {
  const headers = new Headers({ "content-type": "text/html; charset=utf-8", "cache-control": "no-store", ...opts.headers });
  for (const c of opts.session?.setCookies ?? []) headers.append("set-cookie", c);
  return new Response(String(body), { status: opts.status ?? 200, headers });
}

export function seeOther(location: string, setCookies: string[] = []): Response {
  const headers = new Headers({ location, "cache-control": "no-store" });
  for (const c of setCookies) headers.append("set-cookie", c);
  return new Response(null, { status: 303, headers });
}

/** An error as the pages show it: the HTTP status the API would give, and a message safe to print. */
export function describeError(err: unknown): { status: number; code: string; message: string } {
  if (err instanceof AppError) return { status: statusOf(err.code), code: err.code, message: err.message };
  const code = (err as { code?: unknown })?.code;
  if (typeof code === "string" && err instanceof Error && statusOf(code) < 500) return { status: statusOf(code), code, message: err.message };
  return { status: 500, code: "internal_error", message: "An unexpected error occurred; it has been logged." };
}

/** A notice box; `tone` picks the colour, the words carry the meaning. */
export function notice(tone: "info" | "success" | "warning" | "error", body: Html | string): Html {
  return html`<div class="notice notice--${tone}" role="${tone === "error" ? "alert" : "status"}">${body}</div>`;
}

/**
 * Runs an idempotent request again while its key is still in flight. A double-submitted form's
 * second copy can arrive while the first is running; waiting briefly lets the page show the
 * first answer, replayed, instead of a 409 the person can do nothing about. Counted in tries, not
 * clock time, so a clock that stands still (the screenshot script's) cannot make it spin forever.
 */
export async function whileKeyInFlight<T>(clock: Clock, run: () => Promise<T>, tries = 50, pauseMs = 100): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await run();
    } catch (err) {
      if ((err as { code?: unknown })?.code !== "idempotency_key_in_use" || i >= tries) throw err;
      await clock.sleep(pauseMs);
    }
  }
}

/** Form bodies arrive parsed by Elysia (urlencoded or multipart); anything else is no form. */
export function formField(body: unknown, name: string): string | undefined {
  if (!body || typeof body !== "object") return undefined;
  const v = (body as Record<string, unknown>)[name];
  if (Array.isArray(v)) return typeof v[0] === "string" ? v[0] : undefined;
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : undefined;
}

/**
 * Every value of a repeated field, in the order the form sent them (one value arrives as a plain
 * string). Anything not text (a file) becomes "?", which no field accepts.
 */
export function formFields(body: unknown, name: string): string[] {
  if (!body || typeof body !== "object") return [];
  const v = (body as Record<string, unknown>)[name];
  const all = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return all.map((x) => (typeof x === "string" ? x : typeof x === "number" ? String(x) : "?"));
}
