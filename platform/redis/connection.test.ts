import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { hasRedis, testRedis } from "../../tests/support/services.ts";
import { RedisConnection, type RedisConnectionOptions, type RedisErrorMapping } from "./connection.ts";

const GENEROUS_MS = 5_000;
const TEST_TIMEOUT = 30_000;

class Down extends Error {
  readonly code = "DOWN";
}
class Shut extends Error {
  readonly code = "SHUT";
}
const errors: RedisErrorMapping = {
  unavailable: (message, cause) => new Down(message, { cause }),
  closed: () => new Shut("closed"),
};

// A process that lets one rejection through unhandled would die in production; fail instead.
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
beforeAll(() => void process.on("unhandledRejection", onUnhandled));
afterAll(() => void process.off("unhandledRejection", onUnhandled));

const conns: RedisConnection[] = [];
const connect = (url: string, o: Partial<RedisConnectionOptions> = {}) => {
  const c = new RedisConnection(url, { connectTimeoutMs: 1_000, commandTimeoutMs: 1_000, errors, ...o });
  conns.push(c);
  return c;
};
const listeners: Array<{ stop(closeActive: boolean): void }> = [];
afterEach(() => {
  for (const c of conns.splice(0)) c.close();
  for (const l of listeners.splice(0)) l.stop(true);
  expect(unhandled).toEqual([]);
});

const since = (t0: number) => performance.now() - t0;

/** A TCP server that accepts and never answers (a stalled or partitioned Redis), counting the connections it gets. */
function silentServer() {
  let accepted = 0;
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open() {
        accepted++;
      },
      data() {},
    },
  });
  listeners.push(listener);
  return {
    url: `redis://127.0.0.1:${listener.port}`,
    get accepted() {
      return accepted;
    },
  };
}

describe("RedisConnection without a Redis to talk to", () => {
  test("nothing listening: the call rejects at once with the caller's unavailable error", async () => {
    const conn = connect("redis://127.0.0.1:1");
    const t0 = performance.now();
    await expect(conn.send("PING", [])).rejects.toBeInstanceOf(Down);
    await expect(conn.send("PING", [])).rejects.toBeInstanceOf(Down);
    expect(since(t0)).toBeLessThan(GENEROUS_MS);
  });

  test("a server that never answers the handshake costs one connect timeout, not more", async () => {
    const silent = silentServer();
    const conn = connect(silent.url, { connectTimeoutMs: 200 });
    const t0 = performance.now();
    await expect(conn.send("PING", [])).rejects.toBeInstanceOf(Down);
    expect(since(t0)).toBeGreaterThanOrEqual(150);
    expect(since(t0)).toBeLessThan(2_000);
  });

  test("without a reconnect pause every call dials again", async () => {
    const silent = silentServer();
    const conn = connect(silent.url, { connectTimeoutMs: 200 });
    await expect(conn.send("PING", [])).rejects.toBeInstanceOf(Down);
    await expect(conn.send("PING", [])).rejects.toBeInstanceOf(Down);
    expect(silent.accepted).toBe(2);
  });

  test("with a reconnect pause, calls in the pause fail at once and the next one after it dials", async () => {
    const silent = silentServer();
    const conn = connect(silent.url, { connectTimeoutMs: 200, maxReconnectDelayMs: 2_000 });
    await expect(conn.send("PING", [])).rejects.toBeInstanceOf(Down);
    expect(silent.accepted).toBe(1);
    // The first pause is 50 ms; a call made right away must not dial.
    const t0 = performance.now();
    await expect(conn.send("PING", [])).rejects.toThrow("next attempt in");
    expect(since(t0)).toBeLessThan(100);
    expect(silent.accepted).toBe(1);
    await Bun.sleep(100);
    await expect(conn.send("PING", [])).rejects.toBeInstanceOf(Down);
    expect(silent.accepted).toBe(2);
  });

  test("close during a connection attempt rejects the waiting call with the caller's closed error", async () => {
    const silent = silentServer();
    const conn = connect(silent.url, { connectTimeoutMs: 2_000 });
    const t0 = performance.now();
    const waiting = conn.send("PING", []);
    await Bun.sleep(50);
    conn.close();
    await expect(waiting).rejects.toBeInstanceOf(Shut);
    // Cut short by close, not left to run into its own timeout.
    expect(since(t0)).toBeLessThan(1_000);
  });
});

