import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { newKey, startSystem, type TestSystem } from "../support/system.ts";
import { CONFIG_BACKEND, rawRequest } from "./support.ts";

/**
 * Every response carries the security headers: successes and refusals, JSON, HTML, scripts,
 * metrics, and the answers made before routing (413, 415, 401, 429). One test per header.
 */
let sys: TestSystem;
const TOKEN = `hdr-${crypto.randomUUID()}`;
const responses: Array<{ what: string; status: number; headers: Headers }> = [];

beforeAll(async () => {
  sys = await startSystem(CONFIG_BACKEND, { NODE_ENV: "production", ADMIN_TOKEN: TOKEN, RATE_LIMIT_PER_MIN: "1" });
  const u = sys.url;
  const add = async (what: string, res: Promise<Response>) => {
    const r = await res;
    await r.arrayBuffer();
    responses.push({ what, status: r.status, headers: r.headers });
  };
  await add("200 JSON", sys.get("/api/inventory"));
  await add("200 HTML", sys.get("/swagger"));
  await add("200 script", sys.get("/swagger/assets/init.js"));
  await add("200 stylesheet", sys.get("/swagger/assets/swagger-ui.css"));
  await add("200 OpenAPI", sys.get("/swagger/json"));
  await add("200 metrics", sys.get("/metrics"));
  await add("200 health", sys.get("/health/live"));
  await add("201 order", sys.post("/api/orders", { item_id: "ps5", quantity: 1 }, { "idempotency-key": newKey() }));
  await add("429 rate limited", sys.post("/api/orders", { item_id: "ps5", quantity: 1 }, { "idempotency-key": newKey() }));
  await add("400 invalid", sys.get("/api/orders?limit=x"));
  await add("401 admin", sys.post("/api/admin/inventory", {}));
  await add("403 cross-site", fetch(`${u}/api/admin/inventory`, { method: "POST", headers: { "sec-fetch-site": "cross-site", authorization: `Bearer ${TOKEN}` } }));
  await add("404 unknown", sys.get("/no/such/thing"));
  await add("413 too large", sys.post("/api/inventory/deduct", " ".repeat(2 * 1024 * 1024)));
  await add("415 not JSON", fetch(`${u}/api/inventory/release`, { method: "POST", headers: { "content-type": "text/plain" }, body: "x" }));
  await add("HEAD", fetch(`${u}/api/inventory`, { method: "HEAD" }));
  await add("OPTIONS", fetch(`${u}/api/orders`, { method: "OPTIONS" }));
}, 120_000);
afterAll(async () => {
  await sys?.stop();
});

const each = (check: (h: Headers, what: string) => void) => {
  expect(responses.length).toBe(17);
  for (const { what, headers } of responses) check(headers, what);
};

describe("security headers on every response", () => {
  test("the sample covers successes and each kind of refusal", () => {
    for (const r of responses) if (/^\d/.test(r.what)) expect(String(r.status), r.what).toBe(r.what.split(" ")[0]!);
    expect(responses.map((r) => r.status)).toEqual(expect.arrayContaining([200, 201, 400, 401, 403, 404, 413, 415, 429]));
  });

  test("X-Content-Type-Options: nosniff", () => each((h, w) => expect(h.get("x-content-type-options"), w).toBe("nosniff")));

  test("X-Frame-Options: DENY", () => each((h, w) => expect(h.get("x-frame-options"), w).toBe("DENY")));

  test("Referrer-Policy: no-referrer", () => each((h, w) => expect(h.get("referrer-policy"), w).toBe("no-referrer")));

  test("Cross-Origin-Opener-Policy and Cross-Origin-Resource-Policy: same-origin", () =>
    each((h, w) => {
      expect(h.get("cross-origin-opener-policy"), w).toBe("same-origin");
      expect(h.get("cross-origin-resource-policy"), w).toBe("same-origin");
    }));

  test("Content-Security-Policy: same-origin scripts only, no inline or eval, no framing, no plugins", () =>
    each((h, w) => {
      const csp = h.get("content-security-policy") ?? "";
      const directives = Object.fromEntries(csp.split(";").map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name, values]));
      expect(directives["default-src"], w).toEqual(["'self'"]);
      expect(directives["script-src"], w).toEqual(["'self'"]);
      expect(directives["frame-ancestors"], w).toEqual(["'none'"]);
      expect(directives["object-src"], w).toEqual(["'none'"]);
      expect(directives["base-uri"], w).toEqual(["'none'"]);
      expect(csp, w).not.toMatch(/unsafe-inline|unsafe-eval|\*|https?:/);
    }));

  test("no X-Powered-By", () => each((h, w) => expect(h.get("x-powered-by"), w).toBeNull()));

  test("every response carries a request id", () => each((h, w) => expect(h.get("x-request-id") ?? "", w).toMatch(/^[\x21-\x7e]{1,128}$/)));

  test("a hostile X-Request-Id is replaced, not echoed", async () => {
    const res = await rawRequest(sys.server.port, `GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: <script>alert(1)</script> x\r\nConnection: close\r\n\r\n`);
    expect(res.headers["x-request-id"]).not.toContain("<script>");
    expect(res.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });
});
