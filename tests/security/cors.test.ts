import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CORS_MAX_AGE_S } from "../../src/http/cors.ts";
import { newKey, startSystem, type TestSystem } from "../support/system.ts";
import { CONFIG_BACKEND, expectRefusal, expectSecurityHeaders, snapshot } from "./support.ts";

/**
 * CORS over real HTTP, with the headers a browser would send (the browser itself is in
 * tests/browser/storefront.test.ts): off by default; with CORS_ORIGINS, a listed storefront may
 * place and read orders and read stock, and nothing else changes for anyone else.
 */
const SHOP = "http://shop.example:8080";
const TOKEN = "cors-admin-token-0123456789";
const order = { item_id: "ps5", quantity: 1 };
const typeOf = async (res: Response, context: string) => String((await expectRefusal(res, context)).type).split("/").pop();
const corsHeaders = (res: Response) => {
  const names: string[] = [];
  res.headers.forEach((_, name) => void (name.startsWith("access-control-") && names.push(name)));
  return names;
};

/** What a browser on `origin` sends with `fetch` to another site. */
const crossSite = (origin: string, extra: Record<string, string> = {}) => ({ origin, "sec-fetch-site": "cross-site", "sec-fetch-mode": "cors", ...extra });
const preflightFor = (sys: TestSystem, path: string, origin: string, method = "POST", headers = "content-type,idempotency-key") =>
  fetch(sys.url + path, { method: "OPTIONS", headers: { ...crossSite(origin), "access-control-request-method": method, "access-control-request-headers": headers } });
const placeOrder = (sys: TestSystem, headers: Record<string, string>) =>
  fetch(`${sys.url}/api/orders`, { method: "POST", headers: { "content-type": "application/json", "idempotency-key": newKey("cors"), ...headers }, body: JSON.stringify(order) });

describe("without CORS_ORIGINS: off", () => {
  let sys: TestSystem;
  beforeAll(async () => {
    sys = await startSystem(CONFIG_BACKEND, { RATE_LIMIT_PER_MIN: "0" });
  }, 120_000);
  afterAll(async () => {
    await sys?.stop();
  });

  test("no preflight is answered and a cross-site order is refused, with no CORS header", async () => {
    const pre = await preflightFor(sys, "/api/orders", SHOP);
    expect(pre.status).toBe(404);
    expect(corsHeaders(pre)).toEqual([]);
    const res = await placeOrder(sys, crossSite(SHOP));
    expect(corsHeaders(res)).toEqual([]);
    expect(await typeOf(res, "cross-site order")).toBe("cross-site-request");
    expect((await sys.get("/api/inventory", { origin: SHOP })).headers.get("vary")).toBeNull();
  });
});

