import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { FAST_BACKEND, startUiSystem, type UiSystem } from "./support.ts";

/**
 * The pages over plain HTTP (no browser): headers, escaping, forgery protection, the admin
 * cookie, and the order form's idempotency. The browser suite covers what needs a real browser.
 */

interface Visit {
  cookie: string;
  token: string;
  html: string;
}

/** Loads a page as a browser would on its first visit: keeps the CSRF cookie and the form token. */
async function visit(sys: UiSystem, path = "/", cookie = ""): Promise<Visit> {
  const res = await fetch(sys.url + path, { headers: cookie ? { cookie } : {} });
  const html = await res.text();
  const set = res.headers.getSetCookie().map((c) => c.split(";")[0]!);
  const jar = [cookie, ...set].filter(Boolean).join("; ");
  const token = /name="csrf_token" value="([^"]+)"/.exec(html)?.[1] ?? "";
  return { cookie: jar, token, html };
}

function form(fields: Record<string, string>): URLSearchParams {
  return new URLSearchParams(fields);
}

async function post(sys: UiSystem, path: string, fields: Record<string, string>, headers: Record<string, string>): Promise<Response> {
  return fetch(sys.url + path, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: form(fields),
  });
}

const sameOrigin = (sys: UiSystem, v: Visit, extra: Record<string, string> = {}) => ({
  cookie: v.cookie,
  origin: sys.origin,
  "sec-fetch-site": "same-origin",
  ...extra,
});

async function stockOf(sys: UiSystem, item: string): Promise<number> {
  return (await sys.inventory.port.get(item))!.quantity;
}

async function ordersFor(sys: UiSystem, item: string): Promise<number> {
  return (await sys.orders.service.list({ limit: 100 })).filter((o) => o.lines.some((l) => l.item_id === item)).length;
}

