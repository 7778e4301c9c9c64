import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { EXIT_PENDING } from "./cli.ts";
import type { DatabaseConfig } from "./config.ts";
import { errorLine, runMigrateCommand } from "./migrate-command.ts";
import { createTestDatabase, hasPostgres } from "../tests/support/services.ts";
import { moduleMigrations } from "../migrations/index.ts";

// What this build carries, read from the migrations themselves, so a new one needs no edit here.
const INVENTORY = Object.keys(moduleMigrations.inventory);
const ORDERS = Object.keys(moduleMigrations.orders);
const TOTAL = INVENTORY.length + ORDERS.length;
const pendingLines = (names: string[]) => names.map((n) => `  pending  ${n}`).join("\n");

/** Runs the command in-process and keeps what it printed. */
async function migrate(config: DatabaseConfig, status = false): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runMigrateCommand(config, { status }, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

describe("valerix migrate on PostgreSQL", () => {
  test.skipIf(!hasPostgres)("status lists pending, migrate applies them once, status then says up to date", async () => {
    const t = await createTestDatabase("valerix_cli");
    cleanups.push(t.drop);
    const config: DatabaseConfig = { role: "all", databaseUrl: t.url, dataDir: "unused" };

    const before = await migrate(config, true);
    expect(before.code).toBe(EXIT_PENDING);
    expect(before.out).toContain(`inventory\n${pendingLines(INVENTORY)}\norders\n${pendingLines(ORDERS)}\n${TOTAL} pending`);
    // Credentials never reach the output.
    expect(before.out).toContain(`database: PostgreSQL at ${new URL(t.url).host}${new URL(t.url).pathname}`);

    const applied = await migrate(config);
    expect(applied).toMatchObject({ code: 0, err: "" });
    expect(applied.out).toContain(`inventory: applied ${INVENTORY.join(", ")}\norders: applied ${ORDERS.join(", ")}`);

    const again = await migrate(config);
    expect(again.out).toContain("inventory: up to date\norders: up to date");

    const after = await migrate(config, true);
    expect(after.code).toBe(0);
    expect(after.out).toMatch(/^  applied  0002_retry_queue +\d{4}-\d\d-\d\dT/m);
    expect(after.out).not.toContain("pending");
    expect(after.out.endsWith("up to date")).toBe(true);
  });

  test.skipIf(!hasPostgres)("a role migrates only the module it owns", async () => {
    const t = await createTestDatabase("valerix_cli");
    cleanups.push(t.drop);
    expect((await migrate({ role: "inventory", databaseUrl: t.url, dataDir: "unused" })).out).toEndWith(`inventory: applied ${INVENTORY.join(", ")}`);
    const all = await migrate({ role: "all", databaseUrl: t.url, dataDir: "unused" }, true);
    expect(all.out).toContain("inventory\n  applied  0001_init");
    expect(all.out).toContain(`orders\n${pendingLines(ORDERS)}`);
    expect((await migrate({ role: "orders", databaseUrl: t.url, dataDir: "unused" }, true)).out).not.toContain("inventory");
  });

  test.skipIf(!hasPostgres)("a migration this release does not know (a newer release ran): status says so and exits 1", async () => {
    const t = await createTestDatabase("valerix_cli");
    cleanups.push(t.drop);
    const config: DatabaseConfig = { role: "all", databaseUrl: t.url, dataDir: "unused" };
    expect((await migrate(config)).code).toBe(0);
    const c = new pg.Client({ connectionString: t.url });
    await c.connect();
    await c.query(`insert into valerix_orders_migrations (name, timestamp) values ('9999_from_the_future', now())`);
    await c.end();
    const status = await migrate(config, true);
    expect(status.code).toBe(1);
    expect(status.out).toMatch(/  applied  9999_from_the_future +\(not in valerix \d+\.\d+\.\d+\)/);
    expect(status.err).toContain("orders/9999_from_the_future");
    // Applying refuses too, in one line.
    const applied = await migrate(config);
    expect(applied.code).toBe(1);
    expect(applied.err).toMatch(/^valerix: migrating orders failed: .*9999_from_the_future/);
    expect(applied.err).not.toContain("\n");
  });
});

describe("valerix migrate on the embedded database", () => {
  test("status creates nothing; migrate creates and migrates the data folder", async () => {
    const dir = mkdtempSync(join(tmpdir(), "valerix-cli-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const config: DatabaseConfig = { role: "all", databaseUrl: undefined, dataDir: join(dir, "data") };

    const before = await migrate(config, true);
    expect(before.code).toBe(EXIT_PENDING);
    expect(before.out).toContain(`${TOTAL} pending`);
    expect(existsSync(join(dir, "data"))).toBe(false);

    expect(await migrate(config)).toMatchObject({ code: 0, err: "" });
    const after = await migrate(config, true);
    expect(after.code).toBe(0);
    expect(after.out).toContain(`database: embedded PostgreSQL (PGlite) in ${join(dir, "data")}`);
    expect(after.out).toContain("orders\n  applied  0001_init");
  }, 60_000);
});

describe("failures are one line", () => {
  test("an embedded database a server has open is left alone", async () => {
    const dir = mkdtempSync(join(tmpdir(), "valerix-cli-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "PG_VERSION"), "17\n");
    writeFileSync(join(dir, "postmaster.pid"), "-42\n");
    for (const status of [false, true]) {
      const r = await migrate({ role: "all", databaseUrl: undefined, dataDir: dir }, status);
      expect(r.code).toBe(1);
      expect(r.err).toStartWith(`valerix: the embedded database in ${dir} is in use`);
    }
  });


  test("an unreachable server: exit 1, the reason, no stack", async () => {
    const r = await migrate({ role: "all", databaseUrl: "postgres://postgres@127.0.0.1:1/nowhere", dataDir: "unused" });
    expect(r.code).toBe(1);
    expect(r.err).toBe("valerix: cannot reach the database: connect ECONNREFUSED 127.0.0.1:1");
  });

  test("errorLine: AggregateErrors by their parts, multi-line messages on one line, a bare code", () => {
    const refused = (addr: string) => Object.assign(new Error(`connect ECONNREFUSED ${addr}`), { code: "ECONNREFUSED" });
    expect(errorLine(new AggregateError([refused("::1:1"), refused("127.0.0.1:1")], ""))).toBe("connect ECONNREFUSED ::1:1; connect ECONNREFUSED 127.0.0.1:1");
    expect(errorLine(new Error("first\n  second"))).toBe("first second");
    expect(errorLine(Object.assign(new Error(""), { code: "ETIMEDOUT" }))).toBe("ETIMEDOUT");
    expect(errorLine("plain")).toBe("plain");
  });
});
