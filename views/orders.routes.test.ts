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

describe("a held order", () => {
  const payKeyOf = (html: string) => /id="pay-key" value="([^"]+)"/.exec(html)?.[1];
  /** 2026-12-02 12:00 UTC plus this hold; the fake shop's clock starts at noon. */
  async function shopWithHold(holdS = 600, lines = [{ item_id: "ps5", quantity: 2 }, { item_id: "quest-3", quantity: 1 }]) {
    const shop = new FakeShop(STOCK);
    const res = await shop.access.create(`seed-hold-${crypto.randomUUID()}`, { lines, hold_s: holdS }, null);
    expect(res.status).toBe(201);
    return { shop, id: res.orderId!, v: shop.views() };
  }

  test("shows the time left and the deadline, a pay form with its own key, and the cancel form", async () => {
    const { shop, id, v } = await shopWithHold(600);
    shop.now += 125_500;
    const { status, html } = await v.get(`/orders/${id}`);
    expect(status).toBe(200);
    expect(html).toContain('data-state="reserved" data-hold-expires-at="2026-12-02T12:10:00.000Z"');
    expect(html).toContain('<p class="hold-banner" role="note">Held for you: <span class="hold" data-hold-left="475">');
    expect(html).toContain(`<time class="hold__left" data-countdown datetime="2026-12-02T12:10:00.000Z" data-server-now="${shop.now}">7 min 55 s</time> left, until <time class="hold__at" datetime="2026-12-02T12:10:00.000Z">2026-12-02 12:10:00 UTC</time>`);
    // The countdown ticks in the browser from a same-origin file (the CSP allows no inline script).
    expect(html).toMatch(/<script src="\/ui\/assets\/countdown\.js\?v=[^"]+" defer><\/script>/);
    expect(html).toContain(`action="/ui/orders/${id}/pay" hx-post="/ui/orders/${id}/pay" hx-target="#pay-result"`);
    expect(payKeyOf(html)).toMatch(/^ui-pay-[0-9a-f-]{36}$/);
    expect(payKeyOf((await v.get(`/orders/${id}`)).html)).not.toBe(payKeyOf(html));
    expect(cancelKeyOf(html)).toMatch(/^ui-cancel-/);
    // Still moving: the detail polls, so without JavaScript the time left is at most 2 s old.
    // The poll says the page shows a pay form; while that stays true, the answer leaves the form alone.
    expect(html).toContain(`hx-get="/ui/fragments/orders/${id}?pay=shown" hx-trigger="every 2s"`);
    const polled = await v.get(`/ui/fragments/orders/${id}?pay=shown`);
    expect(polled.html).toContain("data-hold-left=\"475\"");
    expect(polled.html).not.toContain("pay-action");
  });

  test("pay with htmx: confirmed (200), the hold becomes a sale, the pay form goes; a double submit is one payment", async () => {
    const { shop, id, v } = await shopWithHold();
    expect(shop.items.get("ps5")).toMatchObject({ quantity: 8, reserved_quantity: 2 });
    const key = payKeyOf((await v.get(`/orders/${id}`)).html)!;
    shop.now += 60_000;
    const fields: Array<[string, string]> = [["csrf_token", v.token], ["idempotency_key", key]];
    const res = await v.post(`/ui/orders/${id}/pay`, fields, { "hx-request": "true" });
    expect(res.status).toBe(200);
    expect(res.html).toContain('data-http-status="200" data-order-state="confirmed"');
    expect(res.html).toContain("Order confirmed.");
    expect(res.html).toContain('id="order-detail" class="card order-detail" data-state="confirmed"');
    expect(res.html).toContain("paid at <time datetime=\"2026-12-02T12:01:00.000Z\">2026-12-02 12:01:00 UTC</time>, before the deadline");
    // The actions come back without the pay form; a confirmed order can still be cancelled.
    expect(res.html).toMatch(/<section id="order-actions" class="order-actions" aria-label="Actions" hx-swap-oob="true"><div id="pay-action" class="pay-action"><\/div><form class="card cancel-form"/);
    expect(payKeyOf(res.html)).toBeUndefined();
    expect(shop.items.get("ps5")).toMatchObject({ quantity: 8, reserved_quantity: 0 });
    expect(shop.items.get("quest-3")).toMatchObject({ quantity: 4, reserved_quantity: 0 });

    const again = await v.post(`/ui/orders/${id}/pay`, fields, { "hx-request": "true" });
    expect(again.status).toBe(200);
    expect(again.html).toContain("replayed: same key, first answer");
    expect(shop.sales).toBe(1);
    expect(shop.items.get("ps5")).toMatchObject({ quantity: 8, reserved_quantity: 0 });
  });

  test("pay without JavaScript: the whole order page with the answer in the pay box", async () => {
    const { shop, id, v } = await shopWithHold();
    const key = payKeyOf((await v.get(`/orders/${id}`)).html)!;
    const res = await v.post(`/ui/orders/${id}/pay`, [["csrf_token", v.token], ["idempotency_key", key]]);
    expect(res.status).toBe(200);
    expect(res.html).toStartWith("<!doctype html>");
    expect(res.html).toMatch(/<div id="pay-result"[^>]*>\s*<div class="result result--200" data-http-status="200" data-order-state="confirmed">/);
    expect(res.html).toContain('data-state="confirmed"');
    expect(payKeyOf(res.html)).toBeUndefined();
    expect(shop.sales).toBe(1);
  });

  test("pay after the deadline: 409, said plainly; the order is expired, its stock back, and nothing is offered", async () => {
    const { shop, id, v } = await shopWithHold(60);
    const key = payKeyOf((await v.get(`/orders/${id}`)).html)!;
    shop.now += 61_000;
    const res = await v.post(`/ui/orders/${id}/pay`, [["csrf_token", v.token], ["idempotency_key", key]], { "hx-request": "true" });
    expect(res.status).toBe(409);
    expect(res.html).toContain('data-http-status="409" data-order-state="expired"');
    expect(res.html).toContain('<span class="badge badge--expired">expired</span>');
    expect(res.html).toContain(`The hold on order ${id} expired at 2026-12-02T12:01:00.000Z, before payment; its stock was given back.`);
    expect(res.html).toContain('<section id="order-actions" class="order-actions" aria-label="Actions" hx-swap-oob="true"></section>');
    expect(shop.items.get("ps5")).toMatchObject({ quantity: 10, reserved_quantity: 0 });
    expect(shop.sales).toBe(0);

    // The order page of the expired order (expired through the API): badge, what happened, no forms, no polling.
    const page = await v.get(`/orders/${id}`);
    expect(page.html).toContain('id="order-detail" class="card order-detail" data-state="expired" data-hold-expires-at="2026-12-02T12:01:00.000Z">');
    expect(page.html).toContain("expired unpaid at <time datetime=\"2026-12-02T12:01:00.000Z\">2026-12-02 12:01:00 UTC</time>; the stock went back");
    expect(page.html).toContain("The hold expired before payment; its stock was given back.");
    expect(page.html).toContain('<li class="timeline__item" data-status="expired">');
    expect(page.html).toContain("the hold expired before payment");
    expect(page.html).toContain('<section id="order-actions" class="order-actions" aria-label="Actions"></section>');
    expect(page.html).not.toContain("hold-banner");
    expect(page.html).not.toContain("data-countdown");

    // A second pay under a new key is the same 409; a cancel is refused too.
    const later = await v.post(`/ui/orders/${id}/pay`, [["csrf_token", v.token], ["idempotency_key", "ui-pay-later"]], { "hx-request": "true" });
    expect(later.status).toBe(409);
    expect(later.html).toContain("expired");
  });

  test("the deadline passed but the sweeper has not run yet: the page says so; after the sweep the poll shows expired", async () => {
    const { shop, id, v } = await shopWithHold(60);
    shop.now += 60_000;
    const due = await v.get(`/orders/${id}`);
    expect(due.html).toContain('<span class="hold hold--due" data-hold-left="0"><strong>deadline passed</strong>');
    shop.sweep();
    const polled = await v.get(`/ui/fragments/orders/${id}`);
    expect(polled.html).toContain('data-state="expired"');
    expect(polled.html).toContain('<section id="order-actions" class="order-actions" aria-label="Actions" hx-swap-oob="true"></section>');
    expect(shop.items.get("quest-3")).toMatchObject({ quantity: 5, reserved_quantity: 0 });
  });

  test("inventory away: 202, payment recorded and being confirmed; the poll takes the pay form away and later shows confirmed", async () => {
    const { shop, id, v } = await shopWithHold();
    shop.inventoryAway = true;
    const key = payKeyOf((await v.get(`/orders/${id}`)).html)!;
    const res = await v.post(`/ui/orders/${id}/pay`, [["csrf_token", v.token], ["idempotency_key", key]], { "hx-request": "true" });
    expect(res.status).toBe(202);
    expect(res.html).toContain('data-http-status="202" data-order-state="reserved"');
    expect(res.html).toContain("Payment received; confirming it with inventory.");
    expect(res.html).toContain('<span class="result__hold">paid at <time datetime="2026-12-02T12:00:00.000Z">');
    expect(payKeyOf(res.html)).toBeUndefined();
    expect(res.html).toContain("paid at <time datetime=\"2026-12-02T12:00:00.000Z\">2026-12-02 12:00:00 UTC</time>; confirming with inventory");
    // A page open from before the payment loses its pay form on the next poll; the cancel form stays.
    const polled = await v.get(`/ui/fragments/orders/${id}?pay=shown`);
    expect(polled.html).toContain('<div id="pay-action" class="pay-action" hx-swap-oob="true"></div>');
    expect(polled.html).not.toContain("order-actions");
    expect(polled.html).toContain(`hx-get="/ui/fragments/orders/${id}"`);
    // Once the page has lost the form, later polls leave the box alone.
    expect((await v.get(`/ui/fragments/orders/${id}`)).html).not.toContain("pay-action");
    // Inventory back, even after the deadline: judged by when the payment was made.
    shop.now += 3_600_000;
    shop.settlePaid();
    expect((await v.get(`/ui/fragments/orders/${id}`)).html).toContain('data-state="confirmed"');
    expect(shop.sales).toBe(1);
  });

  test("a held order still queued shows no pay form; the poll brings one once the hold is made", async () => {
    const { shop, id, v } = await shopWithHold();
    // As the API has it while inventory was away: queued, no deadline yet.
    const o = shop.orders.get(id)!;
    const deadline = o.hold_expires_at;
    Object.assign(o, { status: "queued", hold_expires_at: undefined });
    const page = await v.get(`/orders/${id}`);
    expect(payKeyOf(page.html)).toBeUndefined();
    expect(page.html).toContain('<div id="pay-action" class="pay-action"></div><form class="card cancel-form"');
    expect(page.html).toContain(`hx-get="/ui/fragments/orders/${id}" hx-trigger`);
    expect((await v.get(`/ui/fragments/orders/${id}`)).html).not.toContain("pay-action");

    Object.assign(o, { status: "reserved", hold_expires_at: deadline });
    const polled = await v.get(`/ui/fragments/orders/${id}`);
    expect(polled.html).toMatch(/<div id="pay-action" class="pay-action" hx-swap-oob="true"><form class="card pay-form"/);
    expect(payKeyOf(polled.html)).toMatch(/^ui-pay-/);
    expect(polled.html).toContain(`name="csrf_token" value="${v.token}"`);
    expect(polled.html).toContain(`hx-get="/ui/fragments/orders/${id}?pay=shown"`);
  });

  test("cancel a held order: the hold is released, the stock available again", async () => {
    const { shop, id, v } = await shopWithHold();
    const key = cancelKeyOf((await v.get(`/orders/${id}`)).html)!;
    const res = await v.post(`/ui/orders/${id}/cancel`, [["csrf_token", v.token], ["idempotency_key", key]], { "hx-request": "true" });
    expect(res.status).toBe(200);
    expect(res.html).toContain('data-order-state="cancelled"');
    expect(res.html).toContain('<section id="order-actions" class="order-actions" aria-label="Actions" hx-swap-oob="true"></section>');
    expect(shop.items.get("ps5")).toMatchObject({ quantity: 10, reserved_quantity: 0 });
    expect(shop.items.get("quest-3")).toMatchObject({ quantity: 5, reserved_quantity: 0 });
  });

  test("an unknown outcome keeps the pay key; a forged pay is refused; an order without a hold is not payable", async () => {
    const { shop, id, v } = await shopWithHold();
    shop.failNext = new DatabaseUnavailableError("The database is unavailable", "57P01");
    const unknown = await v.post(`/ui/orders/${id}/pay`, [["csrf_token", v.token], ["idempotency_key", "ui-pay-keep"]], { "hx-request": "true" });
    expect(unknown.status).toBe(503);
    expect(payKeyOf(unknown.html)).toBe("ui-pay-keep");

    const forged = await v.post(`/ui/orders/${id}/pay`, [["csrf_token", "nope"], ["idempotency_key", "ui-pay-forged"]], { "hx-request": "true" });
    expect(forged.status).toBe(403);
    const cross = await v.post(`/ui/orders/${id}/pay`, [["csrf_token", v.token], ["idempotency_key", "ui-pay-cross"]], { "hx-request": "true", "sec-fetch-site": "cross-site" });
    expect(cross.status).toBe(403);
    const noKey = await v.post(`/ui/orders/${id}/pay`, [["csrf_token", v.token], ["idempotency_key", ""]], { "hx-request": "true" });
    expect(noKey.status).toBe(400);
    expect(shop.sales).toBe(0);

    const sold = await shop.access.create("seed-sold", { lines: [{ item_id: "dualsense", quantity: 1 }] }, null);
    const notPayable = await v.post(`/ui/orders/${sold.orderId}/pay`, [["csrf_token", v.token], ["idempotency_key", "ui-pay-sold"]], { "hx-request": "true" });
    expect(notPayable.status).toBe(409);
    expect(notPayable.html).toContain("there is no live hold to pay for");
    // And a sold order's page offers no pay form.
    expect(payKeyOf((await v.get(`/orders/${sold.orderId}`)).html)).toBeUndefined();
  });
});

