import type { KeyValueStore } from "./kv.port.ts";
import { systemClock, type Clock } from "../clock.ts";
import { KeyValueCommandError, assertListCap } from "./kv.errors.ts";

interface Entry {
  value: string | string[];
  expiresAt: number | null;
}

/** One process only: the default when `REDIS_URL` is unset, and the reference for the contract suite. */
export function createMemoryStore(opts: { clock?: Clock } = {}): KeyValueStore {
  const clock = opts.clock ?? systemClock;
  const data = new Map<string, Entry>();

  const live = (key: string): Entry | undefined => {
    const e = data.get(key);
    if (e && e.expiresAt !== null && e.expiresAt <= clock.now()) {
      data.delete(key);
      return undefined;
    }
    return e;
  };
  const expiry = (ttlMs?: number) => (ttlMs && ttlMs > 0 ? clock.now() + ttlMs : null);

  return {
    kind: "memory",
    async get(key) {
      const e = live(key);
      return e && typeof e.value === "string" ? e.value : null;
    },
    async set(key, value, o = {}) {
      if (o.onlyIfAbsent && live(key)) return false;
      data.set(key, { value, expiresAt: expiry(o.ttlMs) });
      return true;
    },
    async del(key) {
      data.delete(key);
    },
    async incr(key, ttlMs) {
      const e = live(key);
      // Same refusal as Redis, so a misuse shows up with the memory store too.
      if (e && (typeof e.value !== "string" || !/^-?\d+$/.test(e.value))) {
        throw new KeyValueCommandError("key-value command refused: value is not an integer");
      }
      const n = (e ? Number(e.value) : 0) + 1;
      data.set(key, { value: String(n), expiresAt: e ? e.expiresAt : expiry(ttlMs) });
      return n;
    },
    async ttlMs(key) {
      const e = live(key);
      return e && e.expiresAt !== null ? Math.max(0, e.expiresAt - clock.now()) : null;
    },
    async pushCapped(key, value, max) {
      assertListCap(max);
      const e = live(key);
      if (e && !Array.isArray(e.value)) throw new KeyValueCommandError("key-value command refused: key holds a string, not a list");
      const list = e && Array.isArray(e.value) ? e.value : [];
      list.unshift(value);
      list.length = Math.min(list.length, max);
      data.set(key, { value: list, expiresAt: e?.expiresAt ?? null });
    },
    async listRecent(key, count) {
      const e = live(key);
      return e && Array.isArray(e.value) && count >= 1 ? e.value.slice(0, Math.floor(count)) : [];
    },
    async ping() {},
    async close() {
      data.clear();
    },
  };
}
