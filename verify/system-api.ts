import type { FinalObservation } from "./types.ts";

/**
 * The runner's view of a Valerix deployment outside the order path: catalog and chaos
 * administration, order and stock reads. Reads retry a few times on transport errors and 5xx,
 * since they run after healing and must not turn a hiccup into a false verdict.
 */

export interface SystemUrls {
  /** Where orders are placed and read (the orders role, or `all`). */
  orders: string;
  /** Where items are created and stock is read (the inventory role, or `all`). */
  inventory: string;
  /** Where the chaos admin API is called; in split mode, the inventory role injects. */
  chaos: string;
}

export class SystemApiError extends Error {
  readonly code = "system_api_error";
  constructor(message: string, readonly status: number) {
    super(message);
    this.name = "SystemApiError";
  }
}

export interface ChaosEventsView {
  events: Array<{ time: string; type: string; route: string; request_id: string | null; order_id: string | null; detail: string | null }>;
  counts: Record<string, number>;
}

export class SystemApi {
  constructor(
    readonly urls: SystemUrls,
    private readonly adminToken: string | undefined,
    private readonly opts: { timeoutMs?: number; retries?: number } = {},
  ) {}

  private async call(base: string, method: string, path: string, body?: unknown, admin = false, extra: Record<string, string> = {}): Promise<Response> {
    const headers: Record<string, string> = { accept: "application/json", ...extra };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (admin && this.adminToken) headers.authorization = `Bearer ${this.adminToken}`;
    const retries = this.opts.retries ?? 4;
    let last: unknown;
    for (let i = 0; i <= retries; i++) {
      try {
        const res = await fetch(base + path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000),
        });
        if (res.status < 500 || i === retries) return res;
        last = new SystemApiError(`${method} ${path} answered ${res.status}`, res.status);
        await res.body?.cancel().catch(() => {});
      } catch (err) {
        last = err;
      }
      await Bun.sleep(200 * 2 ** i);
    }
    throw last instanceof Error ? last : new Error(String(last));
  }

  private async json<T>(res: Response, what: string): Promise<T> {
    const text = await res.text();
    if (!res.ok) throw new SystemApiError(`${what} answered ${res.status}: ${text.slice(0, 300)}`, res.status);
    return JSON.parse(text) as T;
  }

  /** `await api.createItem({ item_id: "chaos-a1-1", item_name: "…", stock: 350, low_stock_threshold: 88 })`; 409 if it exists. */
  async createItem(item: { item_id: string; item_name: string; stock: number; low_stock_threshold?: number }): Promise<void> {
    const body = { item_id: item.item_id, item_name: item.item_name, quantity: item.stock, ...(item.low_stock_threshold ? { low_stock_threshold: item.low_stock_threshold } : {}) };
    const res = await this.call(this.urls.inventory, "POST", "/api/admin/inventory", body, true);
    await this.json(res, `create item ${item.item_id}`);
  }

  /**
   * One restock request, never retried (a restock has no idempotency key: a retry could add twice).
   * `await api.restockOnce("chaos-a1-2", 20)` → 200, or 0 when no answer came (it may have happened).
   */
  async restockOnce(itemId: string, quantity: number): Promise<number> {
    const headers: Record<string, string> = { accept: "application/json", "content-type": "application/json" };
    if (this.adminToken) headers.authorization = `Bearer ${this.adminToken}`;
    try {
      const res = await fetch(`${this.urls.inventory}/api/admin/inventory/${encodeURIComponent(itemId)}/restock`, {
        method: "POST",
        headers,
        body: JSON.stringify({ quantity }),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000),
      });
      await res.body?.cancel().catch(() => {});
      return res.status;
    } catch {
      return 0;
    }
  }

  /** Current stock, or null when the item does not exist. */
  async stock(itemId: string): Promise<number | null> {
    const res = await this.call(this.urls.inventory, "GET", `/api/inventory/${encodeURIComponent(itemId)}`);
    if (res.status === 404) {
      await res.body?.cancel().catch(() => {});
      return null;
    }
    return (await this.json<{ quantity: number }>(res, `stock of ${itemId}`)).quantity;
  }

  /** Available and reserved units: `await api.stockAndReserved("chaos-a1-1")` → `{ quantity: 12, reserved_quantity: 3 }`; null on 404. */
  async stockAndReserved(itemId: string): Promise<{ quantity: number; reserved_quantity: number } | null> {
    const res = await this.call(this.urls.inventory, "GET", `/api/inventory/${encodeURIComponent(itemId)}`);
    if (res.status === 404) {
      await res.body?.cancel().catch(() => {});
      return null;
    }
    const v = await this.json<{ quantity: number; reserved_quantity?: number }>(res, `stock of ${itemId}`);
    return { quantity: v.quantity, reserved_quantity: v.reserved_quantity ?? 0 };
  }

  /** Starts an experiment: `await api.applyChaos({ preset: "moderate", seed: 42 })` → the normalized active state. */
  async applyChaos(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const res = await this.call(this.urls.chaos, "POST", "/api/admin/chaos", body, true);
    return this.json(res, "start chaos");
  }

  async chaosState(): Promise<Record<string, unknown>> {
    return this.json(await this.call(this.urls.chaos, "GET", "/api/admin/chaos", undefined, true), "chaos state");
  }

  /** Ends the experiment everywhere: `await api.heal()`. */
  async heal(): Promise<void> {
    await this.json(await this.call(this.urls.chaos, "DELETE", "/api/admin/chaos", undefined, true), "heal");
  }

  async chaosEvents(limit = 200): Promise<ChaosEventsView> {
    return this.json(await this.call(this.urls.chaos, "GET", `/api/admin/chaos/events?limit=${limit}`, undefined, true), "chaos events");
  }

  /**
   * Subscribes an endpoint to every order event (one key, so a retried call subscribes once):
   * `await api.subscribeWebhook("http://127.0.0.1:4000/hooks", "chaos-a1-webhook")` → `{ id: "wh_…", secret: "whsec_…" }`.
   */
  async subscribeWebhook(url: string, key: string): Promise<{ id: string; secret: string }> {
    const res = await this.call(this.urls.orders, "POST", "/api/admin/webhooks", { url, events: ["*"], description: "chaos run receiver" }, true, { "idempotency-key": key });
    return this.json(res, "subscribe a webhook");
  }

  /** One page of `GET /api/events` after an event id (null: from the start). */
  async eventsPage(after: string | null, limit = 500): Promise<{ events: Array<{ id: string; type: string; created_at: string; data: { order_id?: string; seq?: number; status?: string } }>; next_after: string | null }> {
    const q = new URLSearchParams({ limit: String(limit) });
    if (after) q.set("after", after);
    return this.json(await this.call(this.urls.orders, "GET", `/api/events?${q}`), "events");
  }

  /** The order as the server holds it, `missing` on 404; throws when it cannot be read. */
  async order(orderId: string): Promise<Omit<FinalObservation, "final_seen_ms">> {
    const res = await this.call(this.urls.orders, "GET", `/api/orders/${encodeURIComponent(orderId)}`);
    if (res.status === 404) {
      await res.body?.cancel().catch(() => {});
      return { status: "missing", reason: null, server_attempts: 0, created_at: null, updated_at: null, history: [] };
    }
    const o = await this.json<{
      status: FinalObservation["status"];
      reason: string | null;
      attempts: number;
      created_at: string;
      updated_at: string;
      hold_expires_at?: string;
      paid_at?: string;
      history?: FinalObservation["history"];
    }>(res, `order ${orderId}`);
    return {
      status: o.status,
      reason: o.reason,
      server_attempts: o.attempts,
      created_at: o.created_at,
      updated_at: o.updated_at,
      ...(o.hold_expires_at ? { hold_expires_at: o.hold_expires_at } : {}),
      ...(o.paid_at ? { paid_at: o.paid_at } : {}),
      history: o.history ?? [],
    };
  }

  /** Prometheus text from a role, or null when it has no /metrics. */
  async metrics(base: string): Promise<string | null> {
    try {
      const res = await this.call(base, "GET", "/metrics");
      return res.ok ? await res.text() : null;
    } catch {
      return null;
    }
  }
}

/**
 * Sums a counter's samples by one label, over the samples whose other labels match `where`:
 * `counterBy(text, "circuit_breaker_transitions_total", "to")` → `{ open: 3, … }`.
 */
export function counterBy(text: string, metric: string, label: string, where: Record<string, string> = {}): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`^${metric}\\{([^}]*)\\}\\s+([0-9.eE+-]+)`, "gm");
  for (const m of text.matchAll(re)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(where).some(([k, v]) => labels[k] !== v)) continue;
    const k = labels[label] ?? "";
    out[k] = (out[k] ?? 0) + Number(m[2]);
  }
  return out;
}

/** `minus({ a: 5, b: 2 }, { a: 3 })` → `{ a: 2, b: 2 }`, dropping zeros. */
export function minus(later: Record<string, number>, earlier: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(later)) {
    const d = v - (earlier[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}
