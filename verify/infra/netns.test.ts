import { afterAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { InventoryNetns, probeNetns } from "./netns.ts";
import { PrivateRedis } from "./private-redis.ts";
import { freePort, run, waitFor } from "./util.ts";

/**
 * The pieces the infra scenarios break things with, checked for what they do: the namespace's
 * service link carries traffic, a cut stops it, a heal brings it back, and nothing is left behind;
 * the private Redis comes back from a `kill -9` with what it had written.
 */

const netns = probeNetns();
if (!netns.ok) console.warn(`verify/infra/netns.test.ts: network namespace tests skipped: ${netns.reason}`);

describe("inventory network namespace", () => {
  let n: InventoryNetns | null = null;
  let server: Subprocess | null = null;
  afterAll(() => {
    server?.kill("SIGKILL");
    n?.destroy();
  });

  test.skipIf(!netns.ok)("the service link carries calls; a cut stops them, a heal restores them; loss and slow are in place; destroy removes it all", async () => {
    n = InventoryNetns.create(Math.floor(Math.random() * 0xffffffff).toString(16).padStart(8, "0"));
    const port = freePort();
    server = Bun.spawn([...n.wrap, process.execPath, "-e", `Bun.serve({ hostname: "${n.serviceNs}", port: ${port}, fetch: () => new Response("ok") })`], { stdout: "ignore", stderr: "ignore" });
    const url = `http://${n.serviceNs}:${port}/`;
    const call = async (timeoutMs = 800) => {
      try {
        return (await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })).status;
      } catch {
        return 0;
      }
    };
    await waitFor(async () => (await call()) === 200, 10_000, "the server inside the namespace");

    n.impair({ kind: "cut" });
    expect(await call()).toBe(0);
    n.heal();
    expect(await call(3_000)).toBe(200);

    n.impair({ kind: "loss", percent: 15 });
    const netem = n.mechanism === "tc netem";
    const show = (args: string[]) => run(args, { allowFailure: true }).output;
    if (netem) expect(show(["tc", "qdisc", "show"])).toContain("loss 15%");
    else expect(show(["ip", "netns", "exec", n.ns, "nft", "list", "ruleset"])).toContain("numgen random mod 100 < 15");
    n.impair({ kind: "slow", delayMs: 300, jitterMs: 100, rateKbit: 256 });
    expect(show(["tc", "-n", n.ns, "qdisc", "show"])).toContain(netem ? "delay 300ms" : "tbf");
    n.heal();
    expect(show(["tc", "-n", n.ns, "qdisc", "show"])).not.toMatch(/netem|tbf/);
    expect(await call(3_000)).toBe(200);

    server.kill("SIGKILL");
    await server.exited;
    n.destroy();
    expect(show(["ip", "netns", "list"])).not.toContain(n.ns);
    expect(show(["ip", "-o", "link"])).not.toContain(`${n.ns}s0`);
    n = null;
  }, 30_000);
});

describe("private Redis", () => {
  test.skipIf(!PrivateRedis.available())("comes back from kill -9 with what its append-only file holds, on the same port", async () => {
    const redis = new PrivateRedis();
    try {
      await redis.start();
      const { RedisClient } = await import("bun");
      const c1 = new RedisClient(redis.url(), { autoReconnect: false });
      await c1.send("SET", ["k", "v"]);
      c1.close();
      // appendfsync everysec: what is a second old is on disk.
      await Bun.sleep(1_200);
      const pid = redis.pid;
      await redis.kill9();
      expect(redis.pid).toBeNull();
      await redis.start();
      expect(redis.pid).not.toBe(pid);
      const c2 = new RedisClient(redis.url(), { autoReconnect: false });
      expect(await c2.send("GET", ["k"])).toBe("v");
      c2.close();
    } finally {
      await redis.destroy();
    }
  }, 30_000);
});
