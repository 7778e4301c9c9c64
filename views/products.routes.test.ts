import { describe, expect, test } from "bun:test";
import { DatabaseUnavailableError } from "../platform/db-errors.ts";
import { FakeShop } from "../tests/support/view-fakes.ts";

const STOCK = { ps5: 10, dualsense: 50, "quest-3": 5, "steam-deck": 0 };

/** The order form's fields for these quantities: every card sends its item and its quantity. */
function orderForm(token: string, key: string, quantities: Record<string, string>): Array<[string, string]> {
  const fields: Array<[string, string]> = [["csrf_token", token], ["idempotency_key", key]];
  for (const id of Object.keys(STOCK)) fields.push(["item_id", id], ["quantity", quantities[id] ?? "0"]);
  return fields;
}

const keyOf = (html: string) => /id="order-key" value="([^"]+)"/.exec(html)![1]!;

describe("products page: one order of several lines", () => {
  test("one form holds a quantity for every item, one key and one button", async () => {
    const shop = new FakeShop(STOCK);
    const { html } = await shop.views().get("/");
    expect(html.match(/<form /g)).toHaveLength(1);
    expect(html).toContain('<form id="order-form" class="order-form" method="post" action="/ui/orders" hx-post="/ui/orders" hx-target="#order-result">');
    for (const id of Object.keys(STOCK)) {
      expect(html).toContain(`<input type="hidden" name="item_id" value="${id}">`);
      expect(html).toMatch(new RegExp(`id="qty-${id}" name="quantity" type="number"[^>]*min="0"[^>]*value="0"`));
    }
    expect(keyOf(html)).toMatch(/^ui-[0-9a-f-]{36}$/);
    expect(html.match(/type="submit"/g)).toHaveLength(1);
  });

  test("three lines, zero rows ignored: one order with those lines, in catalog order; the basket empties", async () => {
    const shop = new FakeShop(STOCK);
    const v = shop.views();
    const key = keyOf((await v.get("/")).html);
    const res = await v.post("/ui/orders", orderForm(v.token, key, { ps5: "2", dualsense: "3", "quest-3": "1" }), { "hx-request": "true" });
    expect(res.status).toBe(201);
    expect(shop.creates).toBe(1);
    const [order] = shop.orders.values();
    expect(order!.lines).toEqual([
      { item_id: "ps5", quantity: 2 },
      { item_id: "dualsense", quantity: 3 },
      { item_id: "quest-3", quantity: 1 },
    ]);
    expect(res.html).toContain('data-http-status="201" data-order-state="confirmed"');
    expect(res.html).toContain("3 lines, 6 units");
    // A fresh key, the ordered quantities back to zero and the new stock figures, out of band.
    expect(keyOf(res.html)).not.toBe(key);
    expect(res.html).toMatch(/id="order-key" value="[^"]+" hx-swap-oob="true"/);
    for (const id of ["ps5", "dualsense", "quest-3"]) expect(res.html).toMatch(new RegExp(`id="qty-${id}"[^>]*value="0" hx-swap-oob="true"`));
    expect(res.html).toContain('id="stock-ps5" hx-swap-oob="true">8<');
    expect(res.html).not.toContain('id="qty-steam-deck"');

    // The same form sent again is the same order, replayed.
    const again = await v.post("/ui/orders", orderForm(v.token, key, { ps5: "2", dualsense: "3", "quest-3": "1" }), { "hx-request": "true" });
    expect(again.status).toBe(201);
    expect(again.html).toContain("replayed");
    expect(shop.creates).toBe(1);
  });

  test("a rejected order names every failing line and why; nothing is taken", async () => {
    const shop = new FakeShop(STOCK);
    const v = shop.views();
    const res = await v.post("/ui/orders", orderForm(v.token, "ui-rejected-1", { ps5: "1", "quest-3": "6", "steam-deck": "1" }), { "hx-request": "true" });
    expect(res.status).toBe(422);
    expect(res.html).toContain('data-order-state="rejected"');
    expect(res.html).toContain('data-item-id="quest-3" data-line-reason="insufficient_stock"');
    expect(res.html).toContain('data-item-id="steam-deck" data-line-reason="insufficient_stock"');
    expect(res.html).not.toContain('data-item-id="ps5" data-line-reason');
    expect(res.html).toContain("Name of quest-3");
    expect(res.html).toContain("not enough stock");
    expect(res.html).toContain("nothing was taken");
    // The quantities stay as typed, so the customer can fix the failing line.
    expect(res.html).not.toMatch(/id="qty-[^"]+"[^>]*hx-swap-oob/);
    expect(shop.items.get("ps5")!.quantity).toBe(10);
  });

  test("nothing chosen, a bad quantity, an item twice: 400 with a clear message, no order", async () => {
    const shop = new FakeShop(STOCK);
    const v = shop.views();
    const none = await v.post("/ui/orders", orderForm(v.token, "ui-none", {}), { "hx-request": "true" });
    expect(none.status).toBe(400);
    expect(none.html).toContain("Nothing to order: set a quantity above zero on at least one item.");
    const half = await v.post("/ui/orders", orderForm(v.token, "ui-half", { ps5: "1.5" }), { "hx-request": "true" });
    expect(half.status).toBe(400);
    expect(half.html).toContain("Quantity for ps5 must be a whole number from 0 to 10,000.");
    const negative = await v.post("/ui/orders", orderForm(v.token, "ui-neg", { ps5: "-1" }), { "hx-request": "true" });
    expect(negative.status).toBe(400);
    const twice = await v.post(
      "/ui/orders",
      [["csrf_token", v.token], ["idempotency_key", "ui-twice"], ["item_id", "ps5"], ["quantity", "1"], ["item_id", "ps5"], ["quantity", "2"]],
      { "hx-request": "true" },
    );
    expect(twice.status).toBe(400);
    expect(twice.html).toContain("more than one line");
    const unpaired = await v.post("/ui/orders", [["csrf_token", v.token], ["idempotency_key", "ui-unpaired"], ["item_id", "ps5"]], { "hx-request": "true" });
    expect(unpaired.status).toBe(400);
    expect(shop.creates).toBe(0);
  });

  test("the seed's one-item form fields still place one line", async () => {
    const shop = new FakeShop(STOCK);
    const v = shop.views();
    const res = await v.post("/ui/orders", [["csrf_token", v.token], ["idempotency_key", "ui-one"], ["item_id", "dualsense"], ["quantity", "4"]], { "hx-request": "true" });
    expect(res.status).toBe(201);
    expect([...shop.orders.values()][0]!.lines).toEqual([{ item_id: "dualsense", quantity: 4 }]);
  });

  test("without JavaScript: the whole page comes back with the answer in place", async () => {
    const shop = new FakeShop(STOCK);
    const v = shop.views();
    const ok = await v.post("/ui/orders", orderForm(v.token, "ui-plain-1", { ps5: "1", dualsense: "1", "quest-3": "1" }));
    expect(ok.status).toBe(201);
    expect(ok.html).toStartWith("<!doctype html>");
    expect(ok.html).toMatch(/<div id="order-result"[^>]*>\s*<div class="result result--201" data-http-status="201" data-order-state="confirmed">/);
    // After an order went through, the form starts empty with a new key.
    expect(ok.html).toMatch(/id="qty-ps5"[^>]*value="0"/);
    expect(keyOf(ok.html)).not.toBe("ui-plain-1");

    // A refused order keeps what was typed.
    const bad = await v.post("/ui/orders", orderForm(v.token, "ui-plain-2", { ps5: "99", dualsense: "2" }));
    expect(bad.status).toBe(422);
    expect(bad.html).toMatch(/id="qty-ps5"[^>]*value="99"/);
    expect(bad.html).toMatch(/id="qty-dualsense"[^>]*value="2"/);
    expect(bad.html).toContain('data-line-reason="insufficient_stock"');
  });

  test("an unknown outcome keeps the key, so the retry is answered from the first request", async () => {
    const shop = new FakeShop(STOCK);
    const v = shop.views();
    shop.failNext = new DatabaseUnavailableError("The database is unavailable", "57P01");
    const res = await v.post("/ui/orders", orderForm(v.token, "ui-unknown-1", { ps5: "1" }), { "hx-request": "true" });
    expect(res.status).toBe(503);
    expect(keyOf(res.html)).toBe("ui-unknown-1");
  });

  test("a post without the session's token, or from another origin, is refused", async () => {
    const shop = new FakeShop(STOCK);
    const v = shop.views();
    const noToken = await v.post("/ui/orders", orderForm("", "ui-forged-1", { ps5: "1" }), { "hx-request": "true" });
    expect(noToken.status).toBe(403);
    const cross = await v.post("/ui/orders", orderForm(v.token, "ui-forged-2", { ps5: "1" }), { "hx-request": "true", "sec-fetch-site": "cross-site" });
    expect(cross.status).toBe(403);
    expect(cross.html).toContain("Refused");
    expect(shop.creates).toBe(0);
  });

  test("item ids and names with markup are escaped in the answer", async () => {
    const shop = new FakeShop({ ps5: 1 });
    shop.items.get("ps5")!.item_name = `<img src=x onerror=alert(1)>`;
    const v = shop.views();
    const res = await v.post("/ui/orders", [["csrf_token", v.token], ["idempotency_key", "ui-xss"], ["item_id", "ps5"], ["quantity", "2"]], { "hx-request": "true" });
    expect(res.status).toBe(422);
    expect(res.html).toContain("&lt;img src=x onerror=alert(1)&gt;");
    expect(res.html).not.toContain("<img");
  });
});

