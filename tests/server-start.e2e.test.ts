import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";

/**
 * A server started while its database is away — a replica restarted during a PostgreSQL outage,
 * as the infra chaos scenarios do — exits 1 for its supervisor to start again, and says why in
 * one line, as `valerix migrate` does: no unhandled error, no stack trace.
 */
const ROOT = resolve(import.meta.dir, "..");

describe("server start without its database", () => {
  test("exit 1, one line on stderr naming the driver's reason, one fatal log line, no stack", async () => {
    const proc = Bun.spawn([process.execPath, "src/main.ts"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", VALERIX_ROLE: "inventory", DATABASE_URL: "postgres://postgres@127.0.0.1:1/nowhere", PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info", ADMIN_TOKEN: "t" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
    const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    clearTimeout(timer);
    expect(code).toBe(1);
    expect(err).toBe("valerix: cannot start: the database is unreachable: connect ECONNREFUSED 127.0.0.1:1\n");
    const fatal = out
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.level === 60 || l.level === "fatal");
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.msg).toBe("cannot start: the database is unreachable");
    expect(fatal[0]!.reason).toBe("connect ECONNREFUSED 127.0.0.1:1");
    expect(out + err).not.toMatch(/\n\s+at /);
  }, 40_000);
});
