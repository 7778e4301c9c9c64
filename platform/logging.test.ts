import { afterEach, describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, redactUrl, TickBufferedDestination } from "./logging.ts";
import { noteOrderId, withLogContext } from "./log-context.ts";

describe("log lines written once per event-loop turn", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  function file() {
    const dir = mkdtempSync(join(tmpdir(), "valerix-log-"));
    dirs.push(dir);
    const path = join(dir, "out.log");
    return { path, fd: openSync(path, "w") };
  }
  const lines = (path: string) => readFileSync(path, "utf8").split("\n").filter(Boolean);

  test("a turn's lines are held until the turn ends, then written in order", async () => {
    const { path, fd } = file();
    const logger = createLogger("info", {}, new TickBufferedDestination(fd));
    for (let i = 0; i < 3; i++) logger.info({ i }, "line");
    expect(lines(path)).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(lines(path).map((l) => JSON.parse(l).i)).toEqual([0, 1, 2]);
    closeSync(fd);
  });

  test("a full buffer is written at once, without waiting for the turn to end", () => {
    const { path, fd } = file();
    const dest = new TickBufferedDestination(fd, 100);
    dest.write(`${"a".repeat(60)}\n`);
    expect(lines(path)).toEqual([]);
    dest.write(`${"b".repeat(60)}\n`);
    expect(lines(path)).toEqual(["a".repeat(60), "b".repeat(60)]);
    closeSync(fd);
  });

  test("lines still buffered when the process exits are written out", async () => {
    const { path, fd } = file();
    closeSync(fd);
    const script = `
      import { createProcessLogger } from ${JSON.stringify(join(import.meta.dir, "logging.ts"))};
      const logger = createProcessLogger("info");
      for (let i = 0; i < 1000; i++) logger.info({ i }, "line");
      process.exit(3);`;
    const proc = Bun.spawn([process.execPath, "-e", script], { stdout: Bun.file(path), stderr: "pipe" });
    expect(await proc.exited).toBe(3);
    const written = lines(path).map((l) => JSON.parse(l).i);
    expect(written).toHaveLength(1000);
    expect(written[999]).toBe(999);
  });

  test("a reader that went away costs the lines, not the process", async () => {
    const script = `
      import { createProcessLogger } from ${JSON.stringify(join(import.meta.dir, "logging.ts"))};
      const logger = createProcessLogger("info");
      await new Promise((r) => setTimeout(r, 200));
      for (let i = 0; i < 1000; i++) logger.info({ i }, "line");
      await new Promise((r) => setImmediate(r));
      process.exit(0);`;
    const proc = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
    await proc.stdout.cancel();
    const code = await Promise.race([proc.exited, new Promise((r) => setTimeout(() => r("hung"), 10_000))]);
    if (code === "hung") proc.kill(9);
    expect(code).toBe(0);
  });
});

describe("request ids on every line, secrets redacted", () => {
  const capture = () => {
    const lines: string[] = [];
    return { lines, write: (s: string) => (lines.push(s.trim()), true) };
  };

  test("a line written in a log context carries its request_id and order_id once, whatever the call names", async () => {
    const out = capture();
    const logger = createLogger("info", { role: "all" }, out);
    logger.info({ x: 1 }, "outside");
    await withLogContext({ request_id: "r-1" }, async () => {
      logger.info("before");
      await Bun.sleep(1);
      noteOrderId("o-1");
      logger.warn({ request_id: "r-1", err: new Error("boom") }, "after");
    });
    expect(out.lines[0]).not.toContain("request_id");
    expect(JSON.parse(out.lines[1]!)).toMatchObject({ request_id: "r-1", msg: "before" });
    expect(JSON.parse(out.lines[1]!).order_id).toBeUndefined();
    expect(JSON.parse(out.lines[2]!)).toMatchObject({ request_id: "r-1", order_id: "o-1", msg: "after" });
    expect(out.lines[2]!.match(/"request_id"/g)).toHaveLength(1);
  });

  test("URLs lose their password only; tokens are censored", () => {
    expect(redactUrl("postgres://app:pw@db:5432/valerix")).toBe("postgres://app:[redacted]@db:5432/valerix");
    expect(redactUrl("postgres://db/valerix?user=app&password=pw&sslmode=require")).toBe("postgres://db/valerix?user=app&password=[redacted]&sslmode=require");
    expect(redactUrl("rediss://:p%40ss@cache:6380/0")).toBe("rediss://:[redacted]@cache:6380/0");
    expect(redactUrl("redis://cache:6379")).toBe("redis://cache:6379");
    const out = capture();
    createLogger("info", {}, out).info({ config: { adminToken: "t0k", databaseUrl: "postgres://app:pw@db/v", redisToken: undefined } }, "cfg");
    const line = JSON.parse(out.lines[0]!);
    expect(line.config).toEqual({ adminToken: "[redacted]", databaseUrl: "postgres://app:[redacted]@db/v" });
  });
});
