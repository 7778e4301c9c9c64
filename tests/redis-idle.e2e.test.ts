import { afterAll, describe, expect, test } from "bun:test";
import { hostname } from "node:os";
import { RedisClient } from "bun";
import { createTestDatabase, hasPostgres, hasRedis, testRedis } from "./support/services.ts";
import { freePort, RoleProcess, waitFor } from "./support/processes.ts";

/**
 * A process with `REDIS_URL` set and nothing to do must stay quiet and keep its connections.
 * It once logged four warnings every 5 s: the retry worker's loops each sent a blocking
 * XREADGROUP on the one connection for blocking reads, where they ran one after another until
 * the last outlived its deadline, and dropping that connection failed the reads behind it.
 * The real executable, because that is where it showed: a minute of real idleness.
 */
const IDLE_MS = 60_000;

describe.skipIf(!hasRedis || !hasPostgres)("an idle process with Redis", () => {
  let app: RoleProcess | undefined;
  let drop: (() => Promise<void>) | undefined;
  let raw: RedisClient | undefined;
  afterAll(async () => {
    await app?.kill("SIGTERM");
    raw?.close();
    await drop?.();
  });

  test("logs nothing for a minute and keeps the same Redis connections", async () => {
    const redis = testRedis();
    const db = await createTestDatabase();
    drop = db.drop;
    raw = new RedisClient(redis.url, { autoReconnect: false, enableOfflineQueue: false });
    app = new RoleProcess("all", await freePort(), {
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      ADMIN_TOKEN: "idle-admin",
      LOG_LEVEL: "warn",
    });
    await app.start();

    // The process names its connections after its host and pid (see server.ts).
    const ours = `name=valerix:${hostname()}-${app.proc!.pid}:`;
    const connections = async () => {
      const lines = String(await raw!.send("CLIENT", ["LIST"])).split("\n").filter((l) => l.includes(ours));
      return new Map(lines.map((l) => [/\bid=(\d+)/.exec(l)![1]!, /\bname=(\S+)/.exec(l)![1]!]));
    };
    // All three are open once the retry worker has made its first blocking read.
    await waitFor(async () => (await connections()).size === 3, 10_000, "the process's three Redis connections");
    const initial = await connections();
    expect([...initial.values()].map((n) => n.slice(ours.length - "name=".length)).toSorted()).toEqual(["kv", "queue", "queue-read"]);

    const t0 = Date.now();
    const seen = new Set(initial.keys());
    while (Date.now() - t0 < IDLE_MS) {
      // Real time on purpose: the defect needs the process's own timers running for real.
      await Bun.sleep(1_000);
      for (const id of (await connections()).keys()) seen.add(id);
    }

    // Every line at warn or above that the process wrote during the idle minute.
    const logged = app.output
      .split("\n")
      .filter((l) => l.trim() !== "")
      .filter((l) => {
        try {
          const entry = JSON.parse(l) as { time?: string };
          return entry.time === undefined || Date.parse(entry.time) >= t0;
        } catch {
          return true; // not a log line: printed by something else, and just as unwelcome
        }
      });
    expect(logged).toEqual([]);
    // No connection was dropped and redialled, and none was added.
    expect([...seen].toSorted()).toEqual([...initial.keys()].toSorted());
    expect(await connections()).toEqual(initial);
  }, IDLE_MS + 60_000);
});
