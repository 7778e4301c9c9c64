import type { Clock } from "../../platform/clock.ts";
import { systemClock } from "../../platform/clock.ts";
import type { InventoryItem, Movement } from "../../modules/inventory/index.ts";
import type { OrderInput, OrderView } from "../../modules/orders/index.ts";
import { createViews, type OrderAnswer, type OrdersAccess, type OrderWithHistory } from "../../views/index.ts";
import { CSRF_COOKIE, UiSecurity, parseCookies } from "../../views/ui-security.ts";

/**
 * An in-memory stand-in for the orders service and inventory, for the pages' unit tests: all or
 * nothing over several lines, replays by key, cancels that give the stock back once, and holds
 * (`hold_s`) that are paid before their deadline or expire after it, judged by `now`, which the
 * pages read too. The bodies have the API's shape (an order, or a problem carrying
 * `order_status`); the real service is exercised by the suites under tests/browser/.
 */
export class FakeShop {
  readonly items = new Map<string, InventoryItem>();
  readonly orders = new Map<string, OrderWithHistory>();
  readonly keys = new Map<string, { fp: string; answer: OrderAnswer }>();
  cancels = 0;
  creates = 0;
  /** Holds sold by a payment (each at most once per order). */
  sales = 0;
  /** The shop's clock, in ms: holds are judged by it and the pages render against it. */
  now = Date.parse("2026-12-02T12:00:00.000Z");
  /** When set, `pay` records the payment but cannot reach inventory: 202, the order stays reserved. */
  inventoryAway = false;
  readonly clock: Clock = { now: () => this.now, sleep: systemClock.sleep };
  /** When set, the next service call throws this (a `code`d error, as the service's are). */
  failNext: (Error & { code?: string }) | null = null;
  private n = 0;

  /** The items' ledgers as the pages read them: an opening movement each; tests add more. */
  readonly ledger: Array<Movement & { item_id: string }> = [];

