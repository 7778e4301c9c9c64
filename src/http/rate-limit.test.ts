import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ManualClock } from "../../tests/support/manual-clock.ts";
import { clientKey, createRateLimitGate, TokenBuckets } from "./rate-limit.ts";

const order = (path = "/api/orders") => new Request(`http://localhost${path}`, { method: "POST", body: "{}" });

describe("TokenBuckets", () => {
  test("a client gets a burst of perMin, then one token per 60/perMin seconds", async () => {
    const clock = new ManualClock();
    const buckets = new TokenBuckets(6, clock);
    for (let i = 0; i < 6; i++) expect(buckets.take("a").ok).toBe(true);
    expect(buckets.take("a")).toEqual({ ok: false, retryAfterS: 10 });
    await clock.advance(9_000);
    expect(buckets.take("a")).toEqual({ ok: false, retryAfterS: 1 });
    await clock.advance(1_000);
    expect(buckets.take("a")).toEqual({ ok: true, remaining: 0 });
    expect(buckets.take("a").ok).toBe(false);
  });

  test("refusals do not spend tokens, and the bucket never holds more than the burst", async () => {
    const clock = new ManualClock();
    const buckets = new TokenBuckets(2, clock);
    buckets.take("a");
    buckets.take("a");
    for (let i = 0; i < 50; i++) expect(buckets.take("a").ok).toBe(false);
    await clock.advance(30_000);
    expect(buckets.take("a").ok).toBe(true);
    await clock.advance(10 * 60_000);
    expect(buckets.take("a")).toEqual({ ok: true, remaining: 1 });
    expect(buckets.take("a").ok).toBe(true);
    expect(buckets.take("a").ok).toBe(false);
  });

  test("clients do not share buckets", () => {
    const buckets = new TokenBuckets(1, new ManualClock());
    expect(buckets.take("a").ok).toBe(true);
    expect(buckets.take("a").ok).toBe(false);
    expect(buckets.take("b").ok).toBe(true);
  });

  test("over any schedule, a client never gets more than burst + rate × elapsed", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 120 }), fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 300 }), (perMin, gaps) => {
        let now = 0;
        const buckets = new TokenBuckets(perMin, { now: () => now });
        let granted = 0;
        for (const gap of gaps) {
          now += gap;
          if (buckets.take("c").ok) granted++;
        }
        expect(granted).toBeLessThanOrEqual(perMin + Math.floor((now * perMin) / 60_000));
      }),
      { numRuns: 300 },
    );
  });

  test("idle clients are forgotten as traffic passes: memory follows active clients, not all ever seen", async () => {
    const clock = new ManualClock();
    const buckets = new TokenBuckets(10, clock);
    for (let i = 0; i < 1_000; i++) buckets.take(`10.0.${i >> 8}.${i & 255}`);
    expect(buckets.size).toBe(1_000);
    await clock.advance(61_000);
    for (let i = 0; i < 200; i++) buckets.take("active");
    expect(buckets.size).toBe(1);
  });

  test("never tracks more than maxClients, even when every request comes from a new address", () => {
    const buckets = new TokenBuckets(10, new ManualClock(), 500);
    for (let i = 0; i < 20_000; i++) buckets.take(`client-${i}`);
    expect(buckets.size).toBe(500);
  });

  test("forgetting keeps recently seen clients: an active client is not handed a fresh bucket", () => {
    const buckets = new TokenBuckets(1, new ManualClock(), 100);
    expect(buckets.take("busy").ok).toBe(true);
    for (let i = 0; i < 1_000; i++) {
      buckets.take(`drive-by-${i}`);
      expect(buckets.take("busy").ok).toBe(false);
    }
  });
});

