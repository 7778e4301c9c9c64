import type { KeyValueStore } from "./kv.port.ts";
import { KeyValueConfigError } from "./kv.errors.ts";
import { createMemoryStore } from "./memory.ts";
import { createRedisStore } from "./redis.ts";
import { createUpstashStore } from "./upstash.ts";

export type { KeyValueStore } from "./kv.port.ts";
export { KeyValueCommandError, KeyValueConfigError, KeyValueUnavailableError } from "./kv.errors.ts";
export { createMemoryStore } from "./memory.ts";
export { createRedisStore, type RedisStoreOptions } from "./redis.ts";
export { createUpstashStore, type UpstashStoreOptions } from "./upstash.ts";

export interface KeyValueConfig {
  redisUrl?: string | undefined;
  redisToken?: string | undefined;
  /** Prefix for every key; ignored by the memory store, which no other process can see. */
  prefix?: string | undefined;
  /** The connection's name in Redis's `CLIENT LIST` (RESP only). */
  clientName?: string | undefined;
}

/**
 * Picks the adapter from `REDIS_URL`'s scheme: `redis://`/`rediss://` → Redis over RESP,
 * `https://`/`http://` (needs `REDIS_TOKEN`) → Upstash REST, unset → in-memory.
 *
 * `createKeyValueStore({ redisUrl: cfg.redisUrl, redisToken: cfg.redisToken, prefix: "valerix:" })`
 */
export function createKeyValueStore(cfg: KeyValueConfig): KeyValueStore {
  const url = cfg.redisUrl?.trim();
  const prefix = cfg.prefix ?? "";
  if (!url) return createMemoryStore();
  const scheme = url.slice(0, url.indexOf(":") + 1).toLowerCase();
  switch (scheme) {
    case "redis:":
    case "rediss:":
      return createRedisStore(url, { prefix, ...(cfg.clientName !== undefined && { clientName: cfg.clientName }) });
    case "https:":
    case "http:":
      if (!cfg.redisToken) throw new KeyValueConfigError("an Upstash REST URL needs a token (REDIS_TOKEN)");
      return createUpstashStore(url, cfg.redisToken, { prefix });
    default:
      throw new KeyValueConfigError(`unsupported key-value URL scheme "${scheme || "(none)"}"; use redis://, rediss:// or https://`);
  }
}
