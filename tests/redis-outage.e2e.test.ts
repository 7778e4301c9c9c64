import { afterAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import type { Subprocess } from "bun";
import { createTestDatabase, hasPostgres } from "./support/services.ts";
import { freePort, RoleProcess, waitFor } from "./support/processes.ts";

/**
 * Redis goes away mid-run. The machine's shared Redis is never touched: this suite starts a
 * redis-server of its own on a free port, kills it, and starts it again (empty, as after a crash
 * without persistence). PostgreSQL stays the authority, so nothing accepted may be lost.
 */
const hasRedisServer = Bun.which("redis-server") !== null;

describe.skipIf(!hasPostgres || !hasRedisServer)("Redis outage", () => {
  let redis: Subprocess | undefined;
  let app: RoleProcess | undefined;
  let drop: (() => Promise<void>) | undefined;
  afterAll(async () => {
    await app?.kill("SIGTERM");
    redis?.kill("SIGKILL");
    await drop?.();
  });

  async function startRedis(port: number) {
    redis = Bun.spawn(["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdout: "ignore", stderr: "ignore" });
    const { RedisClient } = await import("bun");
    await waitFor(async () => {
      const c = new RedisClient(`redis://127.0.0.1:${port}`, { connectionTimeout: 500, autoReconnect: false });
      try {
        return (await c.send("PING", [])) === "PONG";
      } finally {
        c.close();
      }
    }, 10_000, "redis-server");
  }

  test("orders are still accepted while Redis is down, and all are confirmed after it returns", async () => {
    const redisPort = await freePort();
    await startRedis(redisPort);
    const db = await createTestDatabase();
    drop = db.drop;
    app = new RoleProcess("all", await freePort(), {
      DATABASE_URL: db.url,
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      ADMIN_TOKEN: "outage-admin",
      RETRY_BASE_DELAY_MS: "100",
      RETRY_MAX_DELAY_MS: "1000",
      INVENTORY_TIMEOUT_MS: "1000",
      SWEEP_STRANDED_AFTER_MS: "2000",
    });
    await app.start();
    const auth = { authorization: "Bearer outage-admin", "content-type": "application/json" };
    const itemId = `out-${randomUUID().slice(0, 8)}`;
    expect((await fetch(`${app.url}/api/admin/inventory`, { method: "POST", headers: auth, body: JSON.stringify({ item_id: itemId, item_name: itemId, quantity: 100 }) })).status).toBe(201);
    const order = () =>
      fetch(`${app!.url}/api/orders`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": randomUUID() },
        body: JSON.stringify({ item_id: itemId, quantity: 1 }),
      });

    // Some orders wait in the Redis stream when it dies.
    expect((await fetch(`${app.url}/api/admin/chaos`, { method: "POST", headers: auth, body: JSON.stringify({ crash_rate: 1, latency: false }) })).status).toBe(200);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await order();
      expect(r.status).toBe(202);
      ids.push(((await r.json()) as { order_id: string }).order_id);
    }
    redis!.kill("SIGKILL");
    await redis!.exited;

    // Redis is gone (with the chaos config, which lived there): orders are still taken.
    for (let i = 0; i < 4; i++) {
      const r = await order();
      expect([201, 202]).toContain(r.status);
      ids.push(((await r.json()) as { order_id: string }).order_id);
    }

    await startRedis(redisPort);
    const final = async () =>
      Promise.all(ids.map(async (id) => ((await (await fetch(`${app!.url}/api/orders/${id}`)).json()) as { status: string }).status));
    await waitFor(async () => (await final()).every((s) => s === "confirmed"), 45_000, "every order confirmed");
    const stock = ((await (await fetch(`${app.url}/api/inventory/${itemId}`)).json()) as { quantity: number }).quantity;
    expect(stock).toBe(100 - ids.length);
  });
});