describe("orders list: holds", () => {
  test("reserved and expired are filters with their badges; a reserved row shows its time left and deadline", async () => {
    const shop = new FakeShop(STOCK);
    const held = await shop.access.create("k-held", { lines: [{ item_id: "ps5", quantity: 1 }], hold_s: 3_600 }, null);
    const lapsed = await shop.access.create("k-lapsed", { lines: [{ item_id: "dualsense", quantity: 1 }], hold_s: 60 }, null);
    shop.now += 90_000;
    shop.sweep();
    const v = shop.views();
    const { html } = await v.get("/orders");
    for (const s of ["reserved", "expired"]) expect(html).toContain(`<a href="/orders?status=${s}">${s}</a>`);
    expect(html).toMatch(/<script src="\/ui\/assets\/countdown\.js\?v=[^"]+" defer><\/script>/);
    expect(html).toMatch(new RegExp(`<tr id="order-${held.orderId}" data-state="reserved"[\\s\\S]*?<span class="badge badge--reserved">reserved</span></td>\\s*<td class="muted"><span class="hold" data-hold-left="3510"><time class="hold__left" data-countdown datetime="2026-12-02T13:00:00.000Z" data-server-now="\\d+">58 min 30 s</time> left, until <time class="hold__at" datetime="2026-12-02T13:00:00.000Z">2026-12-02 13:00:00 UTC</time>`));
    expect(html).toMatch(new RegExp(`<tr id="order-${lapsed.orderId}" data-state="expired"[\\s\\S]*?<span class="badge badge--expired">expired</span></td>\\s*<td class="muted">the hold expired before payment`));
    const reserved = await v.get("/orders?status=reserved");
    expect(reserved.html).toContain(`order-${held.orderId}`);
    expect(reserved.html).not.toContain(`order-${lapsed.orderId}`);
    const expired = await v.get("/ui/fragments/orders?status=expired");
    expect(expired.html).toContain(`order-${lapsed.orderId}`);
    expect(expired.html).not.toContain(`order-${held.orderId}`);
  });
});
