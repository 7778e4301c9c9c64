import { problem } from "./problem.ts";

/**
 * CORS for the public API, so that a shop's storefront, a web app on an origin of its own, can
 * place and read orders from a browser. Off unless `CORS_ORIGINS` lists origins.
 *
 * What it opens, and to whom:
 * - Only the public API: creating, reading and listing orders, reading stock. Never the admin
 *   API, inventory's internal writes (`deduct`, `release`, which take a service token), the
 *   health routes or the pages: a preflight for those is not answered, so a browser sends nothing.
 * - Only the listed origins, compared exactly. The answer names the one origin that asked
 *   (`Access-Control-Allow-Origin` holds one origin or `*`, never a list).
 * - Never with credentials: no `Access-Control-Allow-Credentials`, so a browser sends no cookie
 *   and reads no answer to a request that carried one. A storefront places orders with an
 *   `Idempotency-Key`, not a session. A cross-site request that carries a cookie anyway is refused
 *   as before, so the admin cookie and the pages keep their forgery protection.
 *
 * A refused preflight gets a 403 problem with no CORS headers: the browser then stops there, and a
 * person reading the answer with curl learns why.
 */

/** Request headers a storefront may send beyond the CORS-safelisted ones. */
export const CORS_ALLOWED_HEADERS = ["content-type", "idempotency-key"] as const;

/**
 * Response headers a storefront's script may read beyond the safelisted ones: where a queued
 * order lives, whether an answer was replayed, when to retry after a 429 or 503, and the id to
 * quote when asking for support.
 */
export const CORS_EXPOSED_HEADERS = ["location", "idempotent-replayed", "retry-after", "x-request-id"] as const;

/**
 * How long a browser may reuse a preflight answer. Chromium caps it at 2 h (Firefox at 24 h).
 * Taking an origin off the list still works at once: the request itself is checked again, and
 * refused, whatever a browser remembers.
 */
export const CORS_MAX_AGE_S = 7_200;

interface PublicRoute {
  path: RegExp;
  methods: readonly string[];
}

/** The public API, by path and method; the routes live in the orders and inventory modules. */
const PUBLIC_API: readonly PublicRoute[] = [
  { path: /^\/api\/orders\/?$/, methods: ["GET", "HEAD", "POST"] },
  { path: /^\/api\/orders\/[^/]+\/?$/, methods: ["GET", "HEAD"] },
  { path: /^\/api\/inventory\/?$/, methods: ["GET", "HEAD"] },
  // One item; `health` is inventory's own check for the orders role, `deduct` and `release` are writes.
  { path: /^\/api\/inventory\/(?!(?:health|deduct|release)\/?$)[^/]+\/?$/, methods: ["GET", "HEAD"] },
];

const publicRoute = (path: string) => PUBLIC_API.find((r) => r.path.test(path));

export interface Cors {
  /**
   * The answer to a CORS preflight on the public API: 204 with the CORS headers for a listed
   * origin asking for a method and headers we take, else a 403 problem without them. `undefined`
   * when the request is no preflight for the public API (it is routed as usual).
   *
   * @example cors.preflight(new Request("http://api/api/orders", { method: "OPTIONS", headers: { origin: "https://shop.example", "access-control-request-method": "POST" } }), "/api/orders") // 204
   */
  preflight(request: Request, path: string): Response | undefined;
  /**
   * Whether a cross-site request may go on to the API: a listed origin, calling the public API
   * with one of its methods, with no cookie.
   *
   * @example cors.admits(request, "/api/orders") // true for a storefront's POST, false for any admin path
   */
  admits(request: Request, path: string): boolean;
  /**
   * Adds `Vary: Origin` to every answer on the public API, and the CORS headers when a listed
   * origin asked.
   *
   * @example cors.decorate(request, "/api/orders/0b6f…", response)
   */
  decorate(request: Request, path: string, response: Response): void;
}

function addVary(headers: Headers, name: string): void {
  const vary = headers.get("vary");
  if (!vary) headers.set("vary", name);
  else if (!vary.split(",").some((v) => v.trim().toLowerCase() === name.toLowerCase() || v.trim() === "*")) headers.set("vary", `${vary}, ${name}`);
}

/** The CORS policy for `origins` (exact, checked by the config), or `undefined` when none are listed. */
export function createCors(origins: readonly string[]): Cors | undefined {
  if (origins.length === 0) return undefined;
  const allowed = new Set(origins);
  const allowedHeaders = new Set<string>(CORS_ALLOWED_HEADERS);
  const exposed = CORS_EXPOSED_HEADERS.join(", ");

  const originOf = (request: Request) => {
    const origin = request.headers.get("origin");
    return origin !== null && allowed.has(origin) ? origin : undefined;
  };

  return {
    preflight(request, path) {
      if (request.method !== "OPTIONS") return undefined;
      const method = request.headers.get("access-control-request-method");
      const origin = request.headers.get("origin");
      if (method === null || origin === null) return undefined;
      const route = publicRoute(path);
      if (!route) return undefined;
      const refuse = (detail: string) => {
        const res = problem("cors_not_allowed", detail);
        res.headers.set("vary", "Origin");
        return res;
      };
      if (!allowed.has(origin)) return refuse(`Origin ${origin.slice(0, 200)} is not in CORS_ORIGINS.`);
      if (!route.methods.includes(method)) return refuse(`${method.slice(0, 20)} is not allowed here; allowed: ${route.methods.join(", ")}.`);
      const asked = (request.headers.get("access-control-request-headers") ?? "")
        .split(",")
        .map((h) => h.trim().toLowerCase())
        .filter((h) => h !== "");
      const refused = asked.filter((h) => !allowedHeaders.has(h));
      if (refused.length) return refuse(`Header ${refused.join(", ").slice(0, 200)} is not allowed; allowed: ${CORS_ALLOWED_HEADERS.join(", ")}.`);
      return new Response(null, {
        status: 204,
        headers: {
          "access-control-allow-origin": origin,
          "access-control-allow-methods": route.methods.join(", "),
          "access-control-allow-headers": CORS_ALLOWED_HEADERS.join(", "),
          "access-control-max-age": String(CORS_MAX_AGE_S),
          vary: "Origin",
        },
      });
    },

    admits(request, path) {
      if (request.headers.has("cookie") || originOf(request) === undefined) return false;
      return publicRoute(path)?.methods.includes(request.method) ?? false;
    },

    decorate(request, path, response) {
      const route = publicRoute(path);
      if (!route) return;
      addVary(response.headers, "Origin");
      const origin = originOf(request);
      if (origin === undefined || !route.methods.includes(request.method)) return;
      response.headers.set("access-control-allow-origin", origin);
      response.headers.set("access-control-expose-headers", exposed);
    },
  };
}
