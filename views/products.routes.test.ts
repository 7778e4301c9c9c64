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
