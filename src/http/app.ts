import { Elysia } from "elysia";
import { openapi } from "@elysiajs/openapi";
import { randomUUID } from "node:crypto";
import type { Server } from "bun";
import type { Logger } from "../platform/logging.ts";
import type { Metrics } from "../platform/metrics.ts";
import { errorToProblem, problem, problemFor, problemResponse } from "./problem.ts";
import { LIMITS } from "./schemas.ts";
import { swaggerRoutes } from "./swagger.ts";
import type { HealthRegistry } from "./health.ts";
import { healthRoutes } from "./health.ts";
import { VERSION } from "../version.ts";

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
}

/** Route template per request, for metrics and logs: never the raw path (unbounded labels). */
const routeOf = new WeakMap<Request, string>();

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
      if (p.status >= 500) deps.logger.error({ err: error, route: routeOf.get(request) }, "unhandled error");
      return problemResponse(p);
    })
    .use(
      openapi({
        provider: null,
        path: "/swagger",
        specPath: "/swagger/json",
        documentation: {
          info: {
            title: "Valerix API",
            version: VERSION,
            description:
              "Orders and inventory that stay correct when things break. Errors are RFC 9457 problem details (application/problem+json).",
          },
          tags: [
            { name: "orders", description: "Idempotent order creation and lookup" },
            { name: "inventory", description: "Stock levels and at-most-once deductions" },
            { name: "admin", description: "Catalog and chaos administration (Bearer ADMIN_TOKEN)" },
            { name: "ops", description: "Health and metrics" },
          ],
          components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
        },
      }),
    )
    .use(swaggerRoutes())
    .use(healthRoutes(deps.health))
    .get(
      "/metrics",
      async () =>
        new Response(await deps.metrics.registry.metrics(), { headers: { "content-type": deps.metrics.registry.contentType } }),
      { detail: { tags: ["ops"], summary: "Prometheus metrics" } },
    );
  for (const p of deps.plugins) app.use(p);
  return app;
}

export interface FetchOptions {
  /** True once SIGTERM arrived: new requests get 503 so load balancers move on. */
  isDraining: () => boolean;
  /** Called with each finished request; the order-request window listens here. */
  onFinished?: (info: { route: string; method: string; status: number; durationMs: number }) => void;
  /** Per-client gate (rate limiting); returns a response to refuse. */
  gate?: (request: Request, clientIp: string) => Response | undefined;
}

/**
 * The outermost layer: request id, body size limit, security headers, draining, metrics and one
 * log line per request. Runs around Elysia so every response, errors included, gets the same treatment.
 */
export function createFetch(app: Elysia<any, any, any, any, any, any, any>, deps: Pick<AppDeps, "logger" | "metrics">, opts: FetchOptions) {
  const handle = app.handle.bind(app);
  return async function fetch(request: Request, server?: Server<unknown>): Promise<Response> {
    const started = performance.now();
    let requestId = request.headers.get("x-request-id");
    if (!requestId || requestId.length > 128 || !/^[\x21-\x7e]+$/.test(requestId)) {
      requestId = randomUUID();
      request.headers.set("x-request-id", requestId);
    }
    let response: Response;
    const length = Number(request.headers.get("content-length") ?? "0");
    const clientIp = server?.requestIP(request)?.address ?? "local";
    if (opts.isDraining() && !new URL(request.url).pathname.startsWith("/health/live")) {
      response = problem("shutting_down", "This instance is draining; retry on another.", {}, { "retry-after": "1", connection: "close" });
    } else if (length > LIMITS.bodyBytesMax) {
      response = problem("payload_too_large", `Bodies are limited to ${LIMITS.bodyBytesMax} bytes.`);
    } else {
      response = opts.gate?.(request, clientIp) ?? (await handle(request));
    }
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) if (!response.headers.has(k)) response.headers.set(k, v);
    response.headers.set("x-request-id", requestId);
    response.headers.delete("x-powered-by");
    const durationMs = performance.now() - started;
    const route = routeOf.get(request) ?? "unmatched";
    const status = response.status;
    deps.metrics.httpDuration.labels(route, request.method, String(status)).observe(durationMs / 1000);
    opts.onFinished?.({ route, method: request.method, status, durationMs });
    if (deps.logger.isLevelEnabled("info")) {
      deps.logger.info({ request_id: requestId, method: request.method, route, status, duration_ms: Math.round(durationMs * 10) / 10 }, "request");
    }
    return response;
  };
}
