import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import type { Database } from "../db.ts";
import { hasRedis, testRedis } from "../../tests/support/services.ts";
import { BACKENDS, openTestDatabase } from "../../tests/support/system.ts";
import { queueContract } from "./queue.contract.ts";
import { createPostgresQueue } from "./postgres.ts";
import { createRedisStreamsQueue } from "./redis-streams.ts";
import { createRetryQueue } from "./index.ts";
import type { RetryQueue } from "./queue.port.ts";

// Short enough that the dead-consumer test takes well under a second, long enough that a busy
// two-core machine does not let a lease run out between a receive and its ack.
const VISIBILITY_MS = 400;

async function emptyQueueTables(database: Database) {
  await database.query("truncate_retry_queue", "truncate orders.retry_queue, orders.retry_dead_letters", []);
}

function postgresFactory(database: () => Database) {
  return async () => {
    await emptyQueueTables(database());
    const make = () => createPostgresQueue(database(), { visibilityTimeoutMs: VISIBILITY_MS, pollMs: 20 });
    const queue = make();
    return { queue, makeSecondConsumer: async () => make(), cleanup: () => queue.close() };
  };
}

for (const backend of BACKENDS) {
  const name = backend === "postgres" ? "PostgreSQL" : "PGlite";
  describe(`postgres adapter on ${name}`, () => {
    let database: Database;
    let close: (() => Promise<void>) | undefined;
    beforeAll(async () => {
      ({ database, close } = await openTestDatabase(backend, ["orders"]));
    });
    afterAll(() => close?.());
    queueContract(`postgres on ${name}`, postgresFactory(() => database), { visibilityTimeoutMs: VISIBILITY_MS });
  });
}

describe.skipIf(!hasRedis)("redis-streams adapter on Redis", () => {
  queueContract(
    "redis-streams",
    async () => {
      const { url, prefix } = testRedis();
      let n = 0;
      const make = () =>
        createRedisStreamsQueue(url, { prefix, consumer: `consumer-${++n}`, visibilityTimeoutMs: VISIBILITY_MS });
      const queue = make();
      return {
        queue,
        makeSecondConsumer: async () => make(),
        async cleanup() {
          await queue.close();
          await deleteKeys(url, prefix);
        },
      };
    },
    { visibilityTimeoutMs: VISIBILITY_MS },
  );
});

async function deleteKeys(url: string, prefix: string) {
  const r = new RedisClient(url);
  try {
    const keys = (await r.send("KEYS", [`${prefix}*`])) as string[];
    if (keys.length > 0) await r.send("DEL", keys);
  } finally {
    r.close();
  }
}

describe("createRetryQueue", () => {
  // No I/O happens here: both adapters connect lazily, so a dummy database and an unreachable
  // Redis are enough to see which one is chosen.
  const database = {} as Database;
  const kind = (redisUrl?: string) => {
    const q: RetryQueue = createRetryQueue({ redisUrl, database, consumer: "c" });
    void q.close();
    return q.kind;
  };

  test("a RESP URL selects Redis Streams", () => {
    expect(kind("redis://127.0.0.1:1")).toBe("redis-streams");
    expect(kind("rediss://example.invalid:6380")).toBe("redis-streams");
    expect(kind("REDIS://127.0.0.1:1")).toBe("redis-streams");
  });

  test("no URL, or the Upstash REST URL, selects the PostgreSQL table", () => {
    expect(kind(undefined)).toBe("postgres");
    expect(kind("")).toBe("postgres");
    expect(kind("https://example.upstash.io")).toBe("postgres");
  });
});
