import { afterEach, beforeEach, describe, expect, it } from "bun:test";
import type { KeyValueStore } from "./kv.port.ts";

/** What a contract run needs from one adapter. */
export interface KeyValueSubject {
  store: KeyValueStore;
  /** Closes the store and removes whatever it wrote. */
  cleanup(): Promise<void>;
  /**
   * Lets `ms` of the store's time pass. Defaults to a real sleep (servers keep their own
   * clock); the memory store passes a step of its injected clock instead.
   */
  advance?(ms: number): Promise<void>;
  /** A second store over the same backend under another prefix; required unless `prefixed: false`. */
  sibling?(): Promise<KeyValueStore>;
}

/**
 * The behaviour every `KeyValueStore` adapter shares. Run once per adapter, e.g.
 * `kvContract("redis", async () => ({ store, cleanup }), { skip: !hasRedis })`.
 * `prefixed: false` is for stores that take no key prefix (memory).
 */
export function kvContract(
  name: string,
  make: () => Promise<KeyValueSubject>,
  opts: { skip?: boolean; prefixed?: boolean } = {},
): void {
  describe.skipIf(!!opts.skip)(`KeyValueStore contract: ${name}`, () => {
    let subject: KeyValueSubject;
    let kv: KeyValueStore;
    const advance = (ms: number) => (subject.advance ? subject.advance(ms) : Bun.sleep(ms));

    beforeEach(async () => {
      subject = await make();
      kv = subject.store;
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    describe("get / set / del", () => {
      it("returns null for a key never written", async () => {
        expect(await kv.get("missing")).toBeNull();
      });

      it("returns what was set, byte for byte, and the last write wins", async () => {
        const values = ['{"status":201,"body":{"id":"ü ✓ 🚀"}}', "007", "", "OK", "UE9ORw==", "line\nbreak"];
        for (const v of values) {
          expect(await kv.set("k", v)).toBe(true);
          expect(await kv.get("k")).toBe(v);
        }
      });

      it("deletes a key, and deleting a missing key is not an error", async () => {
        await kv.set("k", "v");
        await kv.del("k");
        expect(await kv.get("k")).toBeNull();
        await kv.del("never-existed");
      });
    });

    describe("onlyIfAbsent", () => {
      it("writes only when the key is absent and reports whether it wrote", async () => {
        expect(await kv.set("claim", "first", { onlyIfAbsent: true })).toBe(true);
        expect(await kv.set("claim", "second", { onlyIfAbsent: true })).toBe(false);
        expect(await kv.get("claim")).toBe("first");
        await kv.del("claim");
        expect(await kv.set("claim", "third", { onlyIfAbsent: true })).toBe(true);
        expect(await kv.get("claim")).toBe("third");
      });

      it("lets exactly one of many concurrent claims win", async () => {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => kv.set("race", `r${i}`, { onlyIfAbsent: true })),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        expect(await kv.get("race")).toBe(`r${results.indexOf(true)}`);
      });

      it("can claim again once the previous claim expired", async () => {
        expect(await kv.set("lease", "a", { ttlMs: 150, onlyIfAbsent: true })).toBe(true);
        expect(await kv.set("lease", "b", { ttlMs: 150, onlyIfAbsent: true })).toBe(false);
        await advance(300);
        expect(await kv.set("lease", "c", { ttlMs: 150, onlyIfAbsent: true })).toBe(true);
        expect(await kv.get("lease")).toBe("c");
      });
    });

    describe("expiry", () => {
      it("forgets a key after its ttl", async () => {
        await kv.set("short", "v", { ttlMs: 150 });
        expect(await kv.get("short")).toBe("v");
        await advance(300);
        expect(await kv.get("short")).toBeNull();
        expect(await kv.ttlMs("short")).toBeNull();
      });

      it("reports the remaining ttl, and null without expiry or without key", async () => {
        await kv.set("long", "v", { ttlMs: 10_000 });
        const ttl = await kv.ttlMs("long");
        expect(ttl).not.toBeNull();
        expect(ttl!).toBeGreaterThan(8_000);
        expect(ttl!).toBeLessThanOrEqual(10_000);
        await kv.set("forever", "v");
        expect(await kv.ttlMs("forever")).toBeNull();
        expect(await kv.ttlMs("missing")).toBeNull();
      });

      it("clears the ttl when a key is overwritten without one", async () => {
        await kv.set("k", "v1", { ttlMs: 10_000 });
        await kv.set("k", "v2");
        expect(await kv.ttlMs("k")).toBeNull();
        expect(await kv.get("k")).toBe("v2");
      });
    });

    describe("incr", () => {
      it("counts from 1 on a missing key", async () => {
        expect(await kv.incr("n")).toBe(1);
        expect(await kv.incr("n")).toBe(2);
        expect(await kv.incr("n")).toBe(3);
        expect(await kv.get("n")).toBe("3");
      });

      it("hands out every number exactly once under 50 concurrent calls", async () => {
        const got = await Promise.all(Array.from({ length: 50 }, () => kv.incr("shared")));
        expect([...got].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
        expect(await kv.get("shared")).toBe("50");
      });

      it("sets the ttl only when it creates the key", async () => {
        expect(await kv.incr("window", 10_000)).toBe(1);
        const first = await kv.ttlMs("window");
        expect(first).not.toBeNull();
        expect(first!).toBeGreaterThan(8_000);
        expect(first!).toBeLessThanOrEqual(10_000);
        expect(await kv.incr("window", 60_000)).toBe(2);
        expect(await kv.ttlMs("window")).toBeLessThanOrEqual(10_000);
        expect(await kv.incr("window")).toBe(3);
        expect(await kv.ttlMs("window")).toBeLessThanOrEqual(10_000);
      });

      it("leaves a counter created without ttl without expiry", async () => {
        await kv.incr("plain");
        await kv.incr("plain", 10_000);
        expect(await kv.ttlMs("plain")).toBeNull();
      });

      it("starts again from 1 after the counter expired", async () => {
        expect(await kv.incr("burst", 150)).toBe(1);
        expect(await kv.incr("burst", 150)).toBe(2);
        await advance(300);
        expect(await kv.incr("burst", 150)).toBe(1);
      });

      it("refuses to increment a value that is not an integer", async () => {
        await kv.set("text", "hello");
        await expect(kv.incr("text")).rejects.toMatchObject({ code: "KV_COMMAND_FAILED" });
        expect(await kv.get("text")).toBe("hello");
      });
    });

    describe("pushCapped / listRecent", () => {
      it("returns entries newest first and keeps only the newest max", async () => {
        for (const v of ["a", "b", "c", "d", "e"]) await kv.pushCapped("log", v, 3);
        expect(await kv.listRecent("log", 10)).toEqual(["e", "d", "c"]);
        expect(await kv.listRecent("log", 2)).toEqual(["e", "d"]);
      });

      it("never exceeds max under concurrent pushes", async () => {
        await Promise.all(Array.from({ length: 30 }, (_, i) => kv.pushCapped("busy", `e${i}`, 5)));
        const recent = await kv.listRecent("busy", 100);
        expect(recent).toHaveLength(5);
        expect(new Set(recent).size).toBe(5);
      });

      it("returns an empty list for a missing key or a count below 1", async () => {
        expect(await kv.listRecent("none", 5)).toEqual([]);
        await kv.pushCapped("one", "x", 5);
        expect(await kv.listRecent("one", 0)).toEqual([]);
        expect(await kv.listRecent("one", -1)).toEqual([]);
      });

      it("rejects a cap below 1", async () => {
        await expect(kv.pushCapped("log", "x", 0)).rejects.toBeInstanceOf(RangeError);
        expect(await kv.listRecent("log", 5)).toEqual([]);
      });
    });

    describe("health", () => {
      it("answers ping", async () => {
        await kv.ping();
      });
    });

    describe.skipIf(opts.prefixed === false)("prefix", () => {
      it("keeps keys of stores with different prefixes apart", async () => {
        if (!subject.sibling) throw new Error(`${name}: a prefixed adapter's subject must provide sibling()`);
        const other = await subject.sibling();
        try {
          await kv.set("same-name", "mine");
          await kv.incr("counter");
          await kv.pushCapped("list", "mine", 5);
          expect(await other.get("same-name")).toBeNull();
          expect(await other.incr("counter")).toBe(1);
          expect(await other.listRecent("list", 5)).toEqual([]);
          await other.set("same-name", "theirs");
          expect(await kv.get("same-name")).toBe("mine");
          await other.del("same-name");
          expect(await kv.get("same-name")).toBe("mine");
        } finally {
          await other.close();
        }
      });
    });
  });
}