describe("products page: hold instead of buying now", () => {
  const holdForm = (token: string, key: string, quantities: Record<string, string>, minutes: string, mode = "hold") => [
    ...orderForm(token, key, quantities),
    ["mode", mode] as [string, string],
    ["hold_minutes", minutes] as [string, string],
  ];

  test("buy now is the default; a hold is chosen in minutes from 1 to 1,440 (24 h)", async () => {
    const { html } = await new FakeShop(STOCK).views().get("/");
    expect(html).toContain('<input type="radio" name="mode" value="buy" id="mode-buy" checked>');
    expect(html).toContain('<input type="radio" name="mode" value="hold" id="mode-hold">');
    expect(html).toMatch(/id="hold-minutes" name="hold_minutes" type="number"[^>]*min="1" max="1440" step="1" value="15"/);
    // A hold's answer counts down with the same file the order page uses.
    expect(html).toMatch(/<script src="\/ui\/assets\/countdown\.js\?v=[^"]+" defer><\/script>/);
  });

  test("with htmx: the order is reserved, the answer shows its deadline and time left; the stock is held, not sold", async () => {
    const shop = new FakeShop(STOCK);
    const v = shop.views();
    const fields = holdForm(v.token, "ui-hold-1", { ps5: "2", dualsense: "1" }, "15");
    const res = await v.post("/ui/orders", fields, { "hx-request": "true" });
    expect(res.status).toBe(201);
    expect(res.html).toContain('data-http-status="201" data-order-state="reserved"');
    expect(res.html).toContain('<span class="badge badge--reserved">reserved</span>');
    expect(res.html).toContain('data-countdown datetime="2026-12-02T12:15:00.000Z"');
    expect(res.html).toContain(">15 min 0 s</time> left, until <time");
    expect(res.html).toContain("2026-12-02 12:15:00 UTC");
    const [order] = shop.orders.values();
    expect(res.html).toContain(`<a href="/orders/${order!.order_id}">pay on the order page</a>`);
    expect(order!.status).toBe("reserved");
    expect(shop.items.get("ps5")).toMatchObject({ quantity: 8, reserved_quantity: 2 });
    expect(shop.items.get("dualsense")).toMatchObject({ quantity: 49, reserved_quantity: 1 });
    // Like any order, the basket empties and the form gets a new key.
    expect(res.html).toMatch(/id="qty-ps5"[^>]*value="0" hx-swap-oob="true"/);
    expect(keyOf(res.html)).not.toBe("ui-hold-1");

    const again = await v.post("/ui/orders", fields, { "hx-request": "true" });
    expect(again.status).toBe(201);
    expect(again.html).toContain("replayed");
    expect(shop.creates).toBe(1);
    expect(shop.items.get("ps5")!.reserved_quantity).toBe(2);
  });

  test("without JavaScript: the whole page, the answer in place, the hold choice kept", async () => {
    const shop = new FakeShop(STOCK);
    const v = shop.views();
    const res = await v.post("/ui/orders", holdForm(v.token, "ui-hold-plain", { "quest-3": "1" }, "1440"));
    expect(res.status).toBe(201);
    expect(res.html).toStartWith("<!doctype html>");
    expect(res.html).toMatch(/<div id="order-result"[^>]*>\s*<div class="result result--201" data-http-status="201" data-order-state="reserved">/);
    expect(res.html).toContain(">24 h 0 min 0 s</time> left");
    expect(res.html).toContain('<input type="radio" name="mode" value="hold" id="mode-hold" checked>');
    expect(res.html).toMatch(/id="hold-minutes"[^>]*value="1440"/);
    expect([...shop.orders.values()][0]!.hold_expires_at).toBe("2026-12-03T12:00:00.000Z");
  });

  test("a hold outside 1 minute to 24 hours, or an unknown choice, is a 400 that orders nothing", async () => {
    const shop = new FakeShop(STOCK);
    const v = shop.views();
    for (const minutes of ["0", "1441", "1.5", "", "ten"]) {
      const res = await v.post("/ui/orders", holdForm(v.token, `ui-hold-bad-${minutes}`, { ps5: "1" }, minutes), { "hx-request": "true" });
      expect(res.status, minutes).toBe(400);
      expect(res.html).toContain("A hold lasts a whole number of minutes from 1 to 1,440 (24 hours).");
    }
    const odd = await v.post("/ui/orders", holdForm(v.token, "ui-hold-odd", { ps5: "1" }, "5", "later"), { "hx-request": "true" });
    expect(odd.status).toBe(400);
    expect(odd.html).toContain("Choose buy now or hold.");
    // Buy now ignores the minutes field, whatever it holds.
    const buy = await v.post("/ui/orders", holdForm(v.token, "ui-buy", { ps5: "1" }, "0", "buy"), { "hx-request": "true" });
    expect(buy.status).toBe(201);
    expect(buy.html).toContain('data-order-state="confirmed"');
    expect(shop.creates).toBe(1);
  });
});
