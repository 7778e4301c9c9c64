import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { RedisClient, type Socket, type TCPSocketListener } from "bun";
import type { Clock } from "../clock.ts";
import { hasRedis, testRedis } from "../../tests/support/services.ts";
import { createRedisStreamsQueue } from "./redis-streams.ts";
import type { RetryQueue } from "./queue.port.ts";

const GENEROUS_MS = 10_000;
const TEST_TIMEOUT = 30_000;

// A process that lets one rejection through unhandled would die in production; fail instead.
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
beforeAll(() => void process.on("unhandledRejection", onUnhandled));
afterAll(() => void process.off("unhandledRejection", onUnhandled));

const queues: RetryQueue[] = [];
const track = (q: RetryQueue) => (queues.push(q), q);
afterEach(async () => {
  for (const q of queues.splice(0)) await q.close();
  expect(unhandled).toEqual([]);
});

const since = (t0: number) => performance.now() - t0;
const message = () => ({ orderId: randomUUID(), attempt: 0 });

describe("redis-streams when Redis is not there", () => {
  test("every call rejects promptly with QUEUE_UNAVAILABLE (connection refused)", async () => {
    const q = track(createRedisStreamsQueue("redis://127.0.0.1:1", { consumer: "c", connectTimeoutMs: 500 }));
    const t0 = performance.now();
    await expect(q.enqueue(message())).rejects.toMatchObject({ code: "QUEUE_UNAVAILABLE" });
    await expect(q.receive(1, 5_000)).rejects.toMatchObject({ code: "QUEUE_UNAVAILABLE" });
    await expect(q.depth()).rejects.toMatchObject({ code: "QUEUE_UNAVAILABLE" });
    await expect(q.deadLetters(1)).rejects.toMatchObject({ code: "QUEUE_UNAVAILABLE" });
    expect(since(t0)).toBeLessThan(GENEROUS_MS);
  }, TEST_TIMEOUT);

  test("a server that accepts and never answers cannot hang the connect", async () => {
    // Outside our control in production, so simulated: a TCP listener that swallows everything.
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const q = track(
        createRedisStreamsQueue(`redis://127.0.0.1:${silent.port}`, {
          consumer: "c",
          connectTimeoutMs: 300,
          commandTimeoutMs: 300,
        }),
      );
      const t0 = performance.now();
      await expect(q.enqueue(message())).rejects.toMatchObject({ code: "QUEUE_UNAVAILABLE" });
      await expect(q.receive(1, 200)).rejects.toMatchObject({ code: "QUEUE_UNAVAILABLE" });
      expect(since(t0)).toBeLessThan(GENEROUS_MS);
    } finally {
      silent.stop(true);
    }
  }, TEST_TIMEOUT);
});

