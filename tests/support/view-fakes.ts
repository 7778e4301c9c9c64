import type { InventoryItem } from "../../modules/inventory/index.ts";
import type { OrderInput, OrderView } from "../../modules/orders/index.ts";
import { createViews, type OrderAnswer, type OrdersAccess, type OrderWithHistory } from "../../views/index.ts";
import { CSRF_COOKIE, UiSecurity, parseCookies } from "../../views/ui-security.ts";

/**
 * An in-memory stand-in for the orders service and inventory, for the pages' unit tests: all or
 * nothing over several lines, replays by key, and cancels that give the stock back once. The
 * bodies have the API's shape (an order, or a problem carrying `order_status`); the real service
 * is exercised by the suites under tests/browser/.
 */
export class FakeShop {
  readonly items = new Map<string, InventoryItem>();
  readonly orders = new Map<string, OrderWithHistory>();
  readonly keys = new Map<string, { fp: string; answer: OrderAnswer }>();
  cancels = 0;
  creates = 0;
  /** When set, the next service call throws this (a `code`d error, as the service's are). */
  failNext: (Error & { code?: string }) | null = null;
  private n = 0;

  constructor(stock: Record<string, number>) {
    for (const [id, q] of Object.entries(stock)) {
      this.items.set(id, { item_id: id, item_name: `Name of ${id}`, quantity: q, reserved_quantity: 0, updated_at: new Date(0).toISOString() });
    }
  }

  private takeFailure() {
    const f = this.failNext;
    this.failNext = null;
    if (f) throw f;
  }

  private replay(key: string, fp: string): OrderAnswer | null {
    const k = this.keys.get(key);
    if (!k) return null;
    if (k.fp !== fp) throw Object.assign(new Error(`Idempotency-Key "${key}" was already used with a different request body.`), { code: "idempotency_key_reused" });
    return { ...k.answer, replayed: true };
  }

