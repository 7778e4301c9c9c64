import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { createRedisStore } from "../platform/kv/redis.ts";
import { createChaosInjector } from "./injector.ts";
import { hasRedis, testRedis } from "../tests/support/services.ts";

/**
 * every_nth across replicas: two separate processes share one counter in Redis, so together they
 * hit exactly every n-th request, however their calls interleave.
 */
describe.skipIf(!hasRedis)("every_nth across two processes", () => {
  test("two processes deciding at once hit exactly one request in n between them", async () => {
    const { url, prefix } = testRedis();
    const kv = createRedisStore(url, { prefix });
    try {
      const chaos = createChaosInjector({ kv });
      const r = await chaos.configure({ pattern: "every_nth", n: 4, crash_rate: 1, crash_mode: 503, ttl_s: 60 });
      expect(r.ok).toBe(true);
      const worker = resolve(import.meta.dir, "testing", "decide-worker.ts");
      const runs = [0, 1].map(() => Bun.spawn(["bun", worker, url, prefix, "299"], { stdout: "pipe", stderr: "pipe" }));
      const outputs = await Promise.all(runs.map(async (p) => {
        const code = await p.exited;
        const out = await new Response(p.stdout).text();
        if (code !== 0) throw new Error(`worker failed: ${await new Response(p.stderr).text()}`);
        return JSON.parse(out.trim().split("\n").pop()!) as { hits: number };
      }));
      // 598 decisions in all: one shared counter gives floor(598 / 4) = 149 hits, in any split
      // between the processes; two counters of their own would give 74 + 74 = 148.
      expect(outputs[0]!.hits + outputs[1]!.hits).toBe(149);
      await chaos.disable();
    } finally {
      await kv.close();
    }
  });
});
