import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { compiledBinary } from "./support/binary.ts";
import { createTestDatabase, hasPostgres } from "./support/services.ts";
import { moduleMigrations } from "../migrations/index.ts";

// What this build carries, read from the migrations themselves, so a new one needs no edit here.
const INVENTORY = Object.keys(moduleMigrations.inventory);
const ORDERS = Object.keys(moduleMigrations.orders);
const TOTAL = INVENTORY.length + ORDERS.length;

/**
 * The operator's command line, against the compiled executable (as built by `npm run build`):
 * every run gets only PATH and what the test sets, and starts in a folder of its own.
 */
describe("valerix command line (compiled binary)", () => {
  let binary: string;
  const dirs: string[] = [];
  beforeAll(async () => {
    binary = await compiledBinary();
  });
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function folder(): string {
    const d = mkdtempSync(join(tmpdir(), "valerix-cli-"));
    dirs.push(d);
    return d;
  }

  async function valerix(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}) {
    const proc = Bun.spawn([binary, ...args], {
      cwd: opts.cwd ?? folder(),
      env: { PATH: process.env.PATH ?? "", ...opts.env },
      stdout: "pipe",
      stderr: "pipe",
    });
    // A command that started the server instead would never exit: fail fast rather than hang.
    const timer = setTimeout(() => proc.kill("SIGKILL"), 45_000);
    const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    clearTimeout(timer);
    return { code, out, err };
  }

  test("--help prints the usage on stdout and exits 0", async () => {
    for (const flag of ["--help", "-h"]) {
      const r = await valerix([flag]);
      expect(r).toMatchObject({ code: 0, err: "" });
      expect(r.out).toStartWith("Usage: valerix [command] [options]\n");
      for (const word of ["migrate --status", "healthcheck", "--version", "Exit codes:"]) expect(r.out).toContain(word);
      expect(r.out).toMatch(/^  3  `migrate --status` only: migrations are pending/m);
    }
  });

  test("--version prints the package's version and nothing else", async () => {
    expect(await valerix(["--version"])).toEqual({ code: 0, out: `${pkg.version}\n`, err: "" });
  });

  test.each([[["--bogus"]], [["-x"]], [["serve"]], [["migrate", "--force"]], [["migrate", "now"]], [["--status"]], [["--version", "migrate"]]])(
    "%j: the reason and the usage on stderr, exit 2, no server",
    async (args) => {
      const r = await valerix(args, { env: { PORT: "0" } });
      expect(r.code).toBe(2);
      expect(r.out).toBe("");
      expect(r.err).toMatch(/^valerix: .+\n\nUsage: valerix /);
    },
  );

  test("a bad setting for migrate: exit 2, the variable named", async () => {
    const r = await valerix(["migrate", "--status"], { env: { DATABASE_URL: "mysql://db/x" } });
    expect(r.code).toBe(2);
    expect(r.err).toBe('valerix: invalid configuration: DATABASE_URL: scheme must be one of postgres:, postgresql:, got "mysql:"\n');
  });

  test.skipIf(!hasPostgres)("migrate --status and migrate on PostgreSQL (DATABASE_URL)", async () => {
    const t = await createTestDatabase("valerix_cli");
    try {
      const env = { DATABASE_URL: t.url };
      const before = await valerix(["migrate", "--status"], { env });
      expect(before.code).toBe(3);
      expect(before.out).toContain(`orders\n${ORDERS.map((n) => `  pending  ${n}`).join("\n")}\n${TOTAL} pending`);

      const applied = await valerix(["migrate"], { env });
      expect(applied).toMatchObject({ code: 0, err: "" });
      expect(applied.out).toContain(`inventory: applied ${INVENTORY.join(", ")}\norders: applied ${ORDERS.join(", ")}\n`);

      const after = await valerix(["migrate", "--status"], { env });
      expect(after).toMatchObject({ code: 0, err: "" });
      expect(after.out).toMatch(new RegExp(`^orders\n${ORDERS.map((n) => `  applied  ${n} +\\S+\n`).join("")}up to date\n$`, "m"));
    } finally {
      await t.drop();
    }
  });

  test("migrate --status and migrate on the embedded database, ignoring a .env and a bunfig.toml in the folder", async () => {
    const cwd = folder();
    // Were either file read, the data would land in ./dotenv-data or the run would fail on the
    // unreachable DATABASE_URL, and the preload would leave its mark.
    writeFileSync(join(cwd, ".env"), "DATABASE_URL=postgres://127.0.0.1:1/from_dotenv\nVALERIX_DATA_DIR=dotenv-data\nVALERIX_ROLE=inventory\n");
    writeFileSync(join(cwd, "bunfig.toml"), 'preload = ["./preload.ts"]\n');
    writeFileSync(join(cwd, "preload.ts"), 'require("node:fs").writeFileSync("preload-ran", "");\nconsole.log("preloaded");\n');

    const before = await valerix(["migrate", "--status"], { cwd });
    expect(before.code).toBe(3);
    expect(before.out).toContain(`database: embedded PostgreSQL (PGlite) in ${join(cwd, ".valerix-data")}\n(no database there yet)\n`);
    // Listing creates nothing.
    expect(existsSync(join(cwd, ".valerix-data"))).toBe(false);

    const applied = await valerix(["migrate"], { cwd });
    expect(applied).toMatchObject({ code: 0, err: "" });
    expect(applied.out).toContain(`orders: applied ${ORDERS.join(", ")}\n`);

    const after = await valerix(["migrate", "--status"], { cwd });
    expect(after.code).toBe(0);
    expect(after.out).toEndWith("up to date\n");

    expect(existsSync(join(cwd, ".valerix-data", "PG_VERSION"))).toBe(true);
    expect(existsSync(join(cwd, "dotenv-data"))).toBe(false);
    expect(existsSync(join(cwd, "preload-ran"))).toBe(false);
    expect(before.out + applied.out + after.out).not.toContain("preloaded");

    // A data folder of its own, through VALERIX_DATA_DIR.
    const own = join(folder(), "data");
    expect((await valerix(["migrate"], { env: { VALERIX_DATA_DIR: own } })).code).toBe(0);
    expect(existsSync(join(own, "PG_VERSION"))).toBe(true);
  }, 120_000);

  test("an unreachable database: exit 1, one line on stderr, no stack", async () => {
    for (const args of [["migrate"], ["migrate", "--status"]]) {
      const r = await valerix(args, { env: { DATABASE_URL: "postgres://postgres:secret@127.0.0.1:1/nowhere" } });
      expect(r.code).toBe(1);
      expect(r.err).toBe("valerix: cannot reach the database: connect ECONNREFUSED 127.0.0.1:1\n");
      expect(r.out).toBe("database: PostgreSQL at 127.0.0.1:1/nowhere\n");
    }
  });
});
