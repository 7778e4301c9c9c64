import { RedisClient } from "bun";
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
  const commandTimeoutMs = opts.commandTimeoutMs ?? 2_000;
  const conn = new Connection(url, opts.connectTimeoutMs ?? 2_000, opts.maxReconnectDelayMs ?? 2_000);
  const k = (key: string) => prefix + key;

  const send = async (command: string, args: string[]): Promise<unknown> => {
    const client = await conn.ready();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // A reply this late usually means a half-open socket or a stalled server; the same
        // connection would keep timing out, so drop it and let the next call dial afresh.
        conn.drop(client);
        reject(new KeyValueUnavailableError(`Redis did not answer ${command} within ${commandTimeoutMs} ms`));
      }, commandTimeoutMs);
    });
    try {
      return await Promise.race([client.send(command, args), deadline]);
    } catch (err) {
      throw translate(err);
    } finally {
      clearTimeout(timer);
    }
  };

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

/**
 * One connection, redialled on demand. Bun's own reconnect loop queues commands until it gives
 * up (about 30 s, then the client is dead for good), so it is switched off: a call made while
 * disconnected triggers one attempt, and between failed attempts calls fail at once.
 */
class Connection {
  private readonly client: RedisClient;
  private connecting: Promise<void> | null = null;
  private failures = 0;
  private retryAt = 0;
  private lastError = "";
  private closed = false;

  constructor(
    url: string,
    private readonly connectTimeoutMs: number,
    private readonly maxDelayMs: number,
  ) {
    this.client = new RedisClient(url, {
      connectionTimeout: connectTimeoutMs,
      autoReconnect: false,
      enableOfflineQueue: false,
    });
    // Losing the server is noticed by the next call; nothing to do at the moment it happens.
    this.client.onclose = () => {};
    // Dial now so the first request does not pay for the handshake; failing here is fine.
    this.connect().catch(() => {});
  }

  async ready(): Promise<RedisClient> {
    if (this.closed) throw new KeyValueUnavailableError("key-value store is closed");
    if (this.client.connected) return this.client;
    if (!this.connecting) {
      const wait = this.retryAt - Date.now();
      if (wait > 0) {
        throw new KeyValueUnavailableError(`Redis is unreachable (${this.lastError}); next attempt in ${wait} ms`);
      }
      this.connect().catch(() => {});
    }
    await this.connecting;
    return this.client;
  }

  drop(client: RedisClient): void {
    if (client === this.client && !this.closed) client.close();
  }

  close(): void {
    this.closed = true;
    this.client.close();
  }

  private connect(): Promise<void> {
    // `.finally` runs after the assignment below, so `connecting` never keeps a settled attempt.
    this.connecting = this.attempt().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async attempt(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      // Bun honours connectionTimeout; the extra guard only makes "never hangs" independent of it.
      await Promise.race([
        this.client.connect(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("connect timed out")), this.connectTimeoutMs + 1_000);
        }),
      ]);
      this.failures = 0;
      this.retryAt = 0;
    } catch (err) {
      if (!this.closed) this.client.close();
      this.failures++;
      this.retryAt = Date.now() + Math.min(this.maxDelayMs, 50 * 2 ** (this.failures - 1));
      this.lastError = (err as Error).message;
      throw new KeyValueUnavailableError(`cannot connect to Redis: ${this.lastError}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }
}

function translate(err: unknown): Error {
  if (err instanceof KeyValueUnavailableError || err instanceof KeyValueCommandError) return err;
  const e = err as Error & { code?: string };
  if (e?.code === "ERR_REDIS_SERVER_ERROR") return replyError(e.message, err);
  if (e?.code === "ERR_REDIS_INVALID_ARGUMENT") return new KeyValueCommandError(e.message, { cause: err });
  return new KeyValueUnavailableError(`Redis connection failed: ${e?.message ?? String(err)}`, { cause: err });
}