describe("clientKey", () => {
  test("IPv4 as is, IPv4-mapped IPv6 as IPv4", () => {
    expect(clientKey("203.0.113.7")).toBe("203.0.113.7");
    expect(clientKey("::ffff:203.0.113.7")).toBe("203.0.113.7");
  });
  test("IPv6 by its /64, however it is written", () => {
    expect(clientKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(clientKey("2001:0db8:0000:0000:ffff:1:2:3")).toBe("2001:db8:0:0::/64");
    expect(clientKey("2001:db8:1:2::")).toBe("2001:db8:1:2::/64");
    expect(clientKey("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
    expect(clientKey("::1")).toBe("0:0:0:0::/64");
    expect(clientKey("2001:db8:0:1::5")).not.toBe(clientKey("2001:db8:0:2::5"));
  });
});

describe("createRateLimitGate", () => {
  test("limits POST /api/orders (with or without the trailing slash) and answers 429 with Retry-After", async () => {
    const gate = createRateLimitGate(2, new ManualClock());
    expect(gate(order(), "203.0.113.7")).toBeUndefined();
    expect(gate(order("/api/orders/?x=1"), "203.0.113.7")).toBeUndefined();
    const refused = gate(order(), "203.0.113.7")!;
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("30");
    expect(refused.headers.get("content-type")).toBe("application/problem+json");
    const body = await refused.json();
    expect(body).toMatchObject({ status: 429, type: "https://valerix.dev/problems/rate-limited", retry_after_s: 30 });
    expect(gate(order(), "203.0.113.8")).toBeUndefined();
  });

  test("leaves every other request alone", () => {
    const gate = createRateLimitGate(1, new ManualClock());
    for (let i = 0; i < 10; i++) {
      expect(gate(new Request("http://localhost/api/orders"), "a")).toBeUndefined();
      expect(gate(new Request("http://localhost/api/orders/x", { method: "POST" }), "a")).toBeUndefined();
      expect(gate(new Request("http://localhost/api/admin/inventory", { method: "POST" }), "a")).toBeUndefined();
      expect(gate(new Request("http://localhost/api/inventory/deduct", { method: "POST" }), "a")).toBeUndefined();
    }
  });

  test("0 per minute turns it off", () => {
    const gate = createRateLimitGate(0);
    for (let i = 0; i < 1_000; i++) expect(gate(order(), "a")).toBeUndefined();
  });

  test("a key function can name the client another way", () => {
    const gate = createRateLimitGate(1, new ManualClock(), { keyOf: (r) => r.headers.get("x-tenant") ?? "none" });
    const as = (tenant: string) => new Request("http://localhost/api/orders", { method: "POST", headers: { "x-tenant": tenant } });
    expect(gate(as("a"), "same-ip")).toBeUndefined();
    expect(gate(as("b"), "same-ip")).toBeUndefined();
    expect(gate(as("a"), "same-ip")?.status).toBe(429);
  });

  test("behind trusted proxies, clients are told apart by X-Forwarded-For; without them the header is ignored", () => {
    const from = (forwardedFor: string) => new Request("http://localhost/api/orders", { method: "POST", headers: { "x-forwarded-for": forwardedFor } });
    const trusting = createRateLimitGate(1, new ManualClock(), { trustedProxies: ["10.0.0.0/8"] });
    expect(trusting(from("203.0.113.7"), "10.0.0.5")).toBeUndefined();
    expect(trusting(from("203.0.113.8"), "10.0.0.5")).toBeUndefined();
    expect(trusting(from("203.0.113.7"), "10.0.0.6")?.status).toBe(429);
    // A spoofed leftmost entry does not buy a fresh bucket.
    expect(trusting(from("198.51.100.1, 203.0.113.7"), "10.0.0.5")?.status).toBe(429);
    // IPv6 clients found through the header are grouped by /64 like peers are.
    expect(trusting(from("2001:db8:1:2::1"), "10.0.0.5")).toBeUndefined();
    expect(trusting(from("2001:db8:1:2::ffff"), "10.0.0.5")?.status).toBe(429);
    // An untrusted peer is the client: its header is ignored.
    expect(trusting(from("203.0.113.9"), "198.51.100.2")).toBeUndefined();
    expect(trusting(from("203.0.113.10"), "198.51.100.2")?.status).toBe(429);

    const plain = createRateLimitGate(1, new ManualClock());
    expect(plain(from("203.0.113.7"), "10.0.0.5")).toBeUndefined();
    expect(plain(from("203.0.113.8"), "10.0.0.5")?.status).toBe(429);
  });

  test("a key function gets the address found through trusted proxies", () => {
    const seen: string[] = [];
    const gate = createRateLimitGate(5, new ManualClock(), { trustedProxies: ["10.0.0.0/8"], keyOf: (_r, ip) => (seen.push(ip), ip) });
    gate(new Request("http://localhost/api/orders", { method: "POST", headers: { "x-forwarded-for": "::ffff:203.0.113.7" } }), "10.0.0.5");
    gate(new Request("http://localhost/api/orders", { method: "POST" }), "10.0.0.5");
    expect(seen).toEqual(["203.0.113.7", "10.0.0.5"]);
  });

  test("a malformed trusted proxy entry is refused when the gate is made", () => {
    expect(() => createRateLimitGate(1, new ManualClock(), { trustedProxies: ["10.0.0.0/33"] })).toThrow(RangeError);
  });
});
