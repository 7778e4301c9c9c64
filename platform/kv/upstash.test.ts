import { afterAll, afterEach, beforeAll, describe, expect, it } from "bun:test";
import { Redis } from "@upstash/redis";
import { createUpstashStore } from "./upstash.ts";
import type { KeyValueStore } from "./kv.port.ts";
import { hasRedis, testRedis } from "../../tests/support/services.ts";
import { startUpstashEndpoint } from "../../tests/support/upstash-endpoint.ts";

async function elapsed(run: () => unknown): Promise<number> {
  const t0 = performance.now();
  await run();
  return performance.now() - t0;
}

describe("upstash adapter when the REST endpoint misbehaves", () => {
  it("rejects with KV_UNAVAILABLE when nothing listens", async () => {
    const kv = createUpstashStore("http://127.0.0.1:1", "t");
    const ms = await elapsed(() => expect(kv.get("a")).rejects.toMatchObject({ code: "KV_UNAVAILABLE" }));
    expect(ms).toBeLessThan(3_000);
  });

  it("makes exactly one attempt per call, leaving retries to the resilience layer", async () => {
    let connections = 0;
    // Accepts and hangs up at once: a network failure on every attempt.
    const resetter = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(socket) {
          connections++;
          socket.end();
        },
        data() {},
      },
    });
    try {
      const kv = createUpstashStore(`http://127.0.0.1:${resetter.port}`, "t");
      await expect(kv.incr("n")).rejects.toMatchObject({ code: "KV_UNAVAILABLE" });
      expect(connections).toBe(1);
    } finally {
      resetter.stop(true);
    }
  });

  it("gives up on a request that gets no answer within the request timeout", async () => {
    const silent = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Promise<Response>(() => {}) });
    try {
      const kv = createUpstashStore(`http://127.0.0.1:${silent.port}`, "t", { requestTimeoutMs: 300 });
      const ms = await elapsed(() => expect(kv.ping()).rejects.toMatchObject({ code: "KV_UNAVAILABLE" }));
      expect(ms).toBeLessThan(3_000);
    } finally {
      await silent.stop(true);
    }
  });

  it("treats an answer that is not JSON (a proxy's error page) as unavailable", async () => {
    const proxy = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => new Response("<html>502 Bad Gateway</html>", { status: 502 }),
    });
    try {
      const kv = createUpstashStore(`http://127.0.0.1:${proxy.port}`, "t");
      await expect(kv.get("a")).rejects.toMatchObject({ code: "KV_UNAVAILABLE" });
    } finally {
      await proxy.stop(true);
    }
  });

  it("refuses a URL the client cannot use with KV_CONFIG", () => {
    expect(() => createUpstashStore("not a url", "t")).toThrow(expect.objectContaining({ code: "KV_CONFIG" }));
  });
});

describe.skipIf(!hasRedis)("upstash adapter and endpoint over real Redis", () => {
  const token = `token-${crypto.randomUUID()}`;
  const { url: redisUrl, prefix } = testRedis();
  let endpoint: { url: string; stop(): Promise<void> };
  let kv: KeyValueStore;
  let client: Redis;
  const used: string[] = [];
  const key = (name: string) => {
    used.push(prefix + name);
    return prefix + name;
  };

  beforeAll(async () => {
    endpoint = await startUpstashEndpoint(redisUrl, token);
    kv = createUpstashStore(endpoint.url, token, { prefix });
    client = new Redis({ url: endpoint.url, token, retry: { retries: 0 }, enableTelemetry: false });
  });
  afterEach(async () => {
    if (used.length > 0) await client.del(...used.splice(0));
  });
  afterAll(async () => {
    await endpoint?.stop();
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${endpoint.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });

  it("rejects a wrong token with 401, which the adapter reports as a refused command", async () => {
    const res = await fetch(endpoint.url, { method: "POST", body: JSON.stringify(["PING"]) });
    expect(res.status).toBe(401);
    expect(await res.json()).toHaveProperty("error");
    const wrong = createUpstashStore(endpoint.url, "wrong-token", { prefix });
    await expect(wrong.get("a")).rejects.toMatchObject({ code: "KV_COMMAND_FAILED" });
  });

  it("keeps stored values out of error messages", async () => {
    used.push(`${prefix}secretish`);
    await kv.set("secretish", "not-a-number-but-private");
    const err = (await kv.incr("secretish").catch((e) => e)) as Error;
    expect(err).toMatchObject({ code: "KV_COMMAND_FAILED" });
    expect(err.message).not.toContain("private");
  });

  it("answers a single command with {result}, base64-encoding strings only when asked", async () => {
    const k = key("enc");
    await post("/", ["SET", k, "héllo"]);
    const plain = await post("/", ["GET", k]);
    expect(await plain.json()).toEqual({ result: "héllo" });
    const encoded = await post("/", ["GET", k], { "upstash-encoding": "base64" });
    expect(await encoded.json()).toEqual({ result: Buffer.from("héllo").toString("base64") });
    const counted = await post("/", ["STRLEN", k], { "upstash-encoding": "base64" });
    expect(await counted.json()).toEqual({ result: 6 });
  });

  it("answers an error reply with 400 {error}", async () => {
    const res = await post("/", ["SET", key("x")]);
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatch(/wrong number of arguments/i);
    expect((await post("/", { not: "a command" })).status).toBe(400);
  });

  it("runs a pipeline in order with one {result} or {error} per command", async () => {
    const k = key("pipe");
    const out = await client
      .pipeline()
      .set(k, "text")
      .incr(k)
      .get(k)
      .exec({ keepErrors: true });
    expect(out.map((r) => r.error ?? null)).toEqual([null, expect.stringMatching(/not an integer/), null]);
    expect(out[0]!.result).toBe("OK");
    expect(out[2]!.result).toBe("text");
  });

  it("runs multi-exec atomically, apart from requests served meanwhile", async () => {
    const k = key("tx");
    const other = key("other");
    await client.set(other, "mine");
    const [tx, ...reads] = await Promise.all([
      client.multi().set(k, 1).incr(k).incr(k).exec(),
      ...Array.from({ length: 5 }, () => client.get(other)),
    ]);
    expect(tx).toEqual(["OK", 2, 3]);
    // On a shared connection these would have been queued into the transaction ("QUEUED").
    expect(reads).toEqual(Array(5).fill("mine"));
  });

  it("aborts a whole transaction when Redis refuses to queue one of its commands", async () => {
    const k = key("aborted");
    const res = await post("/multi-exec", [["SET", k, "v"], ["SET", k]]);
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatch(/wrong number of arguments|EXECABORT/i);
    expect(await client.get(k)).toBeNull();
  });

  it("reports a command failing inside EXEC as that command's {error}", async () => {
    const k = key("exec-error");
    const res = await post("/multi-exec", [["SET", k, "text"], ["INCR", k], ["GET", k]]);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Array<{ result?: unknown; error?: string }>;
    expect(body[0]).toEqual({ result: "OK" });
    expect(body[1]!.error).toMatch(/not an integer/);
    expect(body[2]).toEqual({ result: "text" });
  });
});
