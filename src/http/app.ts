import { Elysia } from "elysia";
import { randomUUID } from "node:crypto";
import type { Server } from "bun";
import type { Logger } from "../../platform/logging.ts";
import type { Metrics } from "../../platform/metrics.ts";
import { errorToProblem, problemFor } from "../../platform/problems.ts";
import { problem, problemResponse } from "./problem.ts";
import { HTTP_LIMITS as LIMITS } from "./limits.ts";
import { errorHeaders } from "./problem.ts";
import { swaggerRoutes } from "./swagger.ts";
import { DRAIN, discard, inspectJson, isJsonMediaType, jsonHazard, readBounded } from "./body-limits.ts";
import type { AdminGuard } from "./guards.ts";
import type { Cors } from "./cors.ts";
import type { HealthRegistry } from "./health.ts";
import { healthRoutes } from "./health.ts";
import { openapiDocumentRoute } from "./openapi.ts";
import type { JsonObject } from "../../platform/openapi.ts";
import { withLogContext } from "../../platform/log-context.ts";

export const SECURITY_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
};

export interface AppDeps {
  logger: Logger;
  metrics: Metrics;
  health: HealthRegistry;
  /** Route plugins contributed by the modules this role hosts (and the pages). */
  plugins: Elysia<any, any, any, any, any, any, any>[];
  role: string;
  /** Schemas the hosted modules' routes refer to (`#/components/schemas/Order`, …), for the OpenAPI document. */
  schemas?: Record<string, unknown>;
}

/** Route template per request, for metrics and logs: never the raw path (unbounded labels). */
const routeOf = new WeakMap<Request, string>();

/**
 * The route label of a template: without a trailing slash, so a prefixed plugin's `"/"` route
 * (`/api/orders/`) is labelled as clients call it (`/api/orders`), as dashboards and alerts query it.
 */
export function routeLabel(template: string | undefined): string {
  if (template === undefined) return "unmatched";
  return template.length > 1 && template.endsWith("/") ? template.slice(0, -1) : template;
}

