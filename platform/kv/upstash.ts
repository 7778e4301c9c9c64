import { Redis, errors } from "@upstash/redis";
import type { KeyValueStore } from "./kv.port.ts";
import { INCR_WITH_TTL, PUSH_CAPPED } from "./redis-scripts.ts";
import {
  KeyValueCommandError,
  KeyValueConfigError,
  KeyValueUnavailableError,
  assertListCap,
  replyError,
} from "./kv.errors.ts";

export interface UpstashStoreOptions {
  /** Prepended to every key, so several deployments or test runs can share one database. */
  prefix?: string;
  /** Longest one REST call may take before it fails with `KeyValueUnavailableError`. */
  requestTimeoutMs?: number;
}

/**
 * Redis over the Upstash REST protocol (`@upstash/redis`): `url` is the database's https://
 * REST URL and `token` its REST token. Every call is one HTTP request; there is no connection
 * to lose, so an outage shows up as calls failing within `requestTimeoutMs`.
 */
export function createUpstashStore(url: string, token: string, opts: UpstashStoreOptions = {}): KeyValueStore {
  const prefix = opts.prefix ?? "";
  const requestTimeoutMs = opts.requestTimeoutMs ?? 2_000;
  let redis: Redis;
  try {
    redis = new Redis({
      url,
      token,
      // `retry: false` still allows one immediate second attempt in this client (its loop runs
      // attempts + 1 times), so zero retries are asked for explicitly: our resilience layer decides.
      retry: { retries: 0 },
      // Values are opaque strings to this port; the client would otherwise JSON.parse them.
      automaticDeserialization: false,
      // One request per call keeps calls in the order they were made and one failure per call;
      // the batching would send reads and writes of the same tick as two parallel requests.
      enableAutoPipelining: false,
      enableTelemetry: false,
      // A function rather than a signal: a fresh deadline per request, and the client then
      // throws on abort (given a plain signal it returns the abort reason as the result).
      signal: () => AbortSignal.timeout(requestTimeoutMs),
    });
  } catch (err) {
    throw new KeyValueConfigError(`invalid Upstash REST URL: ${(err as Error).message}`);
  }
  let closed = false;
  const k = (key: string) => prefix + key;

  const call = async <T>(run: () => Promise<T>): Promise<T> => {
    if (closed) throw new KeyValueUnavailableError("key-value store is closed");
    try {
      return await run();
    } catch (err) {
      throw translate(err);
    }
  };

  return {
    kind: "upstash",
    get: (key) => call(() => redis.get<string>(k(key))),
    set: (key, value, o = {}) =>
      call(async () => {
        const ttl = o.ttlMs !== undefined && o.ttlMs > 0 ? Math.ceil(o.ttlMs) : undefined;
        const reply =
          ttl !== undefined
            ? o.onlyIfAbsent
              ? await redis.set(k(key), value, { px: ttl, nx: true })
              : await redis.set(k(key), value, { px: ttl })
            : o.onlyIfAbsent
              ? await redis.set(k(key), value, { nx: true })
              : await redis.set(k(key), value);
        return reply !== null;
      }),
    del: (key) =>
      call(async () => {
        await redis.del(k(key));
      }),
    incr: (key, ttlMs) =>
      call(async () =>
        Number(
          ttlMs !== undefined && ttlMs > 0
            ? await redis.eval(INCR_WITH_TTL, [k(key)], [String(Math.ceil(ttlMs))])
            : await redis.incr(k(key)),
        ),
      ),
    ttlMs: (key) =>
      call(async () => {
        const ms = Number(await redis.pttl(k(key)));
        return ms < 0 ? null : ms;
      }),
    pushCapped: (key, value, max) =>
      call(async () => {
        assertListCap(max);
        await redis.eval(PUSH_CAPPED, [k(key)], [value, String(max)]);
      }),
    listRecent: (key, count) =>
      call(async () => (count >= 1 ? await redis.lrange<string>(k(key), 0, Math.floor(count) - 1) : [])),
    ping: () =>
      call(async () => {
        await redis.ping();
      }),
    async close() {
      closed = true;
    },
  };
}

function translate(err: unknown): Error {
  if (err instanceof KeyValueUnavailableError || err instanceof KeyValueCommandError || err instanceof RangeError) {
    return err;
  }
  // A body that is not JSON comes from something in front of the store (a proxy's error page).
  if (err instanceof errors.UpstashJSONParseError) {
    return new KeyValueUnavailableError("Upstash answered with something that is not JSON", { cause: err });
  }
  if (err instanceof errors.UpstashError) {
    // The client appends the whole command, values included; those stay out of logs.
    return replyError(err.message.replace(/, command was: [\s\S]*$/, ""), err);
  }
  // fetch failures: refused, reset, DNS, TLS, and our own deadline (TimeoutError).
  const e = err as Error;
  const why = e?.name === "TimeoutError" ? "no answer in time" : (e?.message ?? String(err));
  return new KeyValueUnavailableError(`Upstash request failed: ${why}`, { cause: err });
}