  constructor(stock: Record<string, number>) {
    for (const [id, q] of Object.entries(stock)) {
      this.items.set(id, { item_id: id, item_name: `Name of ${id}`, quantity: q, reserved_quantity: 0, low_stock_threshold: 0, updated_at: new Date(0).toISOString() });
      this.ledger.push({ id: this.ledger.length + 1, item_id: id, type: "create", quantity_change: q, reserved_change: 0, order_id: null, reason: null, created_at: new Date(0).toISOString() });
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
      const holdS = input.hold_s;
      const fp = `create:${JSON.stringify(lines)}:${holdS ?? ""}`;
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
      } else if (holdS !== undefined) {
        for (const l of lines) {
          const item = this.items.get(l.item_id)!;
          item.quantity -= l.quantity;
          item.reserved_quantity += l.quantity;
        }
        const deadline = new Date(this.now + holdS * 1000).toISOString();
        const order: OrderView = { ...base, status: "reserved", hold_expires_at: deadline, message: `Reserved until ${deadline}: pay before then to confirm the order.` };
        this.orders.set(id, { ...order, history: [{ status: "pending", reason: null, at }, { status: "reserved", reason: null, at }] });
        answer = { status: 201, body: JSON.stringify(order), replayed: false, orderId: id };
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
          if (o.status === "reserved") this.releaseHold(o);
          else for (const l of o.lines) this.items.get(l.item_id)!.quantity += l.quantity;
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
    pay: async (orderId: string, key: string) => {
      this.takeFailure();
      const o = this.orders.get(orderId);
      if (!o) throw Object.assign(new Error(`Order ${orderId} not found`), { code: "not_found" });
      const fp = `pay:${orderId}`;
      const replayed = this.replay(key, fp);
      if (replayed) return replayed;
      if (o.status === "reserved" && !o.paid_at) {
        o.paid_at = new Date(this.now).toISOString();
        o.message = "Payment received; confirming it with inventory.";
      }
      if (o.status === "reserved" && !this.inventoryAway) this.settle(o);
      const { history: _h, ...view } = o;
      let answer: OrderAnswer;
      if (o.status === "confirmed" && o.hold_expires_at) answer = { status: 200, body: JSON.stringify(view), replayed: false, orderId };
      else if (o.status === "reserved") answer = { status: 202, body: JSON.stringify(view), replayed: false, orderId };
      else {
        const { status, ...rest } = view;
        const expired = status === "expired";
        const body = {
          type: `https://valerix.dev/problems/${expired ? "hold-expired" : "order-not-payable"}`,
          title: expired ? "The hold expired before payment" : "This order holds no stock to pay for",
          status: 409,
          detail: expired ? `The hold on order ${orderId} expired at ${o.hold_expires_at}, before payment; its stock was given back.` : `Order ${orderId} is ${status}: there is no live hold to pay for.`,
          ...rest,
          order_status: status,
        };
        answer = { status: 409, body: JSON.stringify(body), replayed: false, orderId };
      }
      this.keys.set(key, { fp, answer });
      return answer;
    },
    list: async ({ status }) => [...this.orders.values()].reverse().filter((o) => !status || o.status === status),
    get: async (orderId: string) => {
      const o = this.orders.get(orderId);
      if (!o) throw Object.assign(new Error(`Order ${orderId} not found`), { code: "not_found" });
      return structuredClone(o);
    },
  };

  private releaseHold(o: OrderWithHistory) {
    for (const l of o.lines) {
      const item = this.items.get(l.item_id)!;
      item.quantity += l.quantity;
      item.reserved_quantity -= l.quantity;
    }
  }

  private move(o: OrderWithHistory, status: "confirmed" | "expired", reason: string, message: string) {
    const at = new Date(this.now).toISOString();
    o.history.push({ status, reason, at });
    Object.assign(o, { status, reason, message, updated_at: at });
  }

  /** Inventory's decision on a paid hold: sold if the payment came before the deadline, else expired. */
  private settle(o: OrderWithHistory) {
    const paidAt = Date.parse(o.paid_at ?? "");
    if (paidAt < Date.parse(o.hold_expires_at!)) {
      for (const l of o.lines) this.items.get(l.item_id)!.reserved_quantity -= l.quantity;
      this.sales++;
      this.move(o, "confirmed", "paid", "Order confirmed.");
    } else this.expire(o);
  }

  private expire(o: OrderWithHistory) {
    this.releaseHold(o);
    this.move(o, "expired", "hold_expired", "The hold expired before payment; its stock was given back.");
  }

  /** Inventory back: the retry queue settles every paid hold, judged by when it was paid. */
  settlePaid() {
    this.inventoryAway = false;
    for (const o of this.orders.values()) if (o.status === "reserved" && o.paid_at) this.settle(o);
  }

  /** The expiry sweeper: every unpaid hold past its deadline expires, its stock back. */
  sweep() {
    for (const o of this.orders.values()) if (o.status === "reserved" && !o.paid_at && Date.parse(o.hold_expires_at!) <= this.now) this.expire(o);
  }

  /** The pages over this shop, and a browser's session for them (cookie, CSRF token). */
  views() {
    const config = { adminToken: undefined, nodeEnv: "test", csrfSecret: "unit-test-secret" };
    const app = createViews({
      window: { snapshot: () => ({ averageMs: null, count: 0, status: "optimal" }), record: () => {} },
      orders: this.access,
      inventory: {
        list: async () => [...this.items.values()].map((i) => ({ ...i })),
        get: async (id: string) => this.items.get(id) ?? null,
        movements: async (id: string, page?: { limit?: number; before?: number }) => {
          if (!this.items.has(id)) return null;
          const older = this.ledger.filter((m) => m.item_id === id && (page?.before === undefined || m.id < page.before)).reverse();
          const limit = page?.limit ?? 50;
          const movements = older.slice(0, limit).map(({ item_id: _, ...m }) => m);
          return { item_id: id, movements, next_before: older.length > limit ? movements.at(-1)!.id : null };
        },
      },
      health: { ready: {}, deep: {}, role: "all" },
      config,
      clock: this.clock,
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
