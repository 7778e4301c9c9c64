import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { newKey, startSystem, type TestSystem } from "../support/system.ts";
import { CONFIG_BACKEND, expectRefusal, rawRequest } from "./support.ts";

/**
 * Order creation is limited per client over real HTTP. The refill over time is the unit test's
 * business (with a manual clock); here: the burst, the 429 and its Retry-After, what is not
 * limited, that clients are told apart, and the defaults per environment.
 */
const orderBody = JSON.stringify({ item_id: "ps5", quantity: 1 });
const rawOrder = (port: number, opts: { host?: string; path?: string; localAddress?: string; forwardedFor?: string } = {}) =>
  rawRequest(
    port,
    `POST ${opts.path ?? "/api/orders"} HTTP/1.1\r\nHost: ${opts.host ?? "127.0.0.1"}\r\nContent-Type: application/json\r\nIdempotency-Key: ${newKey("raw")}\r\n${opts.forwardedFor === undefined ? "" : `X-Forwarded-For: ${opts.forwardedFor}\r\n`}Content-Length: ${orderBody.length}\r\nConnection: close\r\n\r\n${orderBody}`,
    { localAddress: opts.localAddress },
  );

describe("RATE_LIMIT_PER_MIN=3", () => {
  let sys: TestSystem;
  beforeAll(async () => {
    sys = await startSystem(CONFIG_BACKEND, { RATE_LIMIT_PER_MIN: "3" });
  }, 120_000);
  afterAll(async () => {
    await sys?.stop();
  });

  test("three orders, then a 429 problem with Retry-After, and no order is made", async () => {
    for (let i = 0; i < 3; i++) expect((await sys.post("/api/orders", orderBody, { "idempotency-key": newKey() })).status).toBe(201);
    const countBefore = (await (await sys.get("/api/orders")).json()).length;
    const res = await sys.post("/api/orders", orderBody, { "idempotency-key": newKey() });
    const problem = await expectRefusal(res, "fourth order");
    expect(res.status).toBe(429);
    expect(problem.type).toEndWith("/rate-limited");
    // 3 a minute: the next token is 20 s away.
    expect(res.headers.get("retry-after")).toBe("20");
    expect(problem.retry_after_s).toBe(20);
    expect((await (await sys.get("/api/orders")).json()).length).toBe(countBefore);
  });

  test("reads, inventory and admin calls are not limited", async () => {
    for (let i = 0; i < 10; i++) {
      expect((await sys.get("/api/orders")).status).toBe(200);
      expect((await sys.get("/api/inventory")).status).toBe(200);
      expect((await sys.post("/api/admin/inventory/ps5/restock", { quantity: 1 })).status).toBe(200);
    }
  });

  test("another client address has its own bucket", async () => {
    // Linux answers for all of 127.0.0.0/8, so a second loopback address is a second client.
    const other = await rawOrder(sys.server.port, { localAddress: "127.0.0.2" });
    expect(other.status).toBe(201);
    expect((await rawOrder(sys.server.port)).status).toBe(429);
  });

  test("a short, missing or broken Host header does not route around the limit", async () => {
    // Elysia once read "/xx/api/orders" with "Host: x" as "/api/orders", past a gate that reads the URL.
    const res = await rawOrder(sys.server.port, { host: "x", path: "/xx/api/orders" });
    expect(res.status).toBe(404);
    expect((await rawOrder(sys.server.port, { host: "x" })).status).toBe(429);
    expect((await rawOrder(sys.server.port, { host: "x", path: "/api/./orders/" })).status).toBe(429);
    // Without a usable Host, Bun hands over a bare path; the gate must still see the order route.
    for (const host of ["", "a/b", "[::1"]) expect((await rawOrder(sys.server.port, { host })).status, host).toBe(429);
    const http10 = await rawRequest(sys.server.port, `POST /api/orders HTTP/1.0\r\nContent-Type: application/json\r\nIdempotency-Key: ${newKey()}\r\nContent-Length: ${orderBody.length}\r\n\r\n${orderBody}`);
    expect(http10.status).toBe(429);
  });
});

