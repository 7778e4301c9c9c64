import { describe, expect, test } from "bun:test";
import { CORS_MAX_AGE_S, createCors } from "./cors.ts";

const SHOP = "https://shop.example";
const cors = createCors([SHOP, "http://localhost:5173"])!;

const preflight = (path: string, headers: Record<string, string>) =>
  cors.preflight(new Request(`http://api.example${path}`, { method: "OPTIONS", headers }), path);
const ask = (origin: string, method: string, requestHeaders?: string) => ({
  origin,
  "access-control-request-method": method,
  ...(requestHeaders === undefined ? {} : { "access-control-request-headers": requestHeaders }),
});
const corsHeaders = (res: Response) => {
  const names: string[] = [];
  res.headers.forEach((_, name) => void (name.startsWith("access-control-") && names.push(name)));
  return names;
};

describe("CORS policy", () => {
  test("off without origins", () => {
    expect(createCors([])).toBeUndefined();
  });

  test("a listed origin's preflight for placing an order: 204, its origin, the methods and headers we take, a max-age", () => {
    const res = preflight("/api/orders", ask(SHOP, "POST", "content-type,idempotency-key"))!;
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(SHOP);
    expect(res.headers.get("access-control-allow-methods")).toBe("GET, HEAD, POST");
    expect(res.headers.get("access-control-allow-headers")).toBe("content-type, idempotency-key");
    expect(res.headers.get("access-control-max-age")).toBe(String(CORS_MAX_AGE_S));
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    expect(res.headers.get("vary")).toBe("Origin");
    // Header names in any case and spacing, as browsers and hand-written clients send them.
    expect(preflight("/api/orders/", ask(SHOP, "POST", " Content-Type , Idempotency-Key"))!.status).toBe(204);
    expect(preflight("/api/orders", ask(SHOP, "POST"))!.status).toBe(204);
  });

  test("reads of orders and stock are open to a listed origin; writes there are not", () => {
    for (const path of ["/api/orders/0b6f", "/api/inventory", "/api/inventory/ps5"]) {
      expect(preflight(path, ask(SHOP, "GET", "content-type"))!.status).toBe(204);
      expect(preflight(path, ask(SHOP, "POST"))!.status).toBe(403);
    }
    expect(preflight("/api/orders", ask(SHOP, "DELETE"))!.status).toBe(403);
  });

  test("a refused preflight carries no CORS header: another origin, another header, a near miss of the origin", () => {
    for (const headers of [
      ask("https://evil.example", "POST", "content-type"),
      ask("https://shop.example.evil.example", "POST"),
      ask("http://shop.example", "POST"),
      ask("https://shop.example:8443", "POST"),
      ask("null", "POST"),
      ask(SHOP, "POST", "content-type,authorization"),
      ask(SHOP, "POST", "x-request-id"),
      ask(SHOP, "PUT"),
    ]) {
      const res = preflight("/api/orders", headers)!;
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
      expect(corsHeaders(res), JSON.stringify(headers)).toEqual([]);
    }
  });

  test("no preflight is answered outside the public API: admin, inventory's writes and health, pages, ops", () => {
    for (const path of ["/api/admin/inventory", "/api/admin/chaos", "/api/inventory/deduct", "/api/inventory/release", "/api/inventory/health", "/ui/orders", "/", "/metrics", "/health", "/api/orders/x/y"]) {
      expect(preflight(path, ask(SHOP, "POST", "content-type")), path).toBeUndefined();
      expect(preflight(path, ask(SHOP, "GET")), path).toBeUndefined();
    }
  });

  test("an OPTIONS without Origin or Access-Control-Request-Method is no preflight", () => {
    expect(preflight("/api/orders", { origin: SHOP })).toBeUndefined();
    expect(preflight("/api/orders", { "access-control-request-method": "POST" })).toBeUndefined();
    expect(cors.preflight(new Request("http://api.example/api/orders", { method: "GET", headers: ask(SHOP, "POST") }), "/api/orders")).toBeUndefined();
  });

  test("admits a listed origin's cookie-free call of the public API, and nothing else", () => {
    const req = (method: string, path: string, headers: Record<string, string>) => [new Request(`http://api.example${path}`, { method, headers }), path] as const;
    expect(cors.admits(...req("POST", "/api/orders", { origin: SHOP }))).toBe(true);
    expect(cors.admits(...req("POST", "/api/orders", { origin: SHOP, cookie: "valerix_admin=t" }))).toBe(false);
    expect(cors.admits(...req("POST", "/api/orders", { origin: "https://evil.example" }))).toBe(false);
    expect(cors.admits(...req("POST", "/api/orders", {}))).toBe(false);
    for (const path of ["/api/admin/inventory", "/api/inventory/deduct", "/api/inventory/release", "/api/orders/0b6f"]) {
      expect(cors.admits(...req("POST", path, { origin: SHOP })), path).toBe(false);
    }
  });

  test("decorates answers on the public API: Vary always, the CORS headers for a listed origin only", () => {
    const answer = (method: string, path: string, headers: Record<string, string>, initial: Record<string, string> = {}) => {
      const res = new Response("{}", { headers: initial });
      cors.decorate(new Request(`http://api.example${path}`, { method, headers }), path, res);
      return res;
    };
    const listed = answer("POST", "/api/orders", { origin: SHOP });
    expect(listed.headers.get("access-control-allow-origin")).toBe(SHOP);
    expect(listed.headers.get("access-control-expose-headers")).toBe("location, idempotent-replayed, retry-after, x-request-id");
    expect(listed.headers.get("access-control-allow-credentials")).toBeNull();
    expect(listed.headers.get("vary")).toBe("Origin");
    const other = answer("GET", "/api/inventory/ps5", { origin: "https://evil.example" });
    expect(corsHeaders(other)).toEqual([]);
    expect(other.headers.get("vary")).toBe("Origin");
    expect(answer("GET", "/api/inventory", {}, { vary: "Accept-Encoding" }).headers.get("vary")).toBe("Accept-Encoding, Origin");
    expect(answer("GET", "/api/inventory", { origin: SHOP }, { vary: "origin" }).headers.get("vary")).toBe("origin");
    const admin = answer("GET", "/api/admin/chaos", { origin: SHOP });
    expect(corsHeaders(admin)).toEqual([]);
    expect(admin.headers.get("vary")).toBeNull();
  });
});
