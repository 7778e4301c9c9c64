import type { KeyValueStore } from "./kv.port.ts";
import { systemClock, type Clock } from "../clock.ts";

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
      const n = (e && typeof e.value === "string" ? Number(e.value) : 0) + 1;
      data.set(key, { value: String(n), expiresAt: e ? e.expiresAt : expiry(ttlMs) });
      return n;
    },
    async ttlMs(key) {
      const e = live(key);
      return e && e.expiresAt !== null ? Math.max(0, e.expiresAt - clock.now()) : null;
    },
    async pushCapped(key, value, max) {
      const e = live(key);
      const list = e && Array.isArray(e.value) ? e.value : [];
      list.unshift(value);
      list.length = Math.min(list.length, max);
      data.set(key, { value: list, expiresAt: e?.expiresAt ?? null });
    },
    async listRecent(key, count) {
      const e = live(key);
      return e && Array.isArray(e.value) ? e.value.slice(0, count) : [];
    },
    async ping() {},
    async close() {
      data.clear();
    },
  };
}