  readonly access: OrdersAccess = {
    create: async (key: string, input: OrderInput) => {
      this.takeFailure();
      const lines = "lines" in input ? input.lines.map((l) => ({ ...l })) : [{ item_id: input.item_id, quantity: input.quantity }];
      const seen = new Set<string>();
      for (const l of lines) {
        if (seen.has(l.item_id)) throw Object.assign(new Error(`Item "${l.item_id}" appears on more than one line; put its whole quantity on one line.`), { code: "duplicate_line_item" });
        seen.add(l.item_id);
      }
      const fp = `create:${JSON.stringify(lines)}`;
      const replayed = this.replay(key, fp);
      if (replayed) return replayed;
      this.creates++;
      const rejected = lines.flatMap((l) => {
        const item = this.items.get(l.item_id);
        return !item ? [{ item_id: l.item_id, reason: "unknown_item" }] : item.quantity < l.quantity ? [{ item_id: l.item_id, reason: "insufficient_stock" }] : [];
      });
      const id = `00000000-0000-4000-8000-${String(++this.n).padStart(12, "0")}`;
      const at = new Date(1_700_000_000_000 + this.n * 1000).toISOString();
      const base: OrderView = { order_id: id, lines, status: "confirmed", reason: null, message: "Order confirmed.", attempts: 0, created_at: at, updated_at: at };
      let answer: OrderAnswer;
      if (rejected.length) {
        const order = { ...base, status: "rejected" as const, reason: rejected[0]!.reason, rejected_lines: rejected, message: "Not enough stock." };
        this.orders.set(id, { ...order, history: [{ status: "pending", reason: null, at }, { status: "rejected", reason: order.reason, at }] });
        const { status, ...rest } = order;
        answer = { status: 422, body: JSON.stringify({ type: "about:blank", title: "Rejected", status: 422, detail: `Order ${id} was ${status}`, ...rest, order_status: status }), replayed: false, orderId: id };
      } else {
        for (const l of lines) this.items.get(l.item_id)!.quantity -= l.quantity;
        this.orders.set(id, { ...base, history: [{ status: "pending", reason: null, at }, { status: "confirmed", reason: null, at }] });
        answer = { status: 201, body: JSON.stringify(base), replayed: false, orderId: id };
      }
      this.keys.set(key, { fp, answer });
      return answer;
    },
    cancel: async (orderId: string, key: string, input: { reason?: string | undefined }, _requestId: string | null, actor: string) => {
      this.takeFailure();
      const o = this.orders.get(orderId);
      if (!o) throw Object.assign(new Error(`Order ${orderId} not found`), { code: "not_found" });
      const replayed = this.replay(key, `cancel:${orderId}:${input.reason ?? ""}`);
      if (replayed) return replayed;
      let answer: OrderAnswer;
      if (o.status === "rejected" || o.status === "failed") {
        const body = { type: "about:blank", title: "This order cannot be cancelled", status: 409, detail: `Order ${orderId} is ${o.status}: it took no stock and cannot be cancelled.`, order_id: orderId, order_status: o.status };
        answer = { status: 409, body: JSON.stringify(body), replayed: false, orderId };
      } else {
        if (o.status !== "cancelled") {
          this.cancels++;
          for (const l of o.lines) this.items.get(l.item_id)!.quantity += l.quantity;
          const at = new Date(Date.parse(o.updated_at) + 1000).toISOString();
          o.history.push({ status: "cancelling", reason: "cancel_requested", at, actor, ...(input.reason ? { note: input.reason } : {}) }, { status: "cancelled", reason: "cancelled", at });
          Object.assign(o, { status: "cancelled", reason: "cancelled", message: "Order cancelled; its stock was given back.", updated_at: at });
        }
        const { history: _h, ...view } = o;
        answer = { status: 200, body: JSON.stringify(view), replayed: false, orderId };
      }
      this.keys.set(key, { fp: `cancel:${orderId}:${input.reason ?? ""}`, answer });
      return answer;
    },
    list: async ({ status }) => [...this.orders.values()].reverse().filter((o) => !status || o.status === status),
    get: async (orderId: string) => {
      const o = this.orders.get(orderId);
      if (!o) throw Object.assign(new Error(`Order ${orderId} not found`), { code: "not_found" });
      return structuredClone(o);
    },
  };

  /** The pages over this shop, and a browser's session for them (cookie, CSRF token). */
  views() {
    const config = { adminToken: undefined, nodeEnv: "test", csrfSecret: "unit-test-secret" };
    const app = createViews({
      window: { snapshot: () => ({ averageMs: null, count: 0, status: "optimal" }), record: () => {} },
      orders: this.access,
      inventory: { list: async () => [...this.items.values()].map((i) => ({ ...i })), get: async (id: string) => this.items.get(id) ?? null },
      health: { ready: {}, deep: {}, role: "all" },
      config,
    });
    const session = new UiSecurity(config).session(new Request("http://localhost/"));
    const cookie = session.setCookies[0]!.split(";")[0]!;
    const id = parseCookies(cookie)[CSRF_COOKIE]!;
    const headers = (extra: Record<string, string> = {}) => ({
      cookie: `${CSRF_COOKIE}=${id}`,
      "sec-fetch-site": "same-origin",
      "content-type": "application/x-www-form-urlencoded",
      ...extra,
    });
    return {
      token: session.csrfToken,
      get: async (path: string) => {
        const res = await app.handle(new Request(`http://localhost${path}`, { headers: { cookie: `${CSRF_COOKIE}=${id}` } }));
        return { status: res.status, html: await res.text() };
      },
      /** A form post; `fields` may repeat a name (pairs), as a form with several lines does. */
      post: async (path: string, fields: Array<[string, string]>, extra: Record<string, string> = {}) => {
        const res = await app.handle(new Request(`http://localhost${path}`, { method: "POST", headers: headers(extra), body: new URLSearchParams(fields) }));
        return { status: res.status, html: await res.text() };
      },
    };
  }
}
