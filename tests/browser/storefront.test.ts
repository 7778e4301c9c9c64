import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import type { Page } from "playwright-core";
import { hasChromium, launchBrowser, watch, type Browser, type Watch } from "./chromium.ts";
import { FAST_BACKEND, startUiSystem, type UiSystem } from "./support.ts";

/**
 * A shop's storefront is a web app on an origin of its own. In a real Chromium, a storefront page
 * served from another origin places an order on Valerix with `fetch`: when its origin is listed
 * in CORS_ORIGINS the order is placed and its answer read; when it is not, the browser stops the
 * request at the preflight and no order exists.
 *
 * Valerix answers on 127.0.0.1 and the storefronts on `localhost`: another site, as a shop on its
 * own domain would be, so the browser sends `Sec-Fetch-Site: cross-site`.
 */
const TEST_TIMEOUT_MS = 60_000;

/** The storefront: one page whose script places an order and reports what it could read. */
const STOREFRONT_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title></head>
<body><h1>A shop</h1>
<script>
  window.placeOrder = async (api, key, init) => {
    try {
      const res = await fetch(api + "/api/orders", {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": key },
        body: JSON.stringify({ item_id: "ps5", quantity: 1 }),
        ...init,
      });
      return {
        status: res.status,
        location: res.headers.get("location"),
        replayed: res.headers.get("idempotent-replayed"),
        body: await res.json(),
      };
    } catch (err) {
      return { error: String(err) };
    }
  };
  window.readStock = async (api) => {
    try {
      const res = await fetch(api + "/api/inventory/ps5");
      return { status: res.status, body: await res.json() };
    } catch (err) {
      return { error: String(err) };
    }
  };
</script></body></html>`;

function startStorefront(host = "localhost") {
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: () => new Response(STOREFRONT_HTML, { headers: { "content-type": "text/html; charset=utf-8" } }),
  });
  return { origin: `http://${host}:${server.port}`, stop: () => server.stop(true) };
}

interface Placed {
  status?: number;
  location?: string | null;
  replayed?: string | null;
  body?: { order_id?: string; status?: string };
  error?: string;
}

describe.skipIf(!hasChromium)("a storefront on another origin, in a real browser", () => {
  let sys: UiSystem;
  let browser: Browser;
  let guard: Watch;
  let page: Page;
  const listed = startStorefront();
  const unlisted = startStorefront();
  /** Valerix's own host, another port: a different origin but the same site. */
  const sameSite = startStorefront("127.0.0.1");

  beforeAll(async () => {
    sys = await startUiSystem({ backend: FAST_BACKEND, env: { CORS_ORIGINS: `${listed.origin},${sameSite.origin}` } });
    browser = await launchBrowser();
    guard = await watch(browser.context, [sys.origin, listed.origin, unlisted.origin, sameSite.origin]);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await sys?.stop();
    for (const shop of [listed, unlisted, sameSite]) shop.stop();
  });

  beforeEach(async () => {
    guard.reset();
    page = await browser.context.newPage();
  });

  afterEach(async () => {
    await page.close();
    expect(guard.foreign).toEqual([]);
  });

  const stock = async () => (await sys.inventory.port.get("ps5"))!.quantity;
  const orderCount = async () => (await sys.orders.service.list({ limit: 100 })).length;
  const openShop = async (origin: string) => {
    const res = await page.goto(`${origin}/`);
    expect(res?.status()).toBe(200);
  };
  const place = (key: string, init: Record<string, unknown> = {}) =>
    page.evaluate(([api, k, i]) => (window as unknown as { placeOrder(a: string, k: string, i: unknown): Promise<Placed> }).placeOrder(api, k, i), [sys.origin, key, init] as const);

  test(
    "a listed storefront places an order with fetch and reads the answer, Location and the replay header",
    async () => {
      await openShop(listed.origin);
      const stockBefore = await stock();
      const key = `shop-${crypto.randomUUID()}`;
      const first = await place(key);
      expect(first.error).toBeUndefined();
      expect(first.status).toBe(201);
      expect(first.body?.status).toBe("confirmed");
      expect(first.location).toBe(`/api/orders/${first.body?.order_id}`);
      // A retry with the same key (a shopper's double click) replays it: one order, one deduction.
      const again = await place(key);
      expect(again.status).toBe(201);
      expect(again.replayed).toBe("true");
      expect(again.body?.order_id).toBe(first.body?.order_id);
      expect(await stock()).toBe(stockBefore - 1);
      expect((await sys.orders.service.get(first.body!.order_id!)).status).toBe("confirmed");
      // And it can read the stock.
      const read = await page.evaluate((api) => (window as unknown as { readStock(a: string): Promise<{ status?: number; body?: { quantity?: number } }> }).readStock(api), sys.origin);
      expect(read.status).toBe(200);
      expect(read.body?.quantity).toBe(stockBefore - 1);
      expect(guard.errors).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a storefront whose origin is not listed is stopped by the browser: no order, nothing deducted",
    async () => {
      await openShop(unlisted.origin);
      const [stockBefore, ordersBefore] = [await stock(), await orderCount()];
      const placed = await place(`shop-${crypto.randomUUID()}`);
      expect(placed.status).toBeUndefined();
      expect(placed.error).toContain("Failed to fetch");
      expect(guard.errors.some((e) => /blocked by CORS policy/.test(e))).toBe(true);
      // Reading is stopped too: the answer carries no Access-Control-Allow-Origin for this origin.
      const read = await page.evaluate((api) => (window as unknown as { readStock(a: string): Promise<{ error?: string }> }).readStock(api), sys.origin);
      expect(read.error).toContain("Failed to fetch");
      expect(await stock()).toBe(stockBefore);
      expect(await orderCount()).toBe(ordersBefore);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "credentials are never allowed: the browser withholds the answer, and a cookie that rides along gets the order refused",
    async () => {
      // Cross-site, the browser sends our SameSite=Strict cookies nowhere; it still withholds the answer.
      await openShop(listed.origin);
      const crossSite = await place(`shop-${crypto.randomUUID()}`, { credentials: "include" });
      expect(crossSite.error).toContain("Failed to fetch");
      expect(guard.errors.some((e) => /blocked by CORS policy.*Access-Control-Allow-Credentials/.test(e))).toBe(true);

      // Another port on Valerix's own host is the same site: listed, it orders like any storefront…
      await openShop(sameSite.origin);
      const plain = await place(`shop-${crypto.randomUUID()}`);
      expect(plain.status).toBe(201);
      // …but with credentials the browser would send Valerix's cookies along (same site), so the
      // server refuses the order; the preflight passed, so only the server stands in the way.
      await browser.context.addCookies([
        { name: "valerix_admin", value: "a-token", domain: "127.0.0.1", path: "/", httpOnly: true, sameSite: "Strict" },
      ]);
      try {
        const [stockBefore, ordersBefore] = [await stock(), await orderCount()];
        const withCookie = await place(`shop-${crypto.randomUUID()}`, { credentials: "include" });
        expect(withCookie.error).toContain("Failed to fetch");
        expect(await stock()).toBe(stockBefore);
        expect(await orderCount()).toBe(ordersBefore);
      } finally {
        await browser.context.clearCookies();
      }
    },
    TEST_TIMEOUT_MS,
  );
});
