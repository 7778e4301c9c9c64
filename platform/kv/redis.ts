import { RedisConnection, type RedisErrorMapping } from "../redis/connection.ts";
import type { KeyValueStore } from "./kv.port.ts";
import { INCR_WITH_TTL, PUSH_CAPPED } from "./redis-scripts.ts";
import { KeyValueCommandError, KeyValueUnavailableError, assertListCap, replyError } from "./kv.errors.ts";

export interface RedisStoreOptions {
  /** Prepended to every key, so several deployments or test runs can share one database. */
  prefix?: string;
  /** Longest a connection attempt may take. */
  connectTimeoutMs?: number;
  /** Longest a command may wait for its reply; past it the call fails and the connection is replaced. */
  commandTimeoutMs?: number;
  /** Ceiling of the pause between reconnection attempts while Redis stays down. */
  maxReconnectDelayMs?: number;
  /** The connection's name in `CLIENT LIST`. */
  clientName?: string;
}

/**
 * Redis over RESP with Bun's built-in client. `url` may be `redis://` or `rediss://`, with a
 * password and a database index (`redis://:secret@cache:6379/2`).
 *
 * While Redis is down every call rejects with `KeyValueUnavailableError` within about
 * `connectTimeoutMs` or `commandTimeoutMs`, and the next call after the server is back
 * reconnects. Creating the store never throws for an unreachable server.
 */
export function createRedisStore(url: string, opts: RedisStoreOptions = {}): KeyValueStore {
  const prefix = opts.prefix ?? "";
  const conn = new RedisConnection(url, {
    connectTimeoutMs: opts.connectTimeoutMs ?? 2_000,
    commandTimeoutMs: opts.commandTimeoutMs ?? 2_000,
    // Requests read the cache on their way: while Redis stays down, one of them pays for a
    // connection attempt per pause and the rest fall back at once.
    maxReconnectDelayMs: opts.maxReconnectDelayMs ?? 2_000,
    errors: KV_ERRORS,
    ...(opts.clientName !== undefined && { name: opts.clientName }),
  });
  // Dial now so the first request does not pay for the handshake; failing here is fine.
  conn.connect().catch(() => {});
  const k = (key: string) => prefix + key;
  const send = (command: string, args: string[]) => conn.send(command, args);

  return {
    kind: "redis",
    async get(key) {
      return (await send("GET", [k(key)])) as string | null;
    },
    async set(key, value, o = {}) {
      const args = [k(key), value];
      if (o.ttlMs !== undefined && o.ttlMs > 0) args.push("PX", String(Math.ceil(o.ttlMs)));
      if (o.onlyIfAbsent) args.push("NX");
      return (await send("SET", args)) !== null;
    },
    async del(key) {
      await send("DEL", [k(key)]);
    },
    async incr(key, ttlMs) {
      const reply =
        ttlMs !== undefined && ttlMs > 0
          ? await send("EVAL", [INCR_WITH_TTL, "1", k(key), String(Math.ceil(ttlMs))])
          : await send("INCR", [k(key)]);
      return Number(reply);
    },
    async ttlMs(key) {
      const ms = Number(await send("PTTL", [k(key)]));
      return ms < 0 ? null : ms;
    },
    async pushCapped(key, value, max) {
      assertListCap(max);
      await send("EVAL", [PUSH_CAPPED, "1", k(key), value, String(max)]);
    },
    async listRecent(key, count) {
      if (!(count >= 1)) return [];
      return (await send("LRANGE", [k(key), "0", String(Math.floor(count) - 1)])) as string[];
    },
    async ping() {
      await send("PING", []);
    },
    async close() {
      conn.close();
    },
  };
}

const KV_ERRORS: RedisErrorMapping = {
  unavailable: (message, cause) => new KeyValueUnavailableError(message, { cause }),
  closed: () => new KeyValueUnavailableError("key-value store is closed"),
  refused: (err) =>
    err.code === "ERR_REDIS_SERVER_ERROR" ? replyError(err.message, err) : new KeyValueCommandError(err.message, { cause: err }),
};
