import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { hasRedis, testRedis } from "../../tests/support/services.ts";
import { ManualClock } from "../../tests/support/manual-clock.ts";
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

/** Whether `p` has settled, a few continuations after the call (nothing real to wait for). */
async function settledYet(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return settled;
}

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

  // The connect timeouts below are far longer than the tests: Bun's own (real-time) connect
  // timeout never fires, so only the deadline on the injected clock can end an attempt.
  const SLOW_CONNECT_MS = 60_000;

  /** A call that fails once the connect deadline has run out on the manual clock. */
  const failedAfterConnectDeadline = async (clock: ManualClock, call: Promise<unknown>) => {
    const outcome = call.catch((err: unknown) => err);
    await clock.waitForSleepers(1);
    await clock.advance(SLOW_CONNECT_MS);
    return outcome;
  };

  test("a server that never answers the handshake costs one connect timeout, not more", async () => {
    const silent = silentServer();
    const clock = new ManualClock();
    const conn = connect(silent.url, { connectTimeoutMs: SLOW_CONNECT_MS, clock });
    const call = conn.send("PING", []);
    await clock.waitForSleepers(1);
    await clock.advance(SLOW_CONNECT_MS - 1);
    expect(await settledYet(call)).toBe(false);
    await clock.advance(1);
    await expect(call).rejects.toBeInstanceOf(Down);
    await expect(call).rejects.toThrow(`connect timed out after ${SLOW_CONNECT_MS} ms`);
    expect(silent.accepted).toBe(1);
  });

  test("without a reconnect pause every call dials again", async () => {
    const silent = silentServer();
    const clock = new ManualClock();
    const conn = connect(silent.url, { connectTimeoutMs: SLOW_CONNECT_MS, clock });
    expect(await failedAfterConnectDeadline(clock, conn.send("PING", []))).toBeInstanceOf(Down);
    expect(await failedAfterConnectDeadline(clock, conn.send("PING", []))).toBeInstanceOf(Down);
    expect(silent.accepted).toBe(2);
  });

  test("with a reconnect pause, calls in the pause fail at once and the next one after it dials", async () => {
    const silent = silentServer();
    const clock = new ManualClock();
    const conn = connect(silent.url, { connectTimeoutMs: SLOW_CONNECT_MS, maxReconnectDelayMs: 2_000, clock });
    expect(await failedAfterConnectDeadline(clock, conn.send("PING", []))).toBeInstanceOf(Down);
    expect(silent.accepted).toBe(1);
    // The first pause is 50 ms: calls within it must not dial.
    await expect(conn.send("PING", [])).rejects.toThrow("next attempt in 50 ms");
    await clock.advance(49);
    await expect(conn.send("PING", [])).rejects.toThrow("next attempt in 1 ms");
    expect(silent.accepted).toBe(1);
    await clock.advance(1);
    expect(await failedAfterConnectDeadline(clock, conn.send("PING", []))).toBeInstanceOf(Down);
    expect(silent.accepted).toBe(2);
    // The second failure doubles the pause.
    await expect(conn.send("PING", [])).rejects.toThrow("next attempt in 100 ms");
  });

  test("close during a connection attempt rejects the waiting call with the caller's closed error", async () => {
    const silent = silentServer();
    const clock = new ManualClock();
    const conn = connect(silent.url, { connectTimeoutMs: SLOW_CONNECT_MS, clock });
    const t0 = performance.now();
    const waiting = conn.send("PING", []);
    await clock.waitForSleepers(1); // the attempt is under way
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
    // Real sleeps: the close travels over a real socket to a real server.
    while ((await has()) && Date.now() < until) await Bun.sleep(20);
    return has();
  };
  /** Waits until the server runs `command` for client `id`; real polling, the command travels over a real socket. */
  const untilServing = async (id: number, command: string) => {
    const serving = async () => String(await raw.send("CLIENT", ["LIST", "ID", String(id)])).includes(` cmd=${command} `);
    const until = Date.now() + GENEROUS_MS;
    while (!(await serving()) && Date.now() < until) await Bun.sleep(5);
    expect(await serving()).toBe(true);
  };

  test("concurrent first calls share one connection", async () => {
    const conn = connect(url);
    const ids = await Promise.all(Array.from({ length: 20 }, () => idOf(conn)));
    expect(new Set(ids).size).toBe(1);
    expect(await idOf(conn)).toBe(ids[0]!);
  });

  test("a reply later than the deadline fails the call, and the next call runs on a new connection", async () => {
    const clock = new ManualClock();
    const conn = connect(url, { commandTimeoutMs: 200, clock });
    const first = await idOf(conn);
    const call = conn.send("BLPOP", [never, "5"]);
    await clock.waitForSleepers(1);
    await clock.advance(199);
    expect(await settledYet(call)).toBe(false);
    await clock.advance(1);
    await expect(call).rejects.toBeInstanceOf(Down);
    await expect(call).rejects.toThrow("Redis did not answer BLPOP within 200 ms");
    // The late connection is closed, not kept around to deliver its reply to someone else.
    const second = await idOf(conn);
    expect(second).not.toBe(first);
    expect(await serverKeeps(first)).toBe(false);
  }, TEST_TIMEOUT);

  test("a command's own blocking time is added to its deadline", async () => {
    const clock = new ManualClock();
    const conn = connect(url, { commandTimeoutMs: 200, clock });
    const first = await idOf(conn);
    // Past the command timeout alone, within it plus the blocking time.
    const call = conn.send("BLPOP", [never, "0.3"], 300);
    await clock.waitForSleepers(1);
    await clock.advance(499);
    // The server blocks in real time: the null reply comes after a real 0.3 s.
    expect(await call).toBeNull();
    expect(await idOf(conn)).toBe(first);
  }, TEST_TIMEOUT);

  test("blocking commands on one connection take turns: none fails for the time it waited behind another", async () => {
    // The real clock, because the server blocks in real time: the fourth BLPOP is served only
    // after the three before it (1.5 s), past the 1 s + 0.5 s a deadline counted from the send allows.
    const conn = connect(url, { commandTimeoutMs: 1_000 });
    const first = await idOf(conn);
    const t0 = performance.now();
    const replies = await Promise.all(Array.from({ length: 4 }, () => conn.send("BLPOP", [never, "0.5"], 500).catch((err: unknown) => err)));
    expect(replies).toEqual([null, null, null, null]);
    // They really did run one after the other, on the one connection.
    expect(since(t0)).toBeGreaterThanOrEqual(4 * 500 - 50);
    expect(await idOf(conn)).toBe(first);
  }, TEST_TIMEOUT);

  test("a blocking command past its deadline takes no command sent after it down", async () => {
    const clock = new ManualClock();
    const conn = connect(url, { commandTimeoutMs: 200, clock });
    const first = await idOf(conn);
    const late = conn.send("BLPOP", [never, "20"], 100).catch((err: unknown) => err);
    await untilServing(first, "blpop");
    const behind = [conn.send("PING", []).catch((err: unknown) => err), idOf(conn).catch((err: unknown) => err)];
    await clock.waitForSleepers(1);
    await clock.advance(299);
    // Nothing is answered while the blocking command holds the connection.
    expect(await settledYet(Promise.race(behind))).toBe(false);
    await clock.advance(1);
    expect(await late).toBeInstanceOf(Down);
    // The commands behind it ran on the next connection instead of failing with the dropped one.
    const [pong, second] = await Promise.all(behind);
    expect(pong).toBe("PONG");
    expect(typeof second).toBe("number");
    expect(second).not.toBe(first);
    expect(await serverKeeps(first)).toBe(false);
  }, TEST_TIMEOUT);

  test("the server dropping an idle connection (CLIENT KILL, or its idle timeout): the next call dials anew and succeeds", async () => {
    const conn = connect(url);
    const first = await idOf(conn);
    expect(Number(await raw.send("CLIENT", ["KILL", "ID", String(first)]))).toBe(1);
    // A real sleep: time for the close to reach the client over its real socket, which nothing
    // outside the client can observe. A call after that must not be spent on the dead socket.
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
    await untilServing(first, "blpop");
    expect(Number(await raw.send("CLIENT", ["KILL", "ID", String(first)]))).toBe(1);
    expect(await outcome).toBeInstanceOf(Down);
    expect(since(t0)).toBeLessThan(GENEROUS_MS);
    expect(await idOf(conn)).not.toBe(first);
  }, TEST_TIMEOUT);

  test("a name is set on every connection it opens", async () => {
    const name = `valerix-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const conn = connect(url, { name });
    expect(await conn.send("CLIENT", ["GETNAME"])).toBe(name);
    const first = await idOf(conn);
    expect(Number(await raw.send("CLIENT", ["KILL", "ID", String(first)]))).toBe(1);
    // A real sleep: the close reaches the client over its real socket (see the test above).
    await Bun.sleep(200);
    expect(await conn.send("CLIENT", ["GETNAME"])).toBe(name);
    expect(await idOf(conn)).not.toBe(first);
    // A name the server refuses (it has a space) leaves the connection unnamed but usable.
    const refused = connect(url, { name: "two words" });
    expect(await refused.send("PING", [])).toBe("PONG");
    expect(await refused.send("CLIENT", ["GETNAME"])).toBeNull();
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
    await untilServing(id, "blpop");
    conn.close();
    await expect(waiting).rejects.toBeInstanceOf(Shut);
    await expect(conn.send("PING", [])).rejects.toBeInstanceOf(Shut);
    await expect(conn.connect()).rejects.toBeInstanceOf(Shut);
    conn.close();
    expect(await serverKeeps(id)).toBe(false);
  }, TEST_TIMEOUT);
});
