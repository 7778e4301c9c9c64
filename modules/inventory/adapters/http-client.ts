import {
  InventoryUnavailableError,
  type CallContext,
  type DeductResult,
  type InventoryHealth,
  type InventoryItem,
  type InventoryPort,
  type ReleaseResult,
} from "../inventory.port.ts";

/**
 * Split mode: InventoryPort over HTTP. Every failure that leaves the outcome unknown (network
 * error, reset, abort, 5xx) becomes `InventoryUnavailableError`; a 422 refusal is an answer and
 * comes back as `outcome: "rejected"`. Timeouts and the breaker are the caller's policy.
 */
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
    if (res.status >= 500) {
      await res.body?.cancel().catch(() => {});
      throw new InventoryUnavailableError(`inventory ${method} ${path} answered ${res.status}`, undefined, "server_error");
    }
    return res;
  }

  async function json<T>(res: Response, what: string): Promise<T> {
    try {
      return (await res.json()) as T;
    } catch (err) {
      // The body was cut off mid-way: the outcome is unknown, like any lost response.
      throw new InventoryUnavailableError(`inventory ${what}: unreadable response`, err, "transport");
    }
  }

  function unexpected(res: Response, what: string): never {
    throw new Error(`inventory ${what} answered ${res.status}`);
  }

  return {
    async deduct(req, ctx) {
      const res = await call("POST", "/api/inventory/deduct", ctx, req);
      if (res.status === 200) return json<DeductResult>(res, "deduct");
      if (res.status === 422) {
        const p = await json<DeductResult & { outcome?: string }>(res, "deduct");
        if (p.outcome === "rejected") return p;
      }
      return unexpected(res, "deduct");
    },
    async release(orderId, ctx) {
      const res = await call("POST", "/api/inventory/release", ctx, { order_id: orderId });
      if (res.status === 200) return json<ReleaseResult>(res, "release");
      return unexpected(res, "release");
    },
    async get(itemId, ctx) {
      const res = await call("GET", `/api/inventory/${encodeURIComponent(itemId)}`, ctx);
      if (res.status === 404 || res.status === 400) return null;
      if (res.status === 200) return json<InventoryItem>(res, "get");
      return unexpected(res, "get");
    },
    async list(ctx) {
      const res = await call("GET", "/api/inventory", ctx);
      if (res.status === 200) return json<InventoryItem[]>(res, "list");
      return unexpected(res, "list");
    },
    async health(ctx) {
      let res: Response;
      try {
        res = await call("GET", "/api/inventory/health", ctx);
      } catch (err) {
        if (err instanceof InventoryUnavailableError && err.kind === "server_error") {
          return { ok: false, checks: { inventory: { ok: false, detail: err.message } } };
        }
        throw err;
      }
      return json<InventoryHealth>(res, "health");
    },
  };
}
