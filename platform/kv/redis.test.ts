import { afterEach, describe, expect, it } from "bun:test";
import { RedisClient, type Subprocess } from "bun";
import { createRedisStore } from "./redis.ts";
import type { KeyValueStore } from "./kv.port.ts";
import { freePort } from "../../tests/support/processes.ts";

// Outage tests never touch the shared Redis: they use closed ports, a socket that never answers,
// or a redis-server of their own on a free port, stopped by the test itself.
const hasRedisServer = Bun.which("redis-server") !== null;

const stores: KeyValueStore[] = [];
const open = (...args: Parameters<typeof createRedisStore>) => {
  const s = createRedisStore(...args);
  stores.push(s);
  return s;
};
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

async function elapsed(run: () => unknown): Promise<number> {
  const t0 = performance.now();
  await run();
  return performance.now() - t0;
}

async function eventually<T>(run: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await run();
    } catch (err) {
      if (Date.now() > until) throw err;
      await Bun.sleep(100);
    }
  }
}

class OwnRedis {
  private proc: Subprocess | undefined;
  constructor(readonly port = freePort()) {}
  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    this.proc = Bun.spawn(
      ["redis-server", "--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdout: "ignore", stderr: "ignore" },
    );
    await eventually(async () => {
      const c = new RedisClient(this.url, { autoReconnect: false, enableOfflineQueue: false, connectionTimeout: 500 });
      try {
        await c.connect();
        await c.send("PING", []);
      } finally {
        c.close();
      }
    }, 5_000);
  }
  signal(sig: "SIGSTOP" | "SIGCONT"): void {
    this.proc?.kill(sig);
  }
  async stop(): Promise<void> {
    if (!this.proc) return;
    this.proc.kill("SIGCONT");
    this.proc.kill("SIGKILL");
    await this.proc.exited;
    this.proc = undefined;
  }
}

describe("redis adapter when Redis is unreachable", () => {
  it("rejects at once, with KV_UNAVAILABLE, when nothing listens on the port", async () => {
    const kv = open("redis://127.0.0.1:1");
    const ms = await elapsed(async () => {
      const results = await Promise.allSettled([kv.get("a"), kv.set("b", "v"), kv.incr("c"), kv.ping()]);
      for (const r of results) {
        expect(r.status).toBe("rejected");
        expect((r as PromiseRejectedResult).reason).toMatchObject({ code: "KV_UNAVAILABLE" });
      }
    });
    expect(ms).toBeLessThan(3_000);
    // Still failing fast on later calls, not queued behind a reconnect loop.
    expect(await elapsed(() => expect(kv.get("a")).rejects.toMatchObject({ code: "KV_UNAVAILABLE" }))).toBeLessThan(3_000);
  });

  it("gives up within the connect timeout when the server accepts but never answers", async () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const kv = open(`redis://127.0.0.1:${silent.port}`, { connectTimeoutMs: 500 });
      const ms = await elapsed(() => expect(kv.get("a")).rejects.toMatchObject({ code: "KV_UNAVAILABLE" }));
      expect(ms).toBeLessThan(3_000);
    } finally {
      silent.stop(true);
    }
  });

  it("rejects calls made after close", async () => {
    const kv = open("redis://127.0.0.1:1");
    await kv.close();
    await expect(kv.get("a")).rejects.toMatchObject({ code: "KV_UNAVAILABLE" });
  });
});

describe.skipIf(!hasRedisServer)("redis adapter across outages of its own redis-server", () => {
  const servers: OwnRedis[] = [];
  const server = () => {
    const s = new OwnRedis();
    servers.push(s);
    return s;
  };
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
  });

  it("fails fast while Redis is down and works again once it is back", async () => {
    const redis = server();
    await redis.start();
    const kv = open(redis.url, { prefix: "r:" });
    await kv.set("k", "before");
    expect(await kv.get("k")).toBe("before");

    await redis.stop();
    for (let i = 0; i < 3; i++) {
      const ms = await elapsed(() => expect(kv.get("k")).rejects.toMatchObject({ code: "KV_UNAVAILABLE" }));
      expect(ms).toBeLessThan(3_000);
    }

    await redis.start();
    // A fresh server (no persistence): the store reconnects on its own and serves calls again.
    expect(await eventually(() => kv.get("k"))).toBeNull();
    await kv.set("k", "after");
    expect(await kv.get("k")).toBe("after");
    expect(await kv.incr("n", 10_000)).toBe(1);
  });

  it("starts without Redis and connects once Redis appears", async () => {
    const redis = server();
    const kv = open(redis.url);
    await expect(kv.ping()).rejects.toMatchObject({ code: "KV_UNAVAILABLE" });
    await redis.start();
    await eventually(() => kv.ping());
    expect(await kv.set("k", "v")).toBe(true);
  });

  it("fails a call the stalled server does not answer, then redials once it resumes", async () => {
    const redis = server();
    await redis.start();
    const kv = open(redis.url, { commandTimeoutMs: 300, connectTimeoutMs: 300 });
    await kv.set("k", "v");

    redis.signal("SIGSTOP");
    const ms = await elapsed(() => expect(kv.get("k")).rejects.toMatchObject({ code: "KV_UNAVAILABLE" }));
    expect(ms).toBeLessThan(3_000);
    // The next call dials a new connection, which the stopped server cannot complete either.
    await expect(kv.get("k")).rejects.toMatchObject({ code: "KV_UNAVAILABLE" });

    redis.signal("SIGCONT");
    expect(await eventually(() => kv.get("k"))).toBe("v");
  });
});
