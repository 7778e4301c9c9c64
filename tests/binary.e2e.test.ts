import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, waitFor } from "./support/processes.ts";

/**
 * The compiled executable, started in an empty folder with no configuration: it must serve
 * health, take an order for ps5 and keep it across a restart. Start-up times are printed, not
 * asserted (timings on shared CI machines are noise); the README and issue notes quote them.
 */
const ROOT = resolve(import.meta.dir, "..");
const BINARY = join(ROOT, "dist", "valerix-test");

describe("compiled binary", () => {
  let dir: string;
  beforeAll(async () => {
    const build = Bun.spawnSync(["bun", "build", "--compile", "src/main.ts", "--outfile", BINARY], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
    dir = mkdtempSync(join(tmpdir(), "valerix-bin-"));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(BINARY, { force: true });
  });

  async function run(): Promise<{ proc: ReturnType<typeof Bun.spawn>; url: string; ms: number }> {
    const port = await freePort();
    const started = performance.now();
    const proc = Bun.spawn([BINARY], { cwd: dir, env: { PATH: process.env.PATH ?? "", PORT: String(port), LOG_LEVEL: "warn" }, stdout: "ignore", stderr: "ignore" });
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${url}/health`)).status === 200, 60_000, "the binary's /health");
    return { proc, url, ms: Math.round(performance.now() - started) };
  }

  test("starts in an empty folder, takes an order, keeps it across restarts", async () => {
    const first = await run();
    const res = await fetch(`${first.url}/api/orders`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": "binary-1" },
      body: JSON.stringify({ item_id: "ps5", quantity: 1 }),
    });
    expect(res.status).toBe(201);
    const { order_id } = (await res.json()) as { order_id: string };
    expect((await fetch(`${first.url}/swagger/assets/swagger-ui-bundle.js`)).status).toBe(200);
    first.proc.kill("SIGTERM");
    expect(await first.proc.exited).toBe(0);

    const second = await run();
    const again = await fetch(`${second.url}/api/orders/${order_id}`);
    expect(((await again.json()) as { status: string }).status).toBe("confirmed");
    second.proc.kill("SIGTERM");
    await second.proc.exited;
    console.log(`binary start to healthy: first ${first.ms} ms, restart ${second.ms} ms`);
  });
});
