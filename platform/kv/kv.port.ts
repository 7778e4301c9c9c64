/**
 * The key-value port: idempotency replay cache, chaos configuration, shared counters and short
 * event logs. PostgreSQL stays the authority for anything that matters; this port may lose data
 * (memory adapter on restart, Redis eviction) without breaking an invariant.
 *
 * Adapters: `redis` (RESP, Bun's built-in client), `upstash` (REST, `@upstash/redis`),
 * `memory` (one process). All run the same contract suite (`kv.contract.ts`).
 *
 * Failures (see `kv.errors.ts`): `KeyValueUnavailableError` (code `KV_UNAVAILABLE`) when the store
 * cannot be reached or does not answer in time — calls fail fast, they never hang while the store
 * is down — and `KeyValueCommandError` (`KV_COMMAND_FAILED`) when it refuses the command.
 * A `ttlMs` that is absent or not above 0 means "no expiry".
 */
export interface KeyValueStore {
  readonly kind: "redis" | "upstash" | "memory";
  /** `await kv.get("idem:abc")` → the stored string, or null when absent or expired. */
  get(key: string): Promise<string | null>;
  /**
   * `await kv.set("chaos:config", json, { ttlMs: 900_000 })`.
   * With `onlyIfAbsent`, writes only when the key does not exist; returns whether it wrote.
   */
  set(key: string, value: string, opts?: { ttlMs?: number; onlyIfAbsent?: boolean }): Promise<boolean>;
  /** `await kv.del("chaos:config")`; deleting a missing key is not an error. */
  del(key: string): Promise<void>;
  /**
   * Atomic increment shared by every replica: `await kv.incr("chaos:nth")` → 1, 2, 3 …
   * `ttlMs` applies only when this call creates the counter (`kv.incr("rate:ip", 60_000)` is a
   * fixed window); later calls never extend it. A value that is not an integer is refused.
   */
  incr(key: string, ttlMs?: number): Promise<number>;
  /** Milliseconds until the key expires; null when it has no expiry or does not exist: `await kv.ttlMs("chaos:config")`. */
  ttlMs(key: string): Promise<number | null>;
  /**
   * Prepends to a list and keeps only its newest `max` entries (a whole number ≥ 1, else RangeError):
   * `await kv.pushCapped("chaos:events", json, 200)`.
   */
  pushCapped(key: string, value: string, max: number): Promise<void>;
  /** The newest `count` entries of a list, newest first; [] for a missing list or a count below 1: `await kv.listRecent("chaos:events", 50)`. */
  listRecent(key: string, count: number): Promise<string[]>;
  /** Throws when the store does not answer; used by health checks: `await kv.ping()`. */
  ping(): Promise<void>;
  /** Releases connections on shutdown: `await kv.close()`; the store is not used afterwards. */
  close(): Promise<void>;
}