describe(`with CORS_ORIGINS=${SHOP}`, () => {
  let sys: TestSystem;
  beforeAll(async () => {
    sys = await startSystem(CONFIG_BACKEND, { RATE_LIMIT_PER_MIN: "0", ADMIN_TOKEN: TOKEN, CORS_ORIGINS: `https://other.example,${SHOP}` });
  }, 120_000);
  afterAll(async () => {
    await sys?.stop();
  });

  test("the storefront's preflight for an order is answered: its origin, POST, the two headers, a max-age, no credentials", async () => {
    const res = await preflightFor(sys, "/api/orders", SHOP);
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(SHOP);
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
    expect(res.headers.get("access-control-allow-headers")).toBe("content-type, idempotency-key");
    expect(res.headers.get("access-control-max-age")).toBe(String(CORS_MAX_AGE_S));
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    expect(res.headers.get("vary")).toContain("Origin");
    expectSecurityHeaders(res, "preflight");
  });

  test("its order is served, and its script may read Location, Idempotent-Replayed and the body", async () => {
    const key = newKey("shop");
    const send = () => placeOrder(sys, crossSite(SHOP, { "idempotency-key": key }));
    const first = await send();
    expect(first.status).toBe(201);
    expect(first.headers.get("access-control-allow-origin")).toBe(SHOP);
    expect(first.headers.get("access-control-allow-credentials")).toBeNull();
    const exposed = first.headers.get("access-control-expose-headers")!.split(", ");
    expect(exposed).toContain("location");
    expect(exposed).toContain("idempotent-replayed");
    expect(first.headers.get("vary")).toContain("Origin");
    const created = await first.json();
    const again = await send();
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect((await again.json()).order_id).toBe(created.order_id);
    // Reading it back, and the stock.
    const read = await sys.get(first.headers.get("location")!, crossSite(SHOP));
    expect(read.status).toBe(200);
    expect(read.headers.get("access-control-allow-origin")).toBe(SHOP);
    for (const path of ["/api/inventory", "/api/inventory/ps5", "/api/orders?limit=5"]) {
      expect((await sys.get(path, crossSite(SHOP))).headers.get("access-control-allow-origin"), path).toBe(SHOP);
    }
    // Refusals are readable too, so the storefront can show why.
    const refused = await sys.get("/api/inventory/no-such-item", crossSite(SHOP));
    expect(refused.status).toBe(404);
    expect(refused.headers.get("access-control-allow-origin")).toBe(SHOP);
  });

  test("an origin not listed gets no CORS header: its preflight is a 403, its order is refused as before", async () => {
    const before = await snapshot(sys);
    for (const origin of ["https://evil.example", "http://shop.example:8081", "https://shop.example:8080", "null"]) {
      const pre = await preflightFor(sys, "/api/orders", origin);
      expect(pre.status, origin).toBe(403);
      expect(corsHeaders(pre), origin).toEqual([]);
      const res = await placeOrder(sys, crossSite(origin));
      expect(corsHeaders(res), origin).toEqual([]);
      expect(await typeOf(res, origin)).toBe("cross-site-request");
      expect(corsHeaders(await sys.get("/api/inventory", crossSite(origin))), origin).toEqual([]);
    }
    expect(await snapshot(sys)).toEqual(before);
  });

  test("answers on the public API vary by Origin even when none was sent (caches must not mix them)", async () => {
    for (const path of ["/api/inventory", "/api/inventory/ps5", "/api/orders"]) {
      const res = await sys.get(path);
      expect(res.headers.get("vary"), path).toContain("Origin");
      expect(corsHeaders(res), path).toEqual([]);
    }
  });

  test("nothing else opens to the storefront: admin, inventory's writes, health, the pages", async () => {
    const before = await snapshot(sys);
    for (const path of ["/api/admin/inventory", "/api/admin/chaos", "/api/inventory/deduct", "/api/inventory/release", "/api/inventory/health", "/ui/orders", "/metrics"]) {
      const pre = await preflightFor(sys, path, SHOP);
      expect(corsHeaders(pre), path).toEqual([]);
      expect(pre.status, path).not.toBe(204);
    }
    // Even with the admin token or the service token in hand, a cross-site write is refused.
    const bearer = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
    const adminItem = await fetch(`${sys.url}/api/admin/inventory`, { method: "POST", headers: { ...crossSite(SHOP), ...bearer }, body: JSON.stringify({ item_id: "cors-item", item_name: "x", quantity: 1 }) });
    expect(await typeOf(adminItem, "admin")).toBe("cross-site-request");
    expect(corsHeaders(adminItem)).toEqual([]);
    const deduct = await fetch(`${sys.url}/api/inventory/deduct`, { method: "POST", headers: { ...crossSite(SHOP), ...bearer }, body: JSON.stringify({ order_id: crypto.randomUUID(), item_id: "ps5", quantity: 1 }) });
    expect(await typeOf(deduct, "deduct")).toBe("cross-site-request");
    expect(await snapshot(sys)).toEqual(before);
  });

  test("a cross-site order that carries a cookie (the admin cookie, a session) is refused, from a listed origin too", async () => {
    const before = await snapshot(sys);
    for (const cookie of [`valerix_admin=${TOKEN}`, "valerix_csrf=abcdefghijklmnop1234"]) {
      for (const site of ["cross-site", "same-site"]) {
        const res = await placeOrder(sys, { ...crossSite(SHOP), "sec-fetch-site": site, cookie });
        expect(await typeOf(res, `${site} ${cookie}`)).toBe("cross-site-request");
      }
    }
    expect(await snapshot(sys)).toEqual(before);
  });

  test("the pages keep their own forgery check: the storefront's origin cannot post the order form", async () => {
    const before = await snapshot(sys);
    const res = await fetch(`${sys.url}/ui/orders`, {
      method: "POST",
      headers: { ...crossSite(SHOP), "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ item_id: "ps5", quantity: "1", idempotency_key: newKey("ui") }),
    });
    expect(res.status).toBe(403);
    expect(corsHeaders(res)).toEqual([]);
    expect(await snapshot(sys)).toEqual(before);
  });

  test("oversized and malformed orders from the storefront are refused readably", async () => {
    const big = await fetch(`${sys.url}/api/orders`, {
      method: "POST",
      headers: { ...crossSite(SHOP), "content-type": "application/json", "idempotency-key": newKey() },
      body: JSON.stringify(order).padEnd(2 * 1024 * 1024, " "),
    });
    expect(await typeOf(big, "oversized")).toBe("payload-too-large");
    expect(big.headers.get("access-control-allow-origin")).toBe(SHOP);
    const noKey = await fetch(`${sys.url}/api/orders`, { method: "POST", headers: { ...crossSite(SHOP), "content-type": "application/json" }, body: JSON.stringify(order) });
    expect(await typeOf(noKey, "no key")).toBe("missing-idempotency-key");
    expect(noKey.headers.get("access-control-allow-origin")).toBe(SHOP);
  });
});