describe.skipIf(!hasRedis)("redis-streams on Redis", () => {
  let url: string;
  let prefix: string;
  let raw: RedisClient;
  beforeAll(async () => {
    ({ url, prefix } = testRedis());
    raw = new RedisClient(url);
  });
  afterAll(async () => {
    const keys = (await raw.send("KEYS", [`${prefix}*`])) as string[];
    if (keys.length > 0) await raw.send("DEL", keys);
    raw.close();
  });
  // Each test its own key space inside the file's prefix.
  const fresh = (o: { consumer?: string; clock?: Clock; pollMs?: number } = {}) => {
    const p = `${prefix}${randomUUID().slice(0, 6)}:`;
    return { p, q: track(createRedisStreamsQueue(url, { prefix: p, consumer: o.consumer ?? "c1", visibilityTimeoutMs: 400, ...o })) };
  };

  test("due times follow the injected clock", async () => {
    let now = Date.UTC(2030, 0, 1);
    const clock: Clock = { now: () => now, sleep: async () => {} };
    const { q } = fresh({ clock });
    const m = message();
    await q.enqueue(m, { delayMs: 3_600_000 });
    expect(await q.receive(1, 0)).toEqual([]);
    now += 3_599_999;
    expect(await q.receive(1, 0)).toEqual([]);
    now += 1;
    const [d] = await q.receive(1, 0);
    expect(d!.orderId).toBe(m.orderId);
    await d!.retryLater(60_000);
    now += 60_000;
    const [again] = await q.receive(1, 0);
    expect(again).toMatchObject({ orderId: m.orderId, attempt: 1 });
    await again!.deadLetter("gave up");
    expect((await q.deadLetters(1))[0]!.at).toBe(new Date(now).toISOString());
  }, TEST_TIMEOUT);

  test("dead letters land in <prefix>retry:dead with their reason", async () => {
    const { p, q } = fresh();
    const m = message();
    await q.enqueue({ ...m, requestId: "req-9" });
    const [d] = await q.receive(1, GENEROUS_MS);
    await d!.deadLetter("inventory released the order");
    const entries = (await raw.send("XRANGE", [`${p}retry:dead`, "-", "+"])) as Array<[string, string[]]>;
    expect(entries).toHaveLength(1);
    const fields = entries[0]![1];
    expect(fields).toEqual(expect.arrayContaining(["order", m.orderId, "reason", "inventory released the order", "request", "req-9"]));
  }, TEST_TIMEOUT);

  test("an enqueue on the same queue wakes its own blocking receive", async () => {
    // Were the blocking read on the shared connection, this enqueue would queue behind it.
    const { q } = fresh({ pollMs: 20_000 });
    const m = message();
    const t0 = performance.now();
    const waiting = q.receive(1, 25_000);
    await Bun.sleep(100);
    await q.enqueue(m);
    expect((await waiting).map((d) => d.orderId)).toEqual([m.orderId]);
    expect(since(t0)).toBeLessThan(GENEROUS_MS);
  }, TEST_TIMEOUT);

  test("receives waiting behind another's blocking read get what arrives without waiting out their poll", async () => {
    // One blocking read at a time: the other receives wait for it and must look again as soon
    // as it returns, not after their own 20 s poll.
    const { q } = fresh({ pollMs: 20_000 });
    const arrived: string[] = [];
    for (let i = 0; i < 4; i++) void q.receive(1, 25_000).then((ds) => arrived.push(...ds.map((d) => d.orderId)));
    await Bun.sleep(100); // real: lets the receives reach their waits, one of them Redis's BLOCK
    const t0 = performance.now();
    const ids = [message(), message(), message()];
    for (const m of ids) await q.enqueue(m);
    while (arrived.length < ids.length && since(t0) < GENEROUS_MS) await Bun.sleep(10);
    expect(arrived.toSorted()).toEqual(ids.map((m) => m.orderId).toSorted());
    expect(since(t0)).toBeLessThan(GENEROUS_MS);
  }, TEST_TIMEOUT);

  test("losing the stream (flush, restart) loses its messages but not the queue", async () => {
    const { p, q } = fresh();
    const lost = message();
    await q.enqueue(lost);
    await raw.send("DEL", [`${p}retry:stream`]);
    // The record of the lost message is stale now: enqueuing it again (the sweeper) must work.
    await q.enqueue(lost);
    const [d] = await q.receive(1, GENEROUS_MS);
    expect(d!.orderId).toBe(lost.orderId);
    await d!.ack();
    await raw.send("DEL", [`${p}retry:stream`, `${p}retry:messages`]);
    const next = message();
    await q.enqueue(next);
    expect((await q.receive(1, GENEROUS_MS)).map((x) => x.orderId)).toEqual([next.orderId]);
  }, TEST_TIMEOUT);

  test("a connection that stops passing data mid-use cannot hang a call", async () => {
    const relay = startRelay(new URL(url));
    try {
      const viaRelay = new URL(url);
      viaRelay.port = String(relay.port);
      const p = `${prefix}${randomUUID().slice(0, 6)}:`;
      const q = track(
        createRedisStreamsQueue(viaRelay.toString(), { prefix: p, consumer: "c", connectTimeoutMs: 300, commandTimeoutMs: 300 }),
      );
      await q.depth(); // connected, handshake done
      relay.freeze();
      const t0 = performance.now();
      await expect(q.enqueue(message())).rejects.toMatchObject({ code: "QUEUE_UNAVAILABLE" });
      await expect(q.receive(1, 200)).rejects.toMatchObject({ code: "QUEUE_UNAVAILABLE" });
      await expect(q.depth()).rejects.toMatchObject({ code: "QUEUE_UNAVAILABLE" });
      expect(since(t0)).toBeLessThan(GENEROUS_MS);
      relay.thaw();
      expect(await q.depth()).toMatchObject({ inFlight: 0 });
    } finally {
      relay.stop();
    }
  }, TEST_TIMEOUT);

  test("a connection cut during a blocking receive rejects it; the next call reconnects", async () => {
    const relay = startRelay(new URL(url));
    try {
      const viaRelay = new URL(url);
      viaRelay.port = String(relay.port);
      const p = `${prefix}${randomUUID().slice(0, 6)}:`;
      const q = track(createRedisStreamsQueue(viaRelay.toString(), { prefix: p, consumer: "c", pollMs: 20_000 }));
      await q.depth(); // connected
      const t0 = performance.now();
      const waiting = q.receive(1, 25_000);
      await Bun.sleep(200);
      relay.cut();
      await expect(waiting).rejects.toMatchObject({ code: "QUEUE_UNAVAILABLE" });
      expect(since(t0)).toBeLessThan(GENEROUS_MS);
      const m = message();
      await q.enqueue(m);
      expect((await q.receive(1, GENEROUS_MS)).map((d) => d.orderId)).toEqual([m.orderId]);
    } finally {
      relay.stop();
    }
  }, TEST_TIMEOUT);
});

/**
 * A TCP relay in front of Redis whose open connections can be cut: how a network drop or a
 * Redis restart looks to the client. The relay keeps listening, so reconnects succeed. Frozen,
 * it keeps every connection open and passes nothing either way: a partition with TCP still up.
 */
function startRelay(target: URL) {
  type Pair = { client: Socket<Pair>; server?: Socket<unknown>; early: Uint8Array[] };
  const pairs = new Set<Pair>();
  let frozen = false;
  const listener: TCPSocketListener<Pair> = Bun.listen<Pair>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      async open(client) {
        const pair: Pair = { client, early: [] };
        client.data = pair;
        pairs.add(pair);
        pair.server = await Bun.connect({
          hostname: target.hostname,
          port: Number(target.port || 6379),
          socket: {
            data(_s, chunk) {
              if (!frozen) client.write(chunk);
            },
            close() {
              client.end();
            },
            error() {
              client.end();
            },
          },
        });
        for (const chunk of pair.early) pair.server.write(chunk);
      },
      data(client, chunk) {
        if (frozen) return;
        const pair = client.data;
        if (pair.server) pair.server.write(chunk);
        else pair.early.push(new Uint8Array(chunk));
      },
      close(client) {
        client.data?.server?.end();
        pairs.delete(client.data);
      },
      error(client) {
        client.data?.server?.end();
      },
    },
  });
  return {
    port: listener.port,
    freeze() {
      frozen = true;
    },
    thaw() {
      frozen = false;
    },
    cut() {
      for (const pair of pairs) {
        pair.client.end();
        pair.server?.end();
      }
      pairs.clear();
    },
    stop() {
      this.cut();
      listener.stop(true);
    },
  };
}