describe("pages over HTTP", () => {
  let sys: UiSystem;
  beforeAll(async () => {
    sys = await startUiSystem({ backend: FAST_BACKEND });
  }, 120_000);
  afterAll(async () => {
    await sys?.stop();
  });

  test("every page is HTML under the strict CSP and carries the health banner", async () => {
    const order = await sys.orders.service.create("http-page-check", { item_id: "ps5", quantity: 1 }, null);
    for (const path of ["/", "/orders", "/orders?status=confirmed", `/orders/${order.orderId}`, "/status", "/chaos", "/webhooks"]) {
      const res = await fetch(sys.url + path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
      const body = await res.text();
      expect(body).toMatch(/<section id="health-banner" class="banner banner--optimal" data-health-status="optimal"/);
      // No inline script or style of any kind: the CSP would block it.
      expect(body).not.toMatch(/<script(?![^>]*\bsrc=)/);
      expect(body).not.toMatch(/\sstyle=|<style/);
      expect(body).not.toMatch(/\son[a-z]+=/);
    }
  });

  test("assets are served by the server itself", async () => {
    const page = await (await fetch(sys.url + "/")).text();
    const srcs = [...page.matchAll(/(?:src|href)="(\/ui\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    // The stylesheet, the icon, htmx and the countdown for a hold's answer.
    expect(srcs.length).toBe(4);
    for (const src of srcs) {
      const res = await fetch(sys.url + src);
      expect(res.status, src).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(100);
    }
    expect(page).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
  });

  test("the banner follows the order latency window", async () => {
    const fragment = async () => (await fetch(sys.url + "/ui/fragments/banner")).text();
    expect(await fragment()).toContain('data-health-status="optimal"');
    for (let i = 0; i < 3; i++) sys.window.record(1500);
    expect(await fragment()).toContain('data-health-status="critical"');
    for (let i = 0; i < 30; i++) sys.window.record(1);
    expect(await fragment()).toContain('data-health-status="optimal"');
  });

  test("an item name with markup is shown as text on every page that names it", async () => {
    const name = `<script>alert("pwned")</script><img src=x onerror=alert(1)>`;
    const created = await fetch(sys.url + "/api/admin/inventory", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ item_id: "xss-item", item_name: name, quantity: 5 }),
    });
    expect(created.status).toBe(201);
    const page = await (await fetch(sys.url + "/")).text();
    expect(page).toContain("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;");
    expect(page).not.toContain("<script>alert");
    expect(page).not.toContain("<img src=x");
  });

  test("an order from the page: 201 confirmed, stock down once, and a resubmit is replayed, not repeated", async () => {
    const v = await visit(sys);
    const key = /id="order-key" value="([^"]+)"/.exec(v.html)![1]!;
    const before = await stockOf(sys, "ps5");
    const fields = { item_id: "ps5", quantity: "2", idempotency_key: key, csrf_token: v.token };
    const first = await post(sys, "/ui/orders", fields, sameOrigin(sys, v, { "hx-request": "true" }));
    expect(first.status).toBe(201);
    const html1 = await first.text();
    expect(html1).toContain('data-http-status="201" data-order-state="confirmed"');
    // The answer brings a fresh key for the next order and the new stock figure.
    const fresh = /id="order-key" value="([^"]+)" hx-swap-oob="true"/.exec(html1)![1]!;
    expect(fresh).not.toBe(key);
    expect(html1).toContain(`id="stock-ps5" hx-swap-oob="true">${(before - 2).toLocaleString("en-US")}<`);

    const again = await post(sys, "/ui/orders", fields, sameOrigin(sys, v, { "hx-request": "true" }));
    expect(again.status).toBe(201);
    const html2 = await again.text();
    expect(html2).toContain("replayed");
    expect(/\/orders\/([0-9a-f-]{36})/.exec(html2)![1]).toBe(/\/orders\/([0-9a-f-]{36})/.exec(html1)![1]!);
    expect(await stockOf(sys, "ps5")).toBe(before - 2);
  });

  test("not enough stock: 422 with the reason; an unknown quantity: 400; neither orders anything", async () => {
    const v = await visit(sys);
    const before = await ordersFor(sys, "xbox-series-x");
    const tooMany = await post(
      sys,
      "/ui/orders",
      { item_id: "xbox-series-x", quantity: "10000", idempotency_key: "ui-too-many", csrf_token: v.token },
      sameOrigin(sys, v, { "hx-request": "true" }),
    );
    expect(tooMany.status).toBe(422);
    const body = await tooMany.text();
    expect(body).toContain('data-order-state="rejected"');
    expect(body).toContain("not enough stock");
    const bad = await post(
      sys,
      "/ui/orders",
      { item_id: "xbox-series-x", quantity: "1.5", idempotency_key: "ui-bad-qty", csrf_token: v.token },
      sameOrigin(sys, v, { "hx-request": "true" }),
    );
    expect(bad.status).toBe(400);
    // The rejected order exists (rejected), the malformed one never reached the service.
    expect(await ordersFor(sys, "xbox-series-x")).toBe(before + 1);
  });

  test("a plain form post (no JavaScript) gets the whole page back with the result in place", async () => {
    const v = await visit(sys);
    const key = /id="order-key" value="([^"]+)"/.exec(v.html)![1]!;
    const res = await post(sys, "/ui/orders", { item_id: "switch-2", quantity: "1", idempotency_key: key, csrf_token: v.token }, sameOrigin(sys, v));
    expect(res.status).toBe(201);
    const page = await res.text();
    expect(page).toStartWith("<!doctype html>");
    expect(page).toContain('data-http-status="201"');
    expect(page).toContain('data-health-status="');
  });

  /** The products form's fields as a browser sends them: every card's item and quantity (zero unless chosen). */
  const orderFields = (v: Visit, quantities: Record<string, number>, key = /id="order-key" value="([^"]+)"/.exec(v.html)![1]!) => {
    const fields: Array<[string, string]> = [["csrf_token", v.token], ["idempotency_key", key]];
    for (const m of v.html.matchAll(/name="item_id" value="([^"]+)"/g)) fields.push(["item_id", m[1]!], ["quantity", String(quantities[m[1]!] ?? 0)]);
    return fields;
  };
  const postPairs = (path: string, fields: Array<[string, string]>, headers: Record<string, string>) =>
    fetch(sys.url + path, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded", ...headers }, body: new URLSearchParams(fields) });
  const orderIdIn = (html: string) => /\/orders\/([0-9a-f-]{36})/.exec(html)![1]!;

  test("a 3-line order from the products form, as a plain post: one order, every line deducted once; a resubmit is replayed", async () => {
    const v = await visit(sys);
    const chosen = { "switch-2": 2, dualsense: 3, "quest-3": 1 };
    const before = Object.fromEntries(await Promise.all(Object.keys(chosen).map(async (i) => [i, await stockOf(sys, i)] as const)));
    const fields = orderFields(v, chosen);
    const res = await postPairs("/ui/orders", fields, sameOrigin(sys, v));
    expect(res.status).toBe(201);
    const page = await res.text();
    expect(page).toStartWith("<!doctype html>");
    expect(page).toContain('data-http-status="201" data-order-state="confirmed"');
    expect(page).toContain("3 lines, 6 units");
    const order = await sys.orders.service.get(orderIdIn(page));
    // Lines in the catalog's order (by item id), zero rows left out.
    expect(order.lines).toEqual([
      { item_id: "dualsense", quantity: 3 },
      { item_id: "quest-3", quantity: 1 },
      { item_id: "switch-2", quantity: 2 },
    ]);
    for (const [item, q] of Object.entries(chosen)) expect(await stockOf(sys, item)).toBe(before[item]! - q);

    const again = await postPairs("/ui/orders", fields, sameOrigin(sys, v));
    expect(again.status).toBe(201);
    const page2 = await again.text();
    expect(page2).toContain("replayed");
    expect(orderIdIn(page2)).toBe(order.order_id);
    for (const [item, q] of Object.entries(chosen)) expect(await stockOf(sys, item)).toBe(before[item]! - q);

    // Nothing chosen is a 400 that says so, and orders nothing.
    const none = await postPairs("/ui/orders", orderFields(v, {}, `ui-none-${crypto.randomUUID()}`), sameOrigin(sys, v, { "hx-request": "true" }));
    expect(none.status).toBe(400);
    expect(await none.text()).toContain("Nothing to order");
  });

  test("an item's page shows its ledger from the real inventory: an order's deduction links to the order, and the stock is the sum", async () => {
    const orderId = JSON.parse((await sys.orders.service.create(`ui-ledger-${Date.now()}`, { lines: [{ item_id: "ps5", quantity: 2 }] }, null)).body).order_id as string;
    const page = await visit(sys, "/items/ps5");
    expect(page.html).toContain(`<dt>Available</dt><dd>${(await stockOf(sys, "ps5")).toLocaleString("en-US")}</dd>`);
    expect(page.html).toMatch(new RegExp(`data-type="deduct">[\\s\\S]*?−2[\\s\\S]*?href="/orders/${orderId}"`));
    const movements = (await sys.inventory.port.movements("ps5", { limit: 200 }))!;
    expect(movements.movements.reduce((n, m) => n + m.quantity_change, 0)).toBe(await stockOf(sys, "ps5"));
    expect((await fetch(sys.url + "/items/no-such-item")).status).toBe(404);
  });

  test("a 3-line order with one short line: 422 naming that line, and no stock moves", async () => {
    const v = await visit(sys);
    const short = (await stockOf(sys, "steam-deck")) + 1;
    const chosen = { ps5: 1, "steam-deck": short, dualsense: 1 };
    const before = Object.fromEntries(await Promise.all(Object.keys(chosen).map(async (i) => [i, await stockOf(sys, i)] as const)));
    const res = await postPairs("/ui/orders", orderFields(v, chosen), sameOrigin(sys, v, { "hx-request": "true" }));
    expect(res.status).toBe(422);
    const html = await res.text();
    expect(html).toContain('data-order-state="rejected"');
    expect(html).toMatch(/<li class="result__line" data-item-id="steam-deck" data-line-reason="insufficient_stock">[^<]*<code>steam-deck<\/code> Steam Deck OLED × [\d,]+: <strong>not enough stock<\/strong>/);
    expect(html).not.toContain('data-item-id="ps5" data-line-reason');
    for (const item of Object.keys(chosen)) expect(await stockOf(sys, item)).toBe(before[item]!);
    // The order page marks the same line.
    const detail = await (await fetch(`${sys.url}/orders/${orderIdIn(html)}`)).text();
    expect(detail).toContain('data-item-id="steam-deck" data-line-reason="insufficient_stock"');
    expect(detail).not.toContain('id="cancel-key"');
  });

  test("cancel from the order page: the stock comes back once, the order is cancelled, the history says who and why; a double submit is one cancel", async () => {
    const lines = [
      { item_id: "ps5", quantity: 2 },
      { item_id: "switch-2", quantity: 1 },
      { item_id: "quest-3", quantity: 3 },
    ];
    const before = await Promise.all(lines.map((l) => stockOf(sys, l.item_id)));
    const created = await sys.orders.service.create(`http-cancel-${crypto.randomUUID()}`, { lines }, null);
    expect(created.status).toBe(201);
    const v = await visit(sys, `/orders/${created.orderId}`);
    const key = /id="cancel-key" value="([^"]+)"/.exec(v.html)![1]!;
    const fields: Array<[string, string]> = [["csrf_token", v.token], ["idempotency_key", key], ["reason", "Ordered the wrong colour"]];
    // The same form twice at once: a double click, or a resubmit while the first is running.
    const [a, b] = await Promise.all([
      postPairs(`/ui/orders/${created.orderId}/cancel`, fields, sameOrigin(sys, v, { "hx-request": "true" })),
      postPairs(`/ui/orders/${created.orderId}/cancel`, fields, sameOrigin(sys, v)),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const [htmlA, htmlB] = [await a.text(), await b.text()];
    for (const html of [htmlA, htmlB]) expect(html).toContain('data-http-status="200" data-order-state="cancelled"');
    expect([htmlA, htmlB].filter((h) => h.includes("replayed: same key"))).toHaveLength(1);
    expect(htmlB).toStartWith("<!doctype html>");
    expect(htmlB).not.toContain('id="cancel-key"');

    expect(await Promise.all(lines.map((l) => stockOf(sys, l.item_id)))).toEqual(before);
    const order = await sys.orders.service.get(created.orderId!);
    expect(order.status).toBe("cancelled");
    expect(order.history.filter((h) => h.status === "cancelling")).toEqual([expect.objectContaining({ actor: "web", note: "Ordered the wrong colour" })]);
    expect(order.history.filter((h) => h.status === "cancelled")).toHaveLength(1);
    expect(htmlB).toContain('<span class="timeline__actor">by web</span>');
    expect(htmlB).toContain('<q class="timeline__note">Ordered the wrong colour</q>');

    // A later cancel under a new key answers cancelled again and gives nothing back twice.
    const later = await postPairs(`/ui/orders/${created.orderId}/cancel`, [["csrf_token", v.token], ["idempotency_key", `ui-cancel-${crypto.randomUUID()}`]], sameOrigin(sys, v, { "hx-request": "true" }));
    expect(later.status).toBe(200);
    expect(await Promise.all(lines.map((l) => stockOf(sys, l.item_id)))).toEqual(before);

    // From another origin, the same form is refused.
    const other = await sys.orders.service.create(`http-cancel-${crypto.randomUUID()}`, { lines: [{ item_id: "ps5", quantity: 1 }] }, null);
    const forged = await postPairs(`/ui/orders/${other.orderId}/cancel`, [["csrf_token", v.token], ["idempotency_key", `ui-cancel-${crypto.randomUUID()}`]], { cookie: v.cookie, origin: "http://evil.example" });
    expect(forged.status).toBe(403);
    expect((await sys.orders.service.get(other.orderId!)).status).toBe("confirmed");
  });

  const itemOf = async (item: string) => (await sys.inventory.port.get(item))!;

  test("a hold from the products page, with htmx and as a plain post: reserved with its deadline; the stock is held, not sold", async () => {
    const v = await visit(sys);
    expect(v.html).toContain('<input type="radio" name="mode" value="buy" id="mode-buy" checked>');
    const before = await itemOf("ps5");
    const started = Date.now();
    const fields = [...orderFields(v, { ps5: 2 }), ["mode", "hold"], ["hold_minutes", "10"]] as Array<[string, string]>;
    const res = await postPairs("/ui/orders", fields, sameOrigin(sys, v, { "hx-request": "true" }));
    expect(res.status).toBe(201);
    const html = await res.text();
    expect(html).toContain('data-http-status="201" data-order-state="reserved"');
    expect(html).toMatch(/<time class="hold__left" data-countdown datetime="[^"]+" data-server-now="\d+">(10 min 0 s|9 min \d+ s)<\/time> left, until/);
    const order = await sys.orders.service.get(orderIdIn(html));
    expect(order.status).toBe("reserved");
    const deadline = Date.parse(order.hold_expires_at!);
    expect(deadline).toBeGreaterThanOrEqual(started + 599_000);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 600_000);
    expect(html).toContain(`datetime="${order.hold_expires_at}"`);
    expect(await itemOf("ps5")).toMatchObject({ quantity: before.quantity - 2, reserved_quantity: before.reserved_quantity + 2 });

    // Without JavaScript: the whole page, the answer in place, the choice kept.
    const plain = await postPairs("/ui/orders", [...orderFields(v, { "switch-2": 1 }, `ui-${crypto.randomUUID()}`), ["mode", "hold"], ["hold_minutes", "1"]], sameOrigin(sys, v));
    expect(plain.status).toBe(201);
    const page = await plain.text();
    expect(page).toStartWith("<!doctype html>");
    expect(page).toMatch(/<div id="order-result"[^>]*>\s*<div class="result result--201" data-http-status="201" data-order-state="reserved">/);
    expect(page).toContain('<input type="radio" name="mode" value="hold" id="mode-hold" checked>');
    expect((await sys.orders.service.get(orderIdIn(page))).status).toBe("reserved");

    // The order page shows the deadline and offers Pay and Cancel.
    const detail = await (await fetch(`${sys.url}/orders/${order.order_id}`)).text();
    expect(detail).toContain('<p class="hold-banner" role="note">');
    expect(detail).toContain('id="pay-key"');
    expect(detail).toContain('id="cancel-key"');
    expect(detail).toMatch(/<script src="\/ui\/assets\/countdown\.js\?v=[^"]+" defer><\/script>/);
    const script = await fetch(sys.url + /src="(\/ui\/assets\/countdown\.js[^"]*)"/.exec(detail)![1]!);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    // The reserved filter lists it with its deadline.
    const list = await (await fetch(`${sys.url}/orders?status=reserved`)).text();
    expect(list).toMatch(new RegExp(`<tr id="order-${order.order_id}" data-state="reserved"[\\s\\S]*?data-countdown datetime="${order.hold_expires_at}"`));
  });

  test("pay from the order page: confirmed, the reserved stock falls once; a double-submitted pay is one payment", async () => {
    const lines = [
      { item_id: "dualsense", quantity: 2 },
      { item_id: "quest-3", quantity: 1 },
    ];
    const before = await Promise.all(lines.map((l) => itemOf(l.item_id)));
    const created = await sys.orders.service.create(`http-hold-${crypto.randomUUID()}`, { lines, hold_s: 600 }, null);
    expect(created.status).toBe(201);
    const held = await Promise.all(lines.map((l) => itemOf(l.item_id)));
    held.forEach((item, i) => expect(item).toMatchObject({ quantity: before[i]!.quantity - lines[i]!.quantity, reserved_quantity: before[i]!.reserved_quantity + lines[i]!.quantity }));

    const v = await visit(sys, `/orders/${created.orderId}`);
    const key = /id="pay-key" value="([^"]+)"/.exec(v.html)![1]!;
    const fields: Array<[string, string]> = [["csrf_token", v.token], ["idempotency_key", key]];
    // The same form twice at once: a double click, or a resubmit while the first is running.
    const [a, b] = await Promise.all([
      postPairs(`/ui/orders/${created.orderId}/pay`, fields, sameOrigin(sys, v, { "hx-request": "true" })),
      postPairs(`/ui/orders/${created.orderId}/pay`, fields, sameOrigin(sys, v)),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const [htmlA, htmlB] = [await a.text(), await b.text()];
    for (const html of [htmlA, htmlB]) expect(html).toContain('data-http-status="200" data-order-state="confirmed"');
    expect([htmlA, htmlB].filter((h) => h.includes("replayed: same key"))).toHaveLength(1);
    expect(htmlB).toStartWith("<!doctype html>");
    expect(htmlB).not.toContain('id="pay-key"');
    expect(htmlB).toContain('data-state="confirmed"');

    // Sold once: the reservation is gone and the available stock stays where the hold put it.
    const after = await Promise.all(lines.map((l) => itemOf(l.item_id)));
    after.forEach((item, i) => expect(item).toMatchObject({ quantity: held[i]!.quantity, reserved_quantity: before[i]!.reserved_quantity }));
    const order = await sys.orders.service.get(created.orderId!);
    expect(order.status).toBe("confirmed");
    expect(order.paid_at).toBeDefined();
    expect(order.history.filter((h) => h.status === "confirmed")).toHaveLength(1);

    // Paying again under a new key changes nothing; an order placed without a hold is not payable.
    const later = await postPairs(`/ui/orders/${created.orderId}/pay`, [["csrf_token", v.token], ["idempotency_key", `ui-pay-${crypto.randomUUID()}`]], sameOrigin(sys, v, { "hx-request": "true" }));
    expect(later.status).toBe(200);
    expect(await Promise.all(lines.map((l) => itemOf(l.item_id)))).toEqual(after);
    const sold = await sys.orders.service.create(`http-sold-${crypto.randomUUID()}`, { lines: [{ item_id: "ps5", quantity: 1 }] }, null);
    const notPayable = await postPairs(`/ui/orders/${sold.orderId}/pay`, [["csrf_token", v.token], ["idempotency_key", `ui-pay-${crypto.randomUUID()}`]], sameOrigin(sys, v, { "hx-request": "true" }));
    expect(notPayable.status).toBe(409);
    expect(await notPayable.text()).toContain("placed without hold_s");

    // From another origin, the pay form is refused.
    const other = await sys.orders.service.create(`http-hold-${crypto.randomUUID()}`, { lines: [{ item_id: "ps5", quantity: 1 }], hold_s: 600 }, null);
    const forged = await postPairs(`/ui/orders/${other.orderId}/pay`, [["csrf_token", v.token], ["idempotency_key", `ui-pay-${crypto.randomUUID()}`]], { cookie: v.cookie, origin: "http://evil.example" });
    expect(forged.status).toBe(403);
    expect((await sys.orders.service.get(other.orderId!)).status).toBe("reserved");
  });

  describe("forgery protection on state-changing routes", () => {
    const attempt = async (headers: (v: Visit) => Record<string, string>, token: (v: Visit) => string) => {
      const v = await visit(sys);
      const key = `ui-csrf-${crypto.randomUUID()}`;
      const before = await ordersFor(sys, "steam-deck");
      const res = await post(sys, "/ui/orders", { item_id: "steam-deck", quantity: "1", idempotency_key: key, csrf_token: token(v) }, { "hx-request": "true", ...headers(v) });
      return { status: res.status, body: await res.text(), created: (await ordersFor(sys, "steam-deck")) - before };
    };

    test("a same-origin post with the session's token goes through", async () => {
      const r = await attempt((v) => sameOrigin(sys, v), (v) => v.token);
      expect(r.status).toBe(201);
      expect(r.created).toBe(1);
    });

    test("another site's post is refused even with a valid token and cookie", async () => {
      for (const headers of [
        (v: Visit) => ({ cookie: v.cookie, origin: "http://evil.example", "sec-fetch-site": "cross-site" }),
        // Another port on the same host: same site (SameSite cookies flow), different origin.
        (v: Visit) => ({ cookie: v.cookie, origin: "http://127.0.0.1:1", "sec-fetch-site": "same-site" }),
        (v: Visit) => ({ cookie: v.cookie, origin: "http://evil.example" }),
        (v: Visit) => ({ cookie: v.cookie }),
      ]) {
        const r = await attempt(headers, (v) => v.token);
        expect(r.status).toBe(403);
        expect(r.body).toContain("Refused");
        expect(r.created).toBe(0);
      }
    });

    test("a same-origin post without the right token is refused", async () => {
      for (const token of [(_: Visit) => "", (v: Visit) => v.token.slice(1) + "x", (_: Visit) => "not-a-token"]) {
        const r = await attempt((v) => sameOrigin(sys, v), token);
        expect(r.status).toBe(403);
        expect(r.created).toBe(0);
      }
      // A token from one browser does not work with another browser's cookie.
      const other = await visit(sys);
      const r = await attempt((v) => sameOrigin(sys, v), () => other.token);
      expect(r.status).toBe(403);
      expect(r.created).toBe(0);
    });

    test("chaos actions are guarded the same way", async () => {
      const v = await visit(sys, "/chaos");
      const cross = await post(sys, "/ui/chaos/preset", { preset: "extreme", csrf_token: v.token }, { cookie: v.cookie, origin: "http://evil.example", "hx-request": "true" });
      expect(cross.status).toBe(403);
      const noToken = await post(sys, "/ui/chaos/preset", { preset: "extreme" }, sameOrigin(sys, v, { "hx-request": "true" }));
      expect(noToken.status).toBe(403);
      expect(await sys.chaos.control.current()).toBeNull();
      const ok = await post(sys, "/ui/chaos/preset", { preset: "mild", csrf_token: v.token }, sameOrigin(sys, v, { "hx-request": "true" }));
      expect(ok.status).toBe(200);
      expect((await sys.chaos.control.current())?.label).toBe("mild");
      const off = await post(sys, "/ui/chaos/disable", { csrf_token: v.token }, sameOrigin(sys, v, { "hx-request": "true" }));
      expect(off.status).toBe(200);
      expect(await sys.chaos.control.current()).toBeNull();
    });
  });

  test("the custom chaos form is checked before the injector sees it", async () => {
    const v = await visit(sys, "/chaos");
    const base = { csrf_token: v.token, latency_min_ms: "0", latency_max_ms: "0", latency_pct: "0", crash_pct: "0", crash_mode: "500", partial_pct: "0", pattern: "random", seed: "", nth: "3", duration_s: "60" };
    const none = await post(sys, "/ui/chaos/custom", base, sameOrigin(sys, v, { "hx-request": "true" }));
    expect(none.status).toBe(400);
    expect(await none.text()).toContain("at least one fault");
    const inverted = await post(sys, "/ui/chaos/custom", { ...base, latency_pct: "50", latency_min_ms: "500", latency_max_ms: "100" }, sameOrigin(sys, v, { "hx-request": "true" }));
    expect(inverted.status).toBe(400);
    const ok = await post(
      sys,
      "/ui/chaos/custom",
      { ...base, latency_pct: "25", latency_min_ms: "10", latency_max_ms: "20", crash_pct: "5", crash_mode: "reset", pattern: "every-nth", nth: "4" },
      sameOrigin(sys, v, { "hx-request": "true" }),
    );
    expect(ok.status).toBe(200);
    const active = await sys.chaos.control.current();
    expect(active?.label).toBe("custom");
    expect(active?.config).toEqual({
      latency: { minMs: 10, maxMs: 20, probability: 0.25 },
      crash: { probability: 0.05, mode: "reset" },
      pattern: { kind: "every-nth", n: 4 },
      durationS: 60,
    });
    await sys.chaos.control.disable();
  });

  test("webhooks page: an order's event reaches a local receiver, shows as an attempt, and is redelivered once from the page", async () => {
    const received: string[] = [];
    const rx = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async (req) => {
        received.push(req.headers.get("webhook-id") ?? "");
        await req.text();
        return new Response(null, { status: 204 });
      },
    });
    try {
      const created = await fetch(sys.url + "/api/admin/webhooks", {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": `page-wh-${crypto.randomUUID()}` },
        body: JSON.stringify({ url: `http://127.0.0.1:${rx.port}/hooks`, events: ["order.confirmed"], description: "<b>page receiver</b>" }),
      });
      expect(created.status).toBe(201);
      const sub = (await created.json()) as { id: string; secret: string };
      await sys.orders.service.create(`page-wh-order-${crypto.randomUUID()}`, { item_id: "dualsense", quantity: 1 }, null);

      // The relay delivers in the background; the page shows the attempt once it is recorded.
      let v = await visit(sys, "/webhooks");
      for (let i = 0; i < 100 && !v.html.includes('data-outcome="ok"'); i++) {
        await Bun.sleep(100);
        v = await visit(sys, "/webhooks", v.cookie);
      }
      expect(v.html).toContain(`data-webhook-id="${sub.id}"`);
      expect(v.html).toContain("&lt;b&gt;page receiver&lt;/b&gt;");
      expect(v.html).not.toContain(sub.secret);
      expect(v.html).not.toContain("whsec_");
      const eventId = /<tr class="attempt" data-event-id="([^"]+)" data-outcome="ok">/.exec(v.html)![1]!;
      expect(received).toEqual([eventId]);
      const key = new RegExp(`name="event_id" value="${eventId}">\\s*<input type="hidden" name="idempotency_key" value="([^"]+)"`).exec(v.html)![1]!;

      const fields = { csrf_token: v.token, event_id: eventId, idempotency_key: key };
      const cross = await post(sys, "/ui/webhooks/redeliver", fields, { cookie: v.cookie, origin: "http://evil.example" });
      expect(cross.status).toBe(403);
      const first = await post(sys, "/ui/webhooks/redeliver", fields, sameOrigin(sys, v));
      expect(first.status).toBe(200);
      expect(await first.text()).toContain("will be sent again to 1 endpoint");
      const second = await post(sys, "/ui/webhooks/redeliver", fields, sameOrigin(sys, v, { "hx-request": "true" }));
      expect(second.status).toBe(200);
      expect(await second.text()).toContain("already redelivered");
      for (let i = 0; i < 100 && received.length < 2; i++) await Bun.sleep(100);
      await Bun.sleep(500);
      expect(received).toEqual([eventId, eventId]);
    } finally {
      rx.stop(true);
    }
  });
});

