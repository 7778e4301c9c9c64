import { describe, expect, test } from "bun:test";
import { FakeShop } from "../tests/support/view-fakes.ts";

describe("an item's page: its stock and its ledger", () => {
  test("shows available and reserved, the movements newest first with their orders and reasons, paged by plain links", async () => {
    const shop = new FakeShop({ ps5: 10 });
    for (let i = 0; i < 60; i++) {
      shop.ledger.push({
        id: shop.ledger.length + 1,
        item_id: "ps5",
        type: i % 2 ? "deduct" : "hold",
        quantity_change: -1,
        reserved_change: i % 2 ? 0 : 1,
        order_id: `0b6f6a52-3c1e-4a8e-9d2f-5b7c1e2a9f${String(i).padStart(2, "0")}`,
        reason: i === 59 ? "<script>alert(1)</script>" : null,
        created_at: new Date(0).toISOString(),
      });
    }
    const v = shop.views();
    const first = await v.get("/items/ps5");
    expect(first.status).toBe(200);
    expect(first.html).toContain("<dt>Available</dt><dd>10</dd>");
    expect(first.html).toContain("<dt>Reserved</dt><dd>0</dd>");
    expect(first.html).toContain('<dt>Low-stock threshold</dt><dd><span class="muted">off</span></dd>');
    shop.items.set("ps5", { ...shop.items.get("ps5")!, low_stock_threshold: 10 });
    expect((await v.get("/items/ps5")).html).toContain("<dt>Low-stock threshold</dt><dd>10 <strong>low</strong></dd>");
    shop.items.set("ps5", { ...shop.items.get("ps5")!, low_stock_threshold: 0 });
    const ids = [...first.html.matchAll(/data-movement-id="(\d+)"/g)].map((m) => Number(m[1]));
    expect(ids).toHaveLength(50);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(first.html).toContain('href="/orders/0b6f6a52-3c1e-4a8e-9d2f-5b7c1e2a9f59"');
    expect(first.html).not.toContain("<script>alert(1)</script>");
    expect(first.html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    const older = /href="\/items\/ps5\?before=(\d+)" rel="next"/.exec(first.html);
    expect(older).not.toBeNull();
    const second = await v.get(`/items/ps5?before=${older![1]}`);
    const secondIds = [...second.html.matchAll(/data-movement-id="(\d+)"/g)].map((m) => Number(m[1]));
    expect(secondIds.length).toBe(61 - 50);
    expect(Math.max(...secondIds)).toBeLessThan(Math.min(...ids));
    expect(second.html).toContain('data-type="create"');
    expect(second.html).not.toContain('rel="next"');
    expect(second.html).toContain('href="/items/ps5">Newest</a>');
  });

  test("an unknown item is a 404 page; a bad cursor a 400; the products page links every item to its page", async () => {
    const shop = new FakeShop({ ps5: 10 });
    const v = shop.views();
    expect((await v.get("/items/nope")).status).toBe(404);
    expect((await v.get("/items/ps5?before=abc")).status).toBe(400);
    expect((await v.get("/")).html).toContain('<a href="/items/ps5" title="Stock and ledger">');
  });
});
