import { afterAll, describe, expect, it } from "bun:test";
import { RedisClient } from "bun";
import { kvContract } from "./kv.contract.ts";
import { createKeyValueStore } from "./index.ts";
import { createMemoryStore } from "./memory.ts";
import { createRedisStore } from "./redis.ts";
import { createUpstashStore } from "./upstash.ts";
import { hasRedis, testRedis } from "../../tests/support/services.ts";
import { startUpstashEndpoint } from "../../tests/support/upstash-endpoint.ts";

/** Removes every key under the given prefixes, straight through a client of our own. */
async function deleteByPrefix(url: string, prefixes: string[]): Promise<void> {
  const raw = new RedisClient(url, { autoReconnect: false, enableOfflineQueue: false });
  try {
    await raw.connect();
    for (const prefix of prefixes) {
      let cursor = "0";
      do {
        const [next, keys] = (await raw.send("SCAN", [cursor, "MATCH", `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`, "COUNT", "500"])) as [string, string[]];
        if (keys.length > 0) await raw.send("DEL", keys);
        cursor = next;
      } while (cursor !== "0");
    }
  } finally {
    raw.close();
  }
}

const siblingOf = (prefix: string) => `${prefix.replace(/:$/, "")}-sibling:`;

kvContract(
  "memory",
  async () => {
    let now = Date.UTC(2030, 0, 1);
    const store = createMemoryStore({ clock: { now: () => now, sleep: async () => {} } });
    return {
      store,
      cleanup: () => store.close(),
      advance: async (ms) => {
        now += ms;
      },
    };
  },
  { prefixed: false },
);

kvContract(
  "redis",
  async () => {
    const { url, prefix } = testRedis();
    const store = createRedisStore(url, { prefix });
    const siblings: Array<{ close(): Promise<void> }> = [];
    return {
      store,
      sibling: async () => {
        const s = createRedisStore(url, { prefix: siblingOf(prefix) });
        siblings.push(s);
        return s;
      },
      async cleanup() {
        await store.close();
        for (const s of siblings) await s.close();
        await deleteByPrefix(url, [prefix, siblingOf(prefix)]);
      },
    };
  },
  { skip: !hasRedis },
);

// One endpoint for the whole file, in front of one test database; each test gets its own prefix.
const token = `token-${crypto.randomUUID()}`;
let endpoint: { url: string; redisUrl: string; stop(): Promise<void> } | undefined;
afterAll(async () => {
  await endpoint?.stop();
});

kvContract(
  "upstash",
  async () => {
    if (!endpoint) {
      const { url: redisUrl } = testRedis();
      endpoint = { ...(await startUpstashEndpoint(redisUrl, token)), redisUrl };
    }
    const { url, redisUrl } = endpoint;
    const { prefix } = testRedis();
    const store = createUpstashStore(url, token, { prefix });
    return {
      store,
      sibling: async () => createUpstashStore(url, token, { prefix: siblingOf(prefix) }),
      async cleanup() {
        await store.close();
        await deleteByPrefix(redisUrl, [prefix, siblingOf(prefix)]);
      },
    };
  },
  { skip: !hasRedis },
);

describe("createKeyValueStore", () => {
  it("uses memory when no URL is configured", async () => {
    const kv = createKeyValueStore({});
    expect(kv.kind).toBe("memory");
    await kv.close();
    expect(createKeyValueStore({ redisUrl: "  " }).kind).toBe("memory");
  });

  it("uses Redis over RESP for redis:// and rediss://", async () => {
    for (const redisUrl of ["redis://127.0.0.1:1", "rediss://127.0.0.1:1", "REDIS://127.0.0.1:1"]) {
      const kv = createKeyValueStore({ redisUrl, prefix: "p:" });
      expect(kv.kind).toBe("redis");
      await kv.close();
    }
  });

  it("uses Upstash REST for https:// and http:// with a token", async () => {
    for (const redisUrl of ["https://example-12345.upstash.io", "http://127.0.0.1:1"]) {
      const kv = createKeyValueStore({ redisUrl, redisToken: "t" });
      expect(kv.kind).toBe("upstash");
      await kv.close();
    }
  });

  it("refuses a REST URL without token and an unknown scheme", () => {
    expect(() => createKeyValueStore({ redisUrl: "https://example.upstash.io" })).toThrow(
      expect.objectContaining({ code: "KV_CONFIG" }),
    );
    expect(() => createKeyValueStore({ redisUrl: "memcached://cache:11211" })).toThrow(/unsupported/);
  });

  it.skipIf(!hasRedis)("applies the prefix to every key it writes", async () => {
    const { url, prefix } = testRedis();
    const kv = createKeyValueStore({ redisUrl: url, prefix });
    const raw = new RedisClient(url, { autoReconnect: false, enableOfflineQueue: false });
    try {
      await kv.set("plain", "v");
      await kv.incr("count");
      await kv.pushCapped("list", "x", 3);
      await raw.connect();
      const keys = (await raw.send("KEYS", [`${prefix}*`])) as string[];
      expect(keys.sort()).toEqual([`${prefix}count`, `${prefix}list`, `${prefix}plain`]);
      expect(await raw.send("EXISTS", ["plain"])).toBe(0);
    } finally {
      raw.close();
      await kv.close();
      await deleteByPrefix(url, [prefix]);
    }
  });
});
