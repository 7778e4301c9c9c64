import { Elysia } from "elysia";
import type { Clock } from "../platform/clock.ts";
import { noteOrderId } from "../platform/log-context.ts";
import type { ChaosInjector, CrashKind, InventoryRoute } from "./injector.ts";

/**
 * Chaos at inventory's inbound HTTP edge (split mode). Mount it BEFORE the inventory routes and
 * before the central error handler: Elysia applies a plugin's hooks only to routes registered after
 * it, and the first `onError` that answers wins.
 *
 * ```ts
 * app.use(chaosHttp(chaos)).use(inventoryRoutes)
 * ```
 */

/** Which inventory call a request is, or null for anything chaos must leave alone. */
export type RouteClassifier = (method: string, path: string) => InventoryRoute | null;

const BASE = "/api/inventory";

/**
 * The default map from the inventory HTTP API to port calls:
 * `POST /api/inventory/deduct` → deduct, `…/release…` → release, `…/pay` → pay, `…/expire` → expire, `GET /api/inventory` → list,
 * `GET /api/inventory/:item_id` → get, `…/health` → health. Admin paths are never touched.
 */
export const classifyInventoryRoute: RouteClassifier = (method, path) => {
  const p = path.length > 1 ? path.replace(/\/+$/, "") : path;
  if (p !== BASE && !p.startsWith(`${BASE}/`)) return null;
  const segments = p.slice(BASE.length).split("/").filter(Boolean);
  if (segments.length === 0) return method === "GET" ? "list" : null;
  if (segments.includes("deduct")) return "deduct";
  if (segments.includes("release")) return "release";
  if (method === "POST" && segments.length === 1 && segments[0] === "pay") return "pay";
  if (method === "POST" && segments.length === 1 && segments[0] === "expire") return "expire";
  if (segments[segments.length - 1] === "health") return "health";
  if (method === "GET" && segments.length === 1) return "get";
  return null;
};

/**
 * A response whose body fails before its first byte: Bun then closes the socket without writing a
 * status line, so the caller's `fetch` rejects with a TypeError (ECONNRESET) — a dropped connection,
 * not an HTTP answer. Erroring with `undefined` keeps Bun from logging it as an application error.
 */
export function resetResponse(): Response {
  return new Response(
    new ReadableStream({
      start(controller) {
        controller.error(undefined);
      },
    }),
    { status: 500 },
  );
}

/**
 * The same body for a crash before the work and for an answer lost after it, so the caller cannot
 * tell the two apart — exactly the uncertainty the experiment is about.
 */
export function injectedFailure(status: 500 | 503): Response {
  const body = {
    type: "https://valerix.dev/problems/inventory-failure",
    title: status === 503 ? "Inventory unavailable" : "Inventory failed",
    status,
    detail: "The inventory service failed to answer (fault injected by a chaos experiment).",
  };
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/problem+json" } });
}

const failure = (kind: CrashKind): Response => (kind === "reset" ? resetResponse() : injectedFailure(kind));

export interface ChaosHttpOptions {
  clock?: Clock;
  classify?: RouteClassifier;
}

/** `new Elysia().use(chaosHttp(chaos)).use(inventoryRoutes)` — see the module comment on order. */
export function chaosHttp(injector: ChaosInjector, opts: ChaosHttpOptions = {}) {
  const clock = opts.clock ?? injector.clock;
  const classify = opts.classify ?? classifyInventoryRoute;
  // Requests whose handler may run and commit, and whose answer must then be lost.
  const pendingLoss = new WeakMap<Request, CrashKind>();

  /** Sleeps, or returns false when the client went away first. */
  const wait = async (ms: number, signal: AbortSignal): Promise<boolean> => {
    if (signal.aborted) return false;
    try {
      await clock.sleep(ms, signal);
      return true;
    } catch {
      return false;
    }
  };

  const orderIdOf = (body: unknown, params: unknown): string | undefined => {
    const fromBody = (body as { order_id?: unknown } | null | undefined)?.order_id;
    if (typeof fromBody === "string") return fromBody;
    const fromParams = (params as { order_id?: unknown; id?: unknown } | null | undefined)?.order_id;
    return typeof fromParams === "string" ? fromParams : undefined;
  };

  const takeLoss = (request: Request): Response | undefined => {
    const kind = pendingLoss.get(request);
    if (kind === undefined) return undefined;
    pendingLoss.delete(request);
    return failure(kind);
  };

  return new Elysia()
    .onBeforeHandle({ as: "global" }, async ({ request, path, body, params }) => {
      const route = classify(request.method, path);
      if (!route) return;
      const orderId = orderIdOf(body, params);
      // A fault answers before the route does: name the order for the request's log line here.
      noteOrderId(orderId);
      const decision = await injector.decide(route, {
        requestId: request.headers.get("x-request-id") ?? undefined,
        orderId,
      });
      if (!decision) return;
      if (decision.latencyMs > 0 && !(await wait(decision.latencyMs, request.signal))) return resetResponse();
      if (decision.hang) {
        // Hold the request until the caller's timeout closes it; past the cap, drop the connection.
        await wait(decision.hangMs ?? 30_000, request.signal);
        return resetResponse();
      }
      if (decision.crash !== undefined) return failure(decision.crash);
      if (decision.partial !== undefined) pendingLoss.set(request, decision.partial);
    })
    .onAfterHandle({ as: "global" }, ({ request }) => takeLoss(request))
    .onError({ as: "global" }, ({ request }) => takeLoss(request));
}