describe("admin sign-in from the pages", () => {
  const TOKEN = "page-admin-token-1";
  let sys: UiSystem;
  beforeAll(async () => {
    sys = await startUiSystem({ backend: FAST_BACKEND, adminToken: TOKEN, nodeEnv: "production" });
  }, 120_000);
  afterAll(async () => {
    await sys?.stop();
  });

  test("the chaos page asks for the token once, then keeps it in an HttpOnly, SameSite=Strict cookie", async () => {
    const v = await visit(sys, "/chaos");
    expect(v.html).toContain('action="/ui/login"');
    expect(v.html).not.toContain('action="/ui/chaos/preset"');

    const wrong = await post(sys, "/ui/login", { token: "nope", csrf_token: v.token, next: "/chaos" }, sameOrigin(sys, v));
    expect(wrong.status).toBe(401);
    expect(wrong.headers.getSetCookie().some((c) => c.startsWith("valerix_admin="))).toBe(false);

    const forged = await post(sys, "/ui/login", { token: TOKEN, csrf_token: v.token, next: "/chaos" }, { cookie: v.cookie, origin: "http://evil.example" });
    expect(forged.status).toBe(403);

    const ok = await post(sys, "/ui/login", { token: TOKEN, csrf_token: v.token, next: "/chaos" }, sameOrigin(sys, v));
    expect(ok.status).toBe(303);
    expect(ok.headers.get("location")).toBe("/chaos");
    const admin = ok.headers.getSetCookie().find((c) => c.startsWith("valerix_admin="))!;
    expect(admin).toContain("HttpOnly");
    expect(admin).toContain("SameSite=Strict");
    expect(admin).toMatch(/Max-Age=\d+/);
    const jar = `${v.cookie}; ${admin.split(";")[0]}`;

    const signedIn = await visit(sys, "/chaos", jar);
    expect(signedIn.html).toContain('action="/ui/chaos/preset"');
    expect(signedIn.html).toContain("Sign out");

    // The API's own admin guard accepts the same cookie.
    const api = await fetch(sys.url + "/api/admin/inventory", {
      method: "POST",
      headers: { "content-type": "application/json", cookie: jar },
      body: JSON.stringify({ item_id: "via-cookie", item_name: "Made with the page cookie", quantity: 1 }),
    });
    expect(api.status).toBe(201);

    const action = await post(sys, "/ui/chaos/preset", { preset: "moderate", csrf_token: signedIn.token }, sameOrigin(sys, signedIn, { "hx-request": "true" }));
    expect(action.status).toBe(200);
    expect((await sys.chaos.control.current())?.label).toBe("moderate");
    await sys.chaos.control.disable();

    const out = await post(sys, "/ui/logout", { csrf_token: signedIn.token }, sameOrigin(sys, signedIn));
    expect(out.status).toBe(303);
    expect(out.headers.getSetCookie().find((c) => c.startsWith("valerix_admin="))).toContain("Max-Age=0");
  });

  test("without the cookie, chaos actions and the chaos panel are refused", async () => {
    const v = await visit(sys, "/chaos");
    const res = await post(sys, "/ui/chaos/preset", { preset: "extreme", csrf_token: v.token }, sameOrigin(sys, v, { "hx-request": "true" }));
    expect(res.status).toBe(401);
    expect(await sys.chaos.control.current()).toBeNull();
    expect((await fetch(sys.url + "/ui/fragments/chaos")).status).toBe(401);
  });

  test("after sign-in the redirect stays on this site", async () => {
    const v = await visit(sys, "/chaos");
    for (const next of ["//evil.example/x", "/\\evil.example", "https://evil.example", "javascript:alert(1)"]) {
      const res = await post(sys, "/ui/login", { token: TOKEN, csrf_token: v.token, next }, sameOrigin(sys, v));
      expect(res.status).toBe(303);
      expect(res.headers.get("location")).toBe("/chaos");
    }
  });
});

describe("production without an admin token", () => {
  let sys: UiSystem;
  beforeAll(async () => {
    sys = await startUiSystem({ backend: FAST_BACKEND, nodeEnv: "production" });
  }, 120_000);
  afterAll(async () => {
    await sys?.stop();
  });

  test("the chaos controls are closed, like the admin API", async () => {
    const v = await visit(sys, "/chaos");
    expect(v.html).toContain("Chaos controls are closed");
    expect(v.html).not.toContain('action="/ui/login"');
    const res = await post(sys, "/ui/chaos/preset", { preset: "mild", csrf_token: v.token }, sameOrigin(sys, v, { "hx-request": "true" }));
    expect(res.status).toBe(403);
    expect(await sys.chaos.control.current()).toBeNull();
  });
});