function validationProblem(error: unknown): Response {
  const all = (error as { all?: Array<{ path?: string; message?: string; summary?: string }> }).all ?? [];
  const errors = all.slice(0, 20).map((e) => ({ field: e.path?.replace(/^\//, "").replaceAll("/", ".") || "(body)", message: e.summary ?? e.message ?? "invalid" }));
  const where = (error as { type?: string }).type;
  return problemResponse(problemFor("invalid_request", `The request ${where ?? "input"} does not match the schema.`, { errors }));
}

export function createApp(deps: AppDeps) {
  const app = new Elysia({ normalize: false })
    .onTransform({ as: "global" }, ({ request, route }) => {
      routeOf.set(request, route);
    })
    .onError({ as: "global" }, ({ code, error, request }) => {
      switch (code) {
        case "VALIDATION":
          return validationProblem(error);
        case "PARSE":
          return problem("malformed_json", "The body could not be parsed; send application/json.");
        case "NOT_FOUND":
          return problem("not_found", `No route for ${request.method} ${new URL(request.url).pathname}`);
        case "INVALID_COOKIE_SIGNATURE":
          return problem("unauthorized");
      }
      const p = errorToProblem(error);
      // An outage is logged where it is noticed (the pools); one line per refused request is enough.
      if (p.status === 503) deps.logger.warn({ code: p.type, route: routeLabel(routeOf.get(request)), reason: (error as { reason?: unknown }).reason }, "unavailable");
      else if (p.status >= 500) deps.logger.error({ err: error, route: routeLabel(routeOf.get(request)) }, "unhandled error");
      return problemResponse(p, errorHeaders(error));
    })
    .use(swaggerRoutes())
    .use(healthRoutes(deps.health))
    .get(
      "/metrics",
      async () =>
        new Response(await deps.metrics.scrape(), { headers: { "content-type": deps.metrics.registry.contentType } }),
      {
        detail: {
          tags: ["ops"],
          operationId: "metrics",
          summary: "Prometheus metrics",
          responses: { 200: { description: "Prometheus text exposition format", content: { "text/plain": { schema: { type: "string" } } } } },
        },
      },
    );
  for (const p of deps.plugins) app.use(p);
  // Plain JSON: the TypeBox schemas carry symbols the document has no use for.
  const schemas = JSON.parse(JSON.stringify(deps.schemas ?? {})) as Record<string, JsonObject>;
  const document = openapiDocumentRoute(app, { schemas });
  app.get("/swagger/json", ({ request }) => document(request), { detail: { hide: true } });
  return app;
}

export interface FetchOptions {
  /** True once SIGTERM arrived: new requests get 503 so load balancers move on. */
  isDraining: () => boolean;
  /** Called with each finished request; the order-request window listens here. */
  onFinished?: (info: { route: string; method: string; status: number; durationMs: number }) => void;
  /** Per-client gate (rate limiting); returns a response to refuse. */
  gate?: (request: Request, clientIp: string) => Response | undefined;
  /** The admin check, applied to every path under `/api/admin` before the body is read. */
  adminGuard?: AdminGuard;
  /** CORS for the public API (`CORS_ORIGINS`); without it, no preflight is answered. */
  cors?: Cors;
}

/**
 * What Bun itself should allow (its `maxRequestBodySize`). Bun answers a Content-Length over its
 * limit with a bare 413 before our code runs; with its limit out of the way, `createFetch` answers
 * every oversized body itself, as a problem, after reading the rest of it within `DRAIN`'s bounds.
 */
export const BUN_MAX_REQUEST_BODY_SIZE = Number.MAX_SAFE_INTEGER;

/** Sets the security headers on a response that lacks them; for responses made outside `createFetch`. */
export function withSecurityHeaders(response: Response): Response {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) if (!response.headers.has(k)) response.headers.set(k, v);
  response.headers.delete("x-powered-by");
  return response;
}

const UNSAFE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Answers a request with a refusal, whatever is left of its body unread; see `createRefuser`. */
type Refuse = (response: Response, request: Request, alreadyRead?: number) => Promise<Response>;

/**
 * Refusals made before the body was read (or all of it): the rest of the body is read and dropped
 * within `DRAIN`'s bounds (why: see there), so a client that writes its whole body before reading
 * still reads the answer; then the connection closes. Past a bound it closes unread.
 */
export function createRefuser(bounds: { bytesMax: number; timeoutMs: number; concurrentMax: number } = DRAIN): Refuse {
  let inFlight = 0;
  return async (response, request, alreadyRead = 0) => {
    if (request.body === null) return response;
    response.headers.set("connection", "close");
    // A client that asked to hear first (`Expect: 100-continue`) has not sent its body and will
    // not once it has the answer; reading would invite the body we are refusing.
    if (request.headers.get("expect")?.toLowerCase() === "100-continue") return response;
    const declared = Number(request.headers.get("content-length"));
    if (declared > bounds.bytesMax || inFlight >= bounds.concurrentMax) return response;
    inFlight++;
    try {
      await discard(request.body, { maxBytes: bounds.bytesMax - alreadyRead, timeoutMs: bounds.timeoutMs });
    } finally {
      inFlight--;
    }
    return response;
  };
}

/**
 * The request's URL, also when Bun could not make an absolute one: without a Host header, or
 * with one a URL cannot hold ("a/b", "a@b", "[::1"), `request.url` is just the path, or broken.
 */
function requestUrl(raw: string): URL | null {
  try {
    return new URL(raw, "http://localhost");
  } catch {
    const path = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*(.*)$/i.exec(raw)?.[1];
    try {
      return path === undefined ? null : new URL(path || "/", "http://localhost");
    } catch {
      return null;
    }
  }
}

/**
 * Screens a request before routing. Returns the request Elysia should see (body buffered and
 * checked) or the refusal. Elysia finds the path by searching for "/" from index 11 of the URL,
 * which assumes "http://" and a host of 4+ characters: with `Host: inv`, `/xx/api/orders` would
 * route to `/api/orders`, past the rate limit's path check; with no host at all it misroutes
 * everything. Such requests get a URL Elysia reads the same way we do.
 */
async function screen(request: Request, url: URL, clientIp: string, opts: FetchOptions, refuse: Refuse): Promise<Request | Response> {
  const hasBody = request.body !== null;
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > LIMITS.bodyBytesMax) {
    return refuse(problem("payload_too_large", `Bodies are limited to ${LIMITS.bodyBytesMax} bytes.`), request);
  }
  // Browsers say where a request comes from; a page on another site may not change anything
  // through the API (a form there could otherwise post to the admin API with the admin cookie
  // attached). The pages refuse such posts themselves, with a page a person can read. The one
  // exception is a storefront listed in CORS_ORIGINS placing an order, without a cookie.
  const site = request.headers.get("sec-fetch-site");
  if (
    UNSAFE_METHODS.has(request.method) &&
    (site === "cross-site" || site === "same-site") &&
    url.pathname.startsWith("/api/") &&
    !opts.cors?.admits(request, url.pathname)
  ) {
    return refuse(problem("cross_site_request", "This API takes no state-changing requests from other sites."), request);
  }
  const isAdmin = url.pathname === "/api/admin" || url.pathname.startsWith("/api/admin/");
  const rewrite = url.host.length < 4 || !request.url.startsWith(`${url.origin}/`);
  const target = rewrite ? `http://localhost${url.pathname}${url.search}` : request.url;
  // Gates read the URL too; they get one that parses (without the body, which they never read).
  const gated = rewrite ? new Request(target, { method: request.method, headers: request.headers }) : request;
  const refused = (isAdmin ? opts.adminGuard?.({ request: gated }) : undefined) ?? opts.gate?.(gated, clientIp);
  if (refused) return refuse(refused, request);
  if (!hasBody && !rewrite) return request;
  const headers = new Headers(request.headers);
  let body: Uint8Array<ArrayBuffer> | undefined;
  if (hasBody) {
    // With a Content-Length (already checked against the cap) HTTP framing bounds the body, and
    // Bun reads it natively; the stream reader is for chunked bodies, which may run on.
    const bytes = declared !== null ? await request.bytes() : await readBounded(request.body!, LIMITS.bodyBytesMax);
    if (!bytes) return refuse(problem("payload_too_large", `Bodies are limited to ${LIMITS.bodyBytesMax} bytes.`), request, LIMITS.bodyBytesMax);
    const type = request.headers.get("content-type");
    const json = isJsonMediaType(type);
    // The API speaks JSON only. Refusing other types also shuts out the one body a cross-site HTML
    // form can send without a CORS preflight (urlencoded, multipart, text/plain).
    if (bytes.byteLength > 0 && url.pathname.startsWith("/api/") && !json) {
      return problem("unsupported_media_type", `Send the body as application/json${type ? `, not ${type.split(";")[0]!.trim().slice(0, 100)}` : ""}.`);
    }
    if (json) {
      const hazard = jsonHazard(bytes, LIMITS.jsonDepthMax);
      if (hazard === "too_deep") return problem("json_too_deep", `JSON bodies may nest at most ${LIMITS.jsonDepthMax} levels.`);
      if (hazard) return problem("invalid_characters", "Strings may not contain NUL (\\u0000) or unpaired surrogates.");
      if (bytes.byteLength > 0) {
        const inspected = inspectJson(new TextDecoder().decode(bytes));
        if (!inspected.ok && inspected.reason === "malformed") return problem("malformed_json", "The body could not be parsed; send application/json.");
        if (!inspected.ok) return problem("invalid_request", `"${inspected.key}" is not a property any body here has.`, { errors: [{ field: inspected.key, message: "reserved property name" }] });
      }
      // One spelling, so Elysia picks its JSON parser for "Application/JSON" or "application/x+json" too.
      headers.set("content-type", "application/json");
    }
    headers.delete("transfer-encoding");
    headers.set("content-length", String(bytes.byteLength));
    body = bytes;
  }
  return new Request(target, { method: request.method, headers, body });
}

/**
 * The outermost layer: request id, body limits, security headers, draining, metrics and one log
 * line per request. Runs around Elysia so every response, errors included, gets the same treatment.
 */
export function createFetch(app: Elysia<any, any, any, any, any, any, any>, deps: Pick<AppDeps, "logger" | "metrics">, opts: FetchOptions) {
  const handle = app.handle.bind(app);
  const refuse = createRefuser();
  return function fetch(request: Request, server?: Server<unknown>): Promise<Response> {
    const started = performance.now();
    let requestId = request.headers.get("x-request-id");
    if (!requestId || requestId.length > 128 || !/^[\x21-\x7e]+$/.test(requestId)) {
      requestId = randomUUID();
      request.headers.set("x-request-id", requestId);
    }
    // Every line written while this request is served carries its id (and the order's, once known).
    return withLogContext({ request_id: requestId }, () => serve(request, server, requestId, started));
  };

  async function serve(request: Request, server: Server<unknown> | undefined, requestId: string, started: number): Promise<Response> {
    let response: Response;
    let routed = request;
    const clientIp = server?.requestIP(request)?.address ?? "local";
    const url = requestUrl(request.url);
    if (!url) {
      response = await refuse(problem("invalid_request", "The request target is not a valid URL."), request);
    } else if (opts.isDraining() && !url.pathname.startsWith("/health/live")) {
      response = problem("shutting_down", "This instance is draining; retry on another.", {}, { "retry-after": "1", connection: "close" });
    } else {
      const preflight = opts.cors?.preflight(request, url.pathname);
      const screened = preflight ?? (await screen(request, url, clientIp, opts, refuse));
      if (screened instanceof Response) response = screened;
      else {
        routed = screened;
        response = await handle(routed);
      }
    }
    if (url) opts.cors?.decorate(request, url.pathname, response);
    withSecurityHeaders(response);
    response.headers.set("x-request-id", requestId);
    const durationMs = performance.now() - started;
    const route = routeLabel(routeOf.get(routed));
    const status = response.status;
    deps.metrics.httpDuration.labels(route, request.method, String(status)).observe(durationMs / 1000);
    opts.onFinished?.({ route, method: request.method, status, durationMs });
    if (deps.logger.isLevelEnabled("info")) {
      deps.logger.info({ request_id: requestId, method: request.method, route, status, duration_ms: Math.round(durationMs * 10) / 10 }, "request");
    }
    return response;
  }
}