describe("behind a proxy (RATE_LIMIT_PER_MIN=1)", () => {
  // The test client connects from 127.0.0.1, which plays the proxy; X-Forwarded-For names the clients behind it.
  const asClient = (sys: TestSystem, forwardedFor: string) => sys.post("/api/orders", orderBody, { "idempotency-key": newKey(), "x-forwarded-for": forwardedFor });

  test("TRUSTED_PROXIES=127.0.0.1: each client named by the proxy has its own bucket, and only the proxy is believed", async () => {
    const sys = await startSystem(CONFIG_BACKEND, { RATE_LIMIT_PER_MIN: "1", TRUSTED_PROXIES: "127.0.0.1" });
    try {
      expect((await asClient(sys, "203.0.113.7")).status).toBe(201);
      expect((await asClient(sys, "203.0.113.8")).status).toBe(201);
      expect((await asClient(sys, "203.0.113.7")).status).toBe(429);
      // A client cannot buy a fresh bucket by writing its own entries left of the proxy's.
      expect((await asClient(sys, "198.51.100.1, 203.0.113.7")).status).toBe(429);
      // Garbage from the proxy falls back to the proxy's own bucket: one more order, then that is spent too.
      expect((await asClient(sys, "not-an-address")).status).toBe(201);
      expect((await asClient(sys, "also, not, addresses")).status).toBe(429);
      // 127.0.0.2 is not a trusted proxy: what it says is ignored, and it is the client.
      expect((await rawOrder(sys.server.port, { localAddress: "127.0.0.2", forwardedFor: "203.0.113.20" })).status).toBe(201);
      expect((await rawOrder(sys.server.port, { localAddress: "127.0.0.2", forwardedFor: "203.0.113.21" })).status).toBe(429);
    } finally {
      await sys.stop();
    }
  }, 120_000);

  test("without TRUSTED_PROXIES the header is ignored: every client behind the proxy shares its bucket", async () => {
    const sys = await startSystem(CONFIG_BACKEND, { RATE_LIMIT_PER_MIN: "1" });
    try {
      expect(sys.config.trustedProxies).toEqual([]);
      expect((await asClient(sys, "203.0.113.7")).status).toBe(201);
      expect((await asClient(sys, "203.0.113.8")).status).toBe(429);
    } finally {
      await sys.stop();
    }
  }, 120_000);
});

describe("defaults", () => {
  test("development: no limit", async () => {
    const sys = await startSystem(CONFIG_BACKEND, { NODE_ENV: "development" });
    try {
      expect(sys.config.rateLimitPerMin).toBe(0);
      for (let i = 0; i < 700; i++) {
        const res = await sys.post("/api/orders", "{}", { "idempotency-key": newKey() });
        expect(res.status).toBe(400);
        await res.arrayBuffer();
      }
    } finally {
      await sys.stop();
    }
  }, 120_000);

  test("production: 600 a minute per client, counting refused requests too", async () => {
    const sys = await startSystem(CONFIG_BACKEND, { NODE_ENV: "production" });
    try {
      expect(sys.config.rateLimitPerMin).toBe(600);
      // The bucket refills at 10 a second while we send, so the first 429 comes a little after 600.
      const started = performance.now();
      let passed = 0;
      for (;;) {
        const res = await sys.post("/api/orders", "{}", { "idempotency-key": newKey() });
        await res.arrayBuffer();
        if (res.status === 429) break;
        expect(res.status).toBe(400);
        passed++;
        if (passed > 2_000) throw new Error("no 429 after 2000 requests");
      }
      const refilled = Math.ceil(((performance.now() - started) / 1000) * 10);
      expect(passed).toBeGreaterThanOrEqual(600);
      expect(passed).toBeLessThanOrEqual(600 + refilled);
    } finally {
      await sys.stop();
    }
  }, 120_000);
});
