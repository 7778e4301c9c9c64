import {
  InventoryMisconfiguredError,
  InventoryUnavailableError,
  type CallContext,
  type DeductResult,
  type HoldResult,
  type MovementPage,
  type InventoryHealth,
  type InventoryItem,
  type InventoryPort,
  type ReleaseResult,
  type StockEventPage,
} from "../inventory.port.ts";

/**
 * Split mode: InventoryPort over HTTP. Every failure that leaves the outcome unknown (network
 * error, reset, abort, 5xx, 408, 429) becomes `InventoryUnavailableError`; a 422 refusal is an
 * answer and comes back as `outcome: "rejected"`; any other status means inventory refused the
 * caller itself (token, route) and becomes `InventoryMisconfiguredError`, naming what to fix.
 * Timeouts and the breaker are the caller's policy.
 */
/** Inventory's health behind the service guard: what the orders role asks in split mode. */
export const SERVICE_HEALTH_PATH = "/api/inventory/service/health";
/** Inventory's own events behind the service guard: what the orders role's relay imports. */
export const SERVICE_STOCK_EVENTS_PATH = "/api/inventory/service/stock-events";

export function createHttpInventory(baseUrl: string, opts: { fetch?: typeof fetch; token?: string | undefined } = {}): InventoryPort {
  const base = baseUrl.replace(/\/+$/, "");
  const doFetch = opts.fetch ?? fetch;

  async function call(method: string, path: string, ctx: CallContext | undefined, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (ctx?.requestId) headers["x-request-id"] = ctx.requestId;
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let res: Response;
    try {
      res = await doFetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: ctx?.signal });
    } catch (err) {
      const aborted = ctx?.signal?.aborted;
      throw new InventoryUnavailableError(`inventory ${method} ${path}: ${aborted ? "aborted" : (err as Error).message}`, err, aborted ? "timeout" : "transport");
    }
    if (res.status >= 500 || res.status === 408 || res.status === 429) {
      await res.body?.cancel().catch(() => {});
      throw new InventoryUnavailableError(`inventory ${method} ${path} answered ${res.status}`, undefined, "server_error");
    }
    return res;
  }

  /** A status the contract does not have for this call: the caller is misconfigured, not inventory down. */
  async function misconfigured(res: Response, method: string, path: string): Promise<never> {
    await res.body?.cancel().catch(() => {});
    const where = `${method} ${base}${path}`;
    const fix =
      res.status === 401 || res.status === 403
        ? opts.token
          ? "the service token was refused: set INVENTORY_TOKEN on the orders role to the inventory role's INVENTORY_TOKEN (or ADMIN_TOKEN)"
          : "no service token was sent: set INVENTORY_TOKEN on the orders role to the inventory role's INVENTORY_TOKEN (or ADMIN_TOKEN)"
        : res.status === 404 || res.status === 405
          ? "no such route there: check that INVENTORY_URL points at the inventory role's base URL (scheme, host, port, no path)"
          : "inventory does not speak this client's contract: check that INVENTORY_URL points at an inventory role of the same version";
    throw new InventoryMisconfiguredError(`inventory ${where} answered ${res.status}: ${fix}`, res.status);
  }

  async function json<T>(res: Response, what: string): Promise<T> {
    try {
      return (await res.json()) as T;
    } catch (err) {
      // The body was cut off mid-way: the outcome is unknown, like any lost response.
      throw new InventoryUnavailableError(`inventory ${what}: unreadable response`, err, "transport");
    }
  }

  return {
    async deduct(req, ctx) {
      const res = await call("POST", "/api/inventory/deduct", ctx, req);
      if (res.status === 200) return json<DeductResult>(res, "deduct");
      if (res.status === 422) {
        const p = await json<DeductResult & { outcome?: string }>(res, "deduct");
        if (p.outcome === "rejected") return p;
      }
      return misconfigured(res, "POST", "/api/inventory/deduct");
    },
    async release(orderId, ctx) {
      const res = await call("POST", "/api/inventory/release", ctx, { order_id: orderId });
      if (res.status === 200) return json<ReleaseResult>(res, "release");
      return misconfigured(res, "POST", "/api/inventory/release");
    },
    async pay(orderId, paidAt, ctx) {
      const res = await call("POST", "/api/inventory/pay", ctx, { order_id: orderId, paid_at: paidAt });
      if (res.status === 200) return json<HoldResult>(res, "pay");
      return misconfigured(res, "POST", "/api/inventory/pay");
    },
    async expire(orderId, ctx) {
      const res = await call("POST", "/api/inventory/expire", ctx, { order_id: orderId });
      if (res.status === 200) return json<HoldResult>(res, "expire");
      return misconfigured(res, "POST", "/api/inventory/expire");
    },
    async movements(itemId, page, ctx) {
      const q = new URLSearchParams();
      if (page?.limit !== undefined) q.set("limit", String(page.limit));
      if (page?.before !== undefined) q.set("before", String(page.before));
      const path = `/api/inventory/${encodeURIComponent(itemId)}/movements${q.size ? `?${q}` : ""}`;
      const res = await call("GET", path, ctx);
      if (res.status === 404 || res.status === 400) {
        await res.body?.cancel().catch(() => {});
        return null;
      }
      if (res.status === 200) return json<MovementPage>(res, "movements");
      return misconfigured(res, "GET", "/api/inventory/{item_id}/movements");
    },
    async get(itemId, ctx) {
      const res = await call("GET", `/api/inventory/${encodeURIComponent(itemId)}`, ctx);
      if (res.status === 404 || res.status === 400) return null;
      if (res.status === 200) return json<InventoryItem>(res, "get");
      return misconfigured(res, "GET", "/api/inventory/{item_id}");
    },
    async list(ctx) {
      const res = await call("GET", "/api/inventory", ctx);
      if (res.status === 200) return json<InventoryItem[]>(res, "list");
      return misconfigured(res, "GET", "/api/inventory");
    },
    async stockEvents(after, limit, ctx) {
      const q = new URLSearchParams({ limit: String(limit) });
      if (after !== null) q.set("after", after);
      const res = await call("GET", `${SERVICE_STOCK_EVENTS_PATH}?${q}`, ctx);
      if (res.status === 200) return json<StockEventPage>(res, "stock events");
      return misconfigured(res, "GET", SERVICE_STOCK_EVENTS_PATH);
    },
    async health(ctx) {
      // The service's own health route sits behind the same guard and token as deduct and
      // release, so a token or URL that would fail every order fails this check too.
      let res: Response;
      try {
        res = await call("GET", SERVICE_HEALTH_PATH, ctx);
      } catch (err) {
        if (err instanceof InventoryUnavailableError && err.kind === "server_error") {
          return { ok: false, checks: { inventory: { ok: false, detail: err.message } } };
        }
        throw err;
      }
      if (res.status === 200) return json<InventoryHealth>(res, "health");
      return misconfigured(res, "GET", SERVICE_HEALTH_PATH);
    },
  };
}
