import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startSystem, type TestSystem } from "../support/system.ts";
import { CONFIG_BACKEND, rawRequest, snapshot } from "./support.ts";

/**
 * Requests no well-behaved client sends, byte for byte over TCP. Bun's HTTP parser refuses
 * malformed framing itself (a bare 400 or 431, before any of our code runs); whatever it lets
 * through must get a 4xx from us, or be served as the request it is. Never a 5xx.
 */
let sys: TestSystem;
const TOKEN = `frm-${crypto.randomUUID()}`;
beforeAll(async () => {
  sys = await startSystem(CONFIG_BACKEND, { NODE_ENV: "production", ADMIN_TOKEN: TOKEN, RATE_LIMIT_PER_MIN: "0" });
}, 120_000);
afterAll(async () => {
  await sys?.stop();
});

const H = "Host: h.example\r\nConnection: close";
const order = '{"item_id":"ps5","quantity":1}';

/** [name, raw request, statuses allowed]; a 200 only where the request is an honest read. */
const CASES: Array<[string, string, number[]]> = [
  ["a 100 kB path", `GET /api/inventory/${"a".repeat(100_000)} HTTP/1.1\r\n${H}\r\n\r\n`, [400, 414, 431]],
  ["a 200 kB header", `GET /api/orders HTTP/1.1\r\n${H}\r\nX-Big: ${"a".repeat(200_000)}\r\n\r\n`, [400, 431]],
  ["500 headers", `GET /api/orders HTTP/1.1\r\n${H}\r\n${Array.from({ length: 500 }, (_, i) => `X-H${i}: v`).join("\r\n")}\r\n\r\n`, [400, 431]],
  ["two Content-Lengths", `POST /api/orders HTTP/1.1\r\n${H}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}`, [400]],
  ["a Content-Length that is not a number", `POST /api/orders HTTP/1.1\r\n${H}\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}`, [400]],
  ["a negative Content-Length", `POST /api/orders HTTP/1.1\r\n${H}\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}`, [400]],
  ["Content-Length and chunked together (smuggling)", `POST /api/orders HTTP/1.1\r\n${H}\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, [400]],
  ["HTTP/1.0 without Host", `GET /api/inventory HTTP/1.0\r\n\r\n`, [200]],
  ["HTTP/1.1 without Host", `GET /api/inventory HTTP/1.1\r\nConnection: close\r\n\r\n`, [200, 400]],
  ["an empty Host", `GET /api/inventory HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n`, [200, 400]],
  ["a Host with a slash", `GET /api/inventory HTTP/1.1\r\nHost: a/b\r\nConnection: close\r\n\r\n`, [200, 400]],
  ["a Host with an @", `POST /xx/api/orders HTTP/1.1\r\nHost: a@b\r\nContent-Type: application/json\r\nIdempotency-Key: at-host\r\nContent-Length: ${order.length}\r\nConnection: close\r\n\r\n${order}`, [400, 404]],
  ["a broken IPv6 Host", `GET /api/inventory HTTP/1.1\r\nHost: [::1\r\nConnection: close\r\n\r\n`, [200, 400]],
  ["an absolute URI naming another host", `GET http://evil.example/api/inventory HTTP/1.1\r\n${H}\r\n\r\n`, [200]],
  ["TRACE", `TRACE / HTTP/1.1\r\n${H}\r\n\r\n`, [400, 404, 405]],
  ["CONNECT", `CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\nConnection: close\r\n\r\n`, [400, 404, 405]],
  ["OPTIONS *", `OPTIONS * HTTP/1.1\r\n${H}\r\n\r\n`, [400, 404]],
  ["an encoded NUL in the path", `GET /api/inventory/ps5%00 HTTP/1.1\r\n${H}\r\n\r\n`, [400]],
  ["a broken percent-escape", `GET /api/inventory/%zz HTTP/1.1\r\n${H}\r\n\r\n`, [400, 404]],
  ["a truncated UTF-8 escape in the query", `GET /api/orders?status=%E0%A4%A HTTP/1.1\r\n${H}\r\n\r\n`, [400]],
  ["raw UTF-8 in the path", `GET /api/inventory/\xc3\xa9 HTTP/1.1\r\n${H}\r\n\r\n`, [400, 404]],
  ["Expect: 100-continue with 2 MB announced", `POST /api/orders HTTP/1.1\r\n${H}\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2000000\r\n\r\n`, [413]],
  ["two Authorization headers, one right", `POST /api/admin/inventory HTTP/1.1\r\n${H}\r\nAuthorization: Bearer ${TOKEN}\r\nAuthorization: Bearer x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`, [400, 401]],
];

describe("malformed and unusual HTTP", () => {
  test("never a 5xx; our refusals are problems; the server keeps serving and nothing is written", async () => {
    const before = await snapshot(sys);
    for (const [name, request, allowed] of CASES) {
      const res = await rawRequest(sys.server.port, request);
      // A 100-continue interim answer comes first; the final status follows it.
      const final = res.status === 100 ? Number(/HTTP\/1\.1 (\d{3})/.exec(res.body)?.[1]) : res.status;
      expect(allowed, `${name}: got ${final} ${res.body.slice(0, 200)}`).toContain(final);
      if (res.headers["content-type"]?.startsWith("application/problem+json")) expect(JSON.parse(res.body).status, name).toBe(final);
    }
    expect((await sys.get("/health/live")).status).toBe(200);
    expect(await snapshot(sys)).toEqual(before);
  });

  test("an unknown method is dropped or refused, not served", async () => {
    const res = await rawRequest(sys.server.port, `FOO /api/orders HTTP/1.1\r\n${H}\r\n\r\n`).catch(() => ({ status: 0 }));
    expect([0, 400, 404, 405, 501]).toContain(res.status);
    expect((await sys.get("/health/live")).status).toBe(200);
  });
});