describe.skipIf(!hasRedis)("RedisConnection on Redis", () => {
  // The tests write nothing; the prefix names the list a blocking pop waits on, which no one fills.
  let url: string;
  let never: string;
  let raw: RedisClient;
  beforeAll(async () => {
    const t = testRedis();
    url = t.url;
    never = `${t.prefix}never-filled`;
    raw = new RedisClient(url, { autoReconnect: false, enableOfflineQueue: false });
    await raw.connect();
  });
  afterAll(() => raw.close());

  const idOf = async (conn: RedisConnection) => Number(await conn.send("CLIENT", ["ID"]));
  /** Whether the server still has a client with this id, a moment after we closed it (the close reaches it asynchronously). */
  const serverKeeps = async (id: number) => {
    const has = async () => String(await raw.send("CLIENT", ["LIST", "ID", String(id)])).trim() !== "";
    const until = Date.now() + GENEROUS_MS;
    while ((await has()) && Date.now() < until) await Bun.sleep(20);
    return has();
  };

  test("concurrent first calls share one connection", async () => {
    const conn = connect(url);
    const ids = await Promise.all(Array.from({ length: 20 }, () => idOf(conn)));
    expect(new Set(ids).size).toBe(1);
    expect(await idOf(conn)).toBe(ids[0]!);
  });

  test("a reply later than the deadline fails the call, and the next call runs on a new connection", async () => {
    const conn = connect(url, { commandTimeoutMs: 200 });
    const first = await idOf(conn);
    const t0 = performance.now();
    await expect(conn.send("BLPOP", [never, "5"])).rejects.toBeInstanceOf(Down);
    expect(since(t0)).toBeGreaterThanOrEqual(150);
    expect(since(t0)).toBeLessThan(2_000);
    // The late connection is closed, not kept around to deliver its reply to someone else.
    const second = await idOf(conn);
    expect(second).not.toBe(first);
    expect(await serverKeeps(first)).toBe(false);
  }, TEST_TIMEOUT);

  test("a command's own blocking time is added to its deadline", async () => {
    const conn = connect(url, { commandTimeoutMs: 200 });
    const first = await idOf(conn);
    expect(await conn.send("BLPOP", [never, "1"], 1_000)).toBeNull();
    expect(await idOf(conn)).toBe(first);
  }, TEST_TIMEOUT);

  test("the server dropping an idle connection (CLIENT KILL, or its idle timeout): the next call dials anew and succeeds", async () => {
    const conn = connect(url);
    const first = await idOf(conn);
    expect(Number(await raw.send("CLIENT", ["KILL", "ID", String(first)]))).toBe(1);
    // Time for the close to reach the client; a call after that must not be spent on the dead socket.
    await Bun.sleep(200);
    expect(await conn.send("PING", [])).toBe("PONG");
    expect(await idOf(conn)).not.toBe(first);
  }, TEST_TIMEOUT);

  test("the server dropping the connection during a blocking command fails that call at once; the next call reconnects", async () => {
    const conn = connect(url);
    const first = await idOf(conn);
    const t0 = performance.now();
    // Settled into a value at once: it fails while the kill's own reply is still on its way.
    const outcome = conn.send("BLPOP", [never, "20"], 20_000).catch((err: unknown) => err);
    await Bun.sleep(100);
    expect(Number(await raw.send("CLIENT", ["KILL", "ID", String(first)]))).toBe(1);
    expect(await outcome).toBeInstanceOf(Down);
    expect(since(t0)).toBeLessThan(GENEROUS_MS);
    expect(await idOf(conn)).not.toBe(first);
  }, TEST_TIMEOUT);

  test("an error reply passes through (or through the refused hook) and keeps the connection", async () => {
    const conn = connect(url);
    const first = await idOf(conn);
    await expect(conn.send("NOSUCHCOMMAND", [])).rejects.toMatchObject({ code: "ERR_REDIS_SERVER_ERROR", message: expect.stringContaining("unknown command") });
    expect(await idOf(conn)).toBe(first);

    class Refused extends Error {}
    const mapped = connect(url, { errors: { ...errors, refused: (err) => new Refused(`refused: ${err.message}`) } });
    await expect(mapped.send("GET", [])).rejects.toBeInstanceOf(Refused);
    expect(await mapped.send("PING", [])).toBe("PONG");
  });

  test("closed: a waiting call and every later call fail with the caller's closed error, and the server connection is gone", async () => {
    const conn = connect(url);
    const id = await idOf(conn);
    const waiting = conn.send("BLPOP", [never, "20"], 20_000);
    await Bun.sleep(100);
    conn.close();
    await expect(waiting).rejects.toBeInstanceOf(Shut);
    await expect(conn.send("PING", [])).rejects.toBeInstanceOf(Shut);
    await expect(conn.connect()).rejects.toBeInstanceOf(Shut);
    conn.close();
    expect(await serverKeeps(id)).toBe(false);
  }, TEST_TIMEOUT);
});
