import { describe, expect, test } from "bun:test";
import { ORDER_STATUSES } from "../modules/orders/index.ts";
import { DatabaseUnavailableError } from "../platform/db-errors.ts";
import { FakeShop } from "../tests/support/view-fakes.ts";

const STOCK = { ps5: 10, dualsense: 50, "quest-3": 5 };
const LINES = [
  { item_id: "ps5", quantity: 2 },
  { item_id: "dualsense", quantity: 3 },
  { item_id: "quest-3", quantity: 1 },
];

async function shopWithOrder(lines = LINES) {
  const shop = new FakeShop(STOCK);
  const res = await shop.access.create(`seed-${crypto.randomUUID()}`, { lines }, null);
  return { shop, id: res.orderId!, v: shop.views() };
}

const cancelKeyOf = (html: string) => /id="cancel-key" value="([^"]+)"/.exec(html)?.[1];

describe("order page", () => {
  test("shows every line with its item, name and quantity, and a cancel form with its own key", async () => {
    const { id, v } = await shopWithOrder();
    const { status, html } = await v.get(`/orders/${id}`);
    expect(status).toBe(200);
    for (const l of LINES) {
      expect(html).toMatch(new RegExp(`<tr class="line" data-item-id="${l.item_id}">\\s*<td><code>${l.item_id}</code></td>\\s*<td>Name of ${l.item_id}</td>\\s*<td class="num">${l.quantity}</td>`));
    }
    expect(html).toContain(`action="/ui/orders/${id}/cancel" hx-post="/ui/orders/${id}/cancel"`);
    expect(cancelKeyOf(html)).toMatch(/^ui-cancel-[0-9a-f-]{36}$/);
    expect(html).toContain('name="reason" type="text" maxlength="200"');
    // Each rendering is a new form with a new key.
    expect(cancelKeyOf((await v.get(`/orders/${id}`)).html)).not.toBe(cancelKeyOf(html));
  });

  test("a rejected order names the failing lines and why, and offers no cancel", async () => {
    const shop = new FakeShop(STOCK);
    const res = await shop.access.create("seed-rejected", { lines: [{ item_id: "ps5", quantity: 1 }, { item_id: "quest-3", quantity: 9 }, { item_id: "nope", quantity: 1 }] }, null);
    const { html } = await shop.views().get(`/orders/${res.orderId}`);
    expect(html).toContain('data-item-id="quest-3" data-line-reason="insufficient_stock"');
    expect(html).toContain('data-item-id="nope" data-line-reason="unknown_item"');
    expect(html).toContain("not enough stock");
    expect(html).toContain("no such item");
    expect(html).toMatch(/<tr class="line" data-item-id="ps5">/);
    expect(cancelKeyOf(html)).toBeUndefined();
    expect(html).toContain('<section id="order-actions" class="order-actions" aria-label="Actions"></section>');
  });

  test("cancel with htmx: the stock comes back, the form goes, the detail shows cancelled with who and why", async () => {
    const { shop, id, v } = await shopWithOrder();
    const key = cancelKeyOf((await v.get(`/orders/${id}`)).html)!;
    const fields: Array<[string, string]> = [["csrf_token", v.token], ["idempotency_key", key], ["reason", "  changed my mind  "]];
    const res = await v.post(`/ui/orders/${id}/cancel`, fields, { "hx-request": "true" });
    expect(res.status).toBe(200);
    expect(res.html).toContain('data-http-status="200" data-order-state="cancelled"');
    expect(res.html).toContain("Order cancelled; its stock was given back.");
    expect(res.html).toContain('<section id="order-actions" class="order-actions" aria-label="Actions" hx-swap-oob="true"></section>');
    expect(res.html).toContain('id="order-detail" class="card order-detail" data-state="cancelled" hx-swap-oob="outerMorph"');
    expect(res.html).toContain('<span class="timeline__actor">by web</span>');
    expect(res.html).toContain('<q class="timeline__note">changed my mind</q>');
    expect(shop.items.get("ps5")!.quantity).toBe(10);

    // The same form again (a double click, a resubmit) is the same cancel, replayed.
    const again = await v.post(`/ui/orders/${id}/cancel`, fields, { "hx-request": "true" });
    expect(again.status).toBe(200);
    expect(again.html).toContain("replayed");
    expect(shop.cancels).toBe(1);
    expect(shop.items.get("dualsense")!.quantity).toBe(50);
  });

  test("cancel without JavaScript: the whole order page comes back with the answer and no form", async () => {
    const { shop, id, v } = await shopWithOrder();
    const key = cancelKeyOf((await v.get(`/orders/${id}`)).html)!;
    const res = await v.post(`/ui/orders/${id}/cancel`, [["csrf_token", v.token], ["idempotency_key", key], ["reason", ""]]);
    expect(res.status).toBe(200);
    expect(res.html).toStartWith("<!doctype html>");
    expect(res.html).toMatch(/<div id="cancel-result"[^>]*>\s*<div class="result result--200" data-http-status="200" data-order-state="cancelled">/);
    expect(res.html).toContain('data-state="cancelled"');
    expect(cancelKeyOf(res.html)).toBeUndefined();
    expect(shop.cancels).toBe(1);
    // No reason given: the history names who, and no note.
    expect(res.html).toContain("by web");
    expect(res.html).not.toContain("timeline__note");
  });

  test("a rejected order's cancel is a 409 that says why; a bad reason is a 400; a forged post is refused", async () => {
    const shop = new FakeShop(STOCK);
    const rejected = await shop.access.create("seed-r", { lines: [{ item_id: "quest-3", quantity: 99 }] }, null);
    const v = shop.views();
    const r409 = await v.post(`/ui/orders/${rejected.orderId}/cancel`, [["csrf_token", v.token], ["idempotency_key", "ui-cancel-409"]], { "hx-request": "true" });
    expect(r409.status).toBe(409);
    expect(r409.html).toContain("cannot be cancelled");

    const ok = await shop.access.create("seed-ok", { lines: LINES }, null);
    const long = await v.post(`/ui/orders/${ok.orderId}/cancel`, [["csrf_token", v.token], ["idempotency_key", "ui-cancel-long"], ["reason", "x".repeat(201)]], { "hx-request": "true" });
    expect(long.status).toBe(400);
    expect(long.html).toContain("at most 200 characters");
    const control = await v.post(`/ui/orders/${ok.orderId}/cancel`, [["csrf_token", v.token], ["idempotency_key", "ui-cancel-ctl"], ["reason", "a\u0007b"]], { "hx-request": "true" });
    expect(control.status).toBe(400);
    const forged = await v.post(`/ui/orders/${ok.orderId}/cancel`, [["csrf_token", "nope"], ["idempotency_key", "ui-cancel-forged"]], { "hx-request": "true" });
    expect(forged.status).toBe(403);
    const cross = await v.post(`/ui/orders/${ok.orderId}/cancel`, [["csrf_token", v.token], ["idempotency_key", "ui-cancel-cross"]], { "hx-request": "true", "sec-fetch-site": "cross-site" });
    expect(cross.status).toBe(403);
    expect(shop.cancels).toBe(0);

    const missing = await v.post(`/ui/orders/00000000-0000-4000-8000-999999999999/cancel`, [["csrf_token", v.token], ["idempotency_key", "ui-cancel-404"]]);
    expect(missing.status).toBe(404);
    expect(missing.html).toContain("No order with that id.");
  });

  test("an unknown outcome keeps the form's key and reason for the retry", async () => {
    const { shop, id, v } = await shopWithOrder();
    shop.failNext = new DatabaseUnavailableError("The database is unavailable", "57P01");
    const res = await v.post(`/ui/orders/${id}/cancel`, [["csrf_token", v.token], ["idempotency_key", "ui-cancel-keep"], ["reason", "late"]], { "hx-request": "true" });
    expect(res.status).toBe(503);
    expect(cancelKeyOf(res.html)).toBe("ui-cancel-keep");
    expect(res.html).toMatch(/id="cancel-reason"[^>]*value="late"/);
  });

  test("a reason with markup is shown as text", async () => {
    const { id, v } = await shopWithOrder();
    const res = await v.post(`/ui/orders/${id}/cancel`, [["csrf_token", v.token], ["idempotency_key", "ui-cancel-xss"], ["reason", `<script>alert(1)</script>`]], { "hx-request": "true" });
    expect(res.status).toBe(200);
    expect(res.html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(res.html).not.toContain("<script>");
  });

  test("the detail's poll takes the form away once the order can no longer be cancelled", async () => {
    const { shop, id, v } = await shopWithOrder();
    expect((await v.get(`/ui/fragments/orders/${id}`)).html).not.toContain("order-actions");
    await shop.access.cancel(id, "api-cancel", {}, null, "api");
    expect((await v.get(`/ui/fragments/orders/${id}`)).html).toContain('<section id="order-actions" class="order-actions" aria-label="Actions" hx-swap-oob="true"></section>');
  });
});

describe("orders list", () => {
  test("every state is a filter, including cancelling and cancelled", async () => {
    const { v } = await shopWithOrder();
    const { html } = await v.get("/orders");
    for (const s of ORDER_STATUSES) expect(html).toContain(`<a href="/orders?status=${s}">${s}</a>`);
    expect(ORDER_STATUSES).toContain("cancelling");
    expect(ORDER_STATUSES).toContain("cancelled");
  });

  test("a row lists its lines and units; long orders are cut short; a cancelled order has its badge", async () => {
    const shop = new FakeShop({ a: 9, b: 9, c: 9, d: 9, e: 9 });
    const five = await shop.access.create("k5", { lines: ["a", "b", "c", "d", "e"].map((item_id) => ({ item_id, quantity: 1 })) }, null);
    await shop.access.cancel(five.orderId!, "c5", {}, null, "api");
    const v = shop.views();
    const { html } = await v.get("/orders");
    expect(html).toContain("<th scope=\"col\">Lines</th>");
    expect(html).toMatch(new RegExp(`<tr id="order-${five.orderId}" data-state="cancelled" data-lines="5">`));
    expect(html).toContain("<code>a</code> × 1, <code>b</code> × 1, <code>c</code> × 1 <span class=\"muted\">and 2 more</span>");
    expect(html).toContain('<td class="num">5</td>');
    expect(html).toContain('<span class="badge badge--cancelled">cancelled</span>');
    const filtered = await v.get("/orders?status=cancelled");
    expect(filtered.html).toContain(`order-${five.orderId}`);
    expect((await v.get("/orders?status=confirmed")).html).not.toContain(`order-${five.orderId}`);
  });
});
