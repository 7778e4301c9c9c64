import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { createLogger } from "../platform/logging.ts";
import { VERSION } from "../src/version.ts";
import { BACKENDS, startSystem, type TestSystem } from "./support/system.ts";
import { captureLines, duplicateKeys } from "./support/log-lines.ts";

describe("the duplicate-key scan", () => {
  test("finds a key named twice at the top level or nested, and nothing in clean lines", () => {
    expect(duplicateKeys('{"role":"all","msg":"x","role":"all"}')).toEqual(["role"]);
    expect(duplicateKeys('{"a":{"b":1,"c":"\\",\\"b\\":","b":2},"d":[{"e":1},{"e":2}]}')).toEqual(["a.b"]);
    expect(duplicateKeys('{"a":"{\\"a\\":1}","b":[1,{"a":1}],"c":{"a":{"a":1}}}')).toEqual([]);
  });
});

/**
 * A short run of both roles, split over HTTP (in this process, each with its own logger): orders
 * confirmed, one replayed, one rejected (422), and one while chaos makes inventory answer 500.
 * Every line either role writes is read back raw.
 */
describe("log lines of a short run", () => {
  const ADMIN = "logs-admin-token";
  const SECRET_DB_PASSWORD = "s3cret-pw";
  const inventoryOut = captureLines();
  const ordersOut = captureLines();
  let inventory: TestSystem;
  let orders: TestSystem;
  const backend = BACKENDS[BACKENDS.length - 1]!;
  const requests: Array<{ role: string; status: number; requestId: string }> = [];

  const post = async (sys: TestSystem, path: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await sys.post(path, body, { authorization: `Bearer ${ADMIN}`, ...headers });
    requests.push({ role: sys.config.role, status: res.status, requestId: res.headers.get("x-request-id")! });
    return res;
  };

  beforeAll(async () => {
    const env = { ADMIN_TOKEN: ADMIN, CSRF_SECRET: "csrf-secret-value", RETRY_BASE_DELAY_MS: "50", RETRY_MAX_DELAY_MS: "200" };
    inventory = await startSystem(backend, { ...env, VALERIX_ROLE: "inventory" }, { logger: createLogger("info", { role: "inventory" }, inventoryOut) });
    orders = await startSystem(
      backend,
      { ...env, VALERIX_ROLE: "orders", INVENTORY_URL: inventory.url, INVENTORY_TOKEN: ADMIN, REDIS_TOKEN: "redis-token-value" },
      { logger: createLogger("info", { role: "orders" }, ordersOut) },
    );
    const itemId = `logs-${randomUUID().slice(0, 8)}`;
    expect((await post(inventory, "/api/admin/inventory", { item_id: itemId, item_name: itemId, quantity: 5 })).status).toBe(201);
    const key = `logs-${randomUUID()}`;
    expect((await post(orders, "/api/orders", { item_id: itemId, quantity: 1 }, { "idempotency-key": key })).status).toBe(201);
    expect((await post(orders, "/api/orders", { item_id: itemId, quantity: 1 }, { "idempotency-key": key })).status).toBe(201);
    expect((await post(orders, "/api/orders", { item_id: itemId, quantity: 2 }, { "idempotency-key": `logs-${randomUUID()}` })).status).toBe(201);
    expect((await post(orders, "/api/orders", { item_id: itemId, quantity: 50 }, { "idempotency-key": `logs-${randomUUID()}` })).status).toBe(422);
    expect((await post(inventory, "/api/admin/chaos", { crash_rate: 1, crash_mode: 500, latency: false })).status).toBe(200);
    expect((await post(orders, "/api/orders", { item_id: itemId, quantity: 1 }, { "idempotency-key": `logs-${randomUUID()}` })).status).toBe(202);
    // The retry worker meets the 500 too, and logs (if at all) with the order's ids.
    await Bun.sleep(300);
    await fetch(`${inventory.url}/api/admin/chaos`, { method: "DELETE", headers: { authorization: `Bearer ${ADMIN}` } });
  }, 120_000);

  afterAll(async () => {
    await orders?.stop();
    await inventory?.stop();
  });

  const all = () => [...inventoryOut.lines.map((l) => ["inventory", l] as const), ...ordersOut.lines.map((l) => ["orders", l] as const)];
  const parsed = (): Array<Record<string, unknown> & { role: string }> => all().map(([role, l]) => ({ ...(JSON.parse(l) as Record<string, unknown>), role }));

  test("every line is JSON with no key twice", () => {
    expect(all().length).toBeGreaterThan(10);
    const dupes = all().flatMap(([role, l]) => duplicateKeys(l).map((k) => `${role}: ${k} in ${l.slice(0, 200)}`));
    expect(dupes).toEqual([]);
  });

  test("every line written while serving a request carries its request_id; order lines carry the order_id", () => {
    const lines = parsed();
    // Only the start-up line is written outside any request (or retry of one).
    const outside = lines.filter((l) => l.request_id === undefined).map((l) => `${l.role}: ${l.msg}`);
    expect(outside).toEqual(["inventory: valerix listening", "orders: valerix listening"]);
    for (const r of requests) {
      const line = lines.find((l) => l.role === r.role && l.msg === "request" && l.request_id === r.requestId);
      expect({ request: r, logged: line?.status }).toEqual({ request: r, logged: r.status });
    }
    const orderLines = lines.filter((l) => l.role === "orders" && l.msg === "request" && l.route === "/api/orders");
    expect(orderLines.map((l) => l.status)).toEqual([201, 201, 201, 422, 202]);
    for (const l of orderLines) expect(l.order_id).toEqual(expect.stringMatching(/^[0-9a-f-]{36}$/));
    // The replay names the order it replayed.
    expect(orderLines[1]!.order_id).toBe(orderLines[0]!.order_id);
    // Inventory's side of each order, the injected 500 included, has the order's request and order ids.
    const deducts = lines.filter((l) => l.role === "inventory" && l.msg === "request" && l.route === "/api/inventory/deduct");
    expect(deducts.map((l) => l.status)).toContain(500);
    for (const l of orderLines.filter((o) => o.status !== 201 || o !== orderLines[1])) {
      expect(deducts.find((d) => d.request_id === l.request_id)?.order_id).toBe(l.order_id as string);
    }
  });

  test("the start-up line has the version and the effective configuration, secrets redacted", () => {
    const text = all().map(([, l]) => l).join("\n");
    for (const secret of [ADMIN, "csrf-secret-value", "redis-token-value", SECRET_DB_PASSWORD]) expect(text).not.toContain(secret);
    const start = parsed().find((l) => l.role === "orders" && l.msg === "valerix listening")!;
    expect(start.version).toBe(VERSION);
    const config = start.config as Record<string, unknown>;
    expect(config).toMatchObject({ role: "orders", adminToken: "[redacted]", inventoryToken: "[redacted]", redisToken: "[redacted]", csrfSecret: "[redacted]", inventoryUrl: inventory.url, redisUrl: null });
    if (backend === "postgres") expect(String(config.databaseUrl)).toStartWith("postgres");
  });
});

describe("webhook secrets in the log", () => {
  test("a registration, a rotation and deliveries signed with both secrets leave no secret in any line, even at debug", async () => {
    const out = captureLines();
    const ADMIN = "logs-webhook-admin";
    const sys = await startSystem(BACKENDS[0]!, { ADMIN_TOKEN: ADMIN }, { logger: createLogger("debug", { role: "all" }, out) });
    let received = 0;
    const rx = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => (received++, new Response(null, { status: 204 })) });
    try {
      const admin = { authorization: `Bearer ${ADMIN}` };
      const created = await sys.post("/api/admin/webhooks", { url: `http://127.0.0.1:${rx.port}/hooks`, events: ["*"] }, { ...admin, "idempotency-key": randomUUID() });
      const first = ((await created.json()) as { id: string; secret: string });
      const rotated = await sys.post(`/api/admin/webhooks/${first.id}/rotate-secret`, {}, { ...admin, "idempotency-key": randomUUID() });
      const second = ((await rotated.json()) as { secret: string }).secret;
      const item = `logs-${randomUUID().slice(0, 8)}`;
      await sys.post("/api/admin/inventory", { item_id: item, item_name: item, quantity: 2 }, admin);
      await sys.post("/api/orders", { item_id: item, quantity: 1 }, { "idempotency-key": randomUUID() });
      for (let i = 0; i < 200 && received < 2; i++) await Bun.sleep(25);
      expect(received).toBe(2);
      expect(out.lines.length).toBeGreaterThan(0);
      const text = out.lines.join("\n");
      for (const secret of [first.secret, second]) {
        expect(text).not.toContain(secret);
        expect(text).not.toContain(secret.slice("whsec_".length));
      }
      expect(text).not.toContain("whsec_");
    } finally {
      rx.stop(true);
      await sys.stop();
    }
  });
});
