import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { randomUUID } from "node:crypto";
import { createTestDatabase, hasPostgres, PG_ADMIN_URL } from "../support/services.ts";
import { OPS, run, tool, type RunResult } from "./support.ts";

// The backup path end to end on the real PostgreSQL: backup.sh dumps, ship-daily.sh sends the
// bundle to an HTTP endpoint on 127.0.0.1 (standing in for the off-site service, which is
// outside our control), restore.sh brings it back into another database, and the data match.

const tools = ["pg_dump", "pg_restore", "psql", "curl", "flock", "tar", "sha256sum"].map((t) => tool(t));
const skip = !hasPostgres || tools.some((t) => t.skip);
const BACKUP = join(OPS, "backup");

const admin = new URL(PG_ADMIN_URL);
const pgEnv: Record<string, string | undefined> = {
  PGHOST: admin.hostname,
  PGPORT: admin.port || "5432",
  PGUSER: decodeURIComponent(admin.username) || "postgres",
  PGPASSWORD: admin.password ? decodeURIComponent(admin.password) : undefined,
  PGDATABASE: undefined,
};

function script(name: string, args: string[], env: Record<string, string | undefined>): Promise<RunResult> {
  for (const t of tools) t.need();
  return run(["bash", join(BACKUP, name), ...args], { env: { ...pgEnv, ...env } });
}

async function query<T = any>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}

const dbName = (url: string) => new URL(url).pathname.slice(1);
const sha256 = (bytes: Uint8Array | string) => new Bun.CryptoHasher("sha256").update(bytes).digest("hex");

/** Everything a restore must bring back, in a comparable form. */
async function snapshot(url: string) {
  return {
    items: await query(url, "select id, sku, name, quantity, attrs from items order by id"),
    movements: await query(url, "select id, item_id, delta, kind, at from movements order by id"),
    view: await query(url, "select * from stock_view order by sku"),
    nextId: (await query(url, "select last_value from items_id_seq"))[0].last_value,
  };
}

interface Recorded {
  method: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** A stand-in for the off-site backup service: records each call, answers 201. */
function fakeBackupService() {
  const calls: Recorded[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => {
        headers[k] = v;
      });
      calls.push({ method: req.method, headers, body: new Uint8Array(await req.arrayBuffer()) });
      return new Response("stored", { status: 201 });
    },
  });
  return { calls, url: `http://127.0.0.1:${server.port}/backups`, stop: () => server.stop(true) };
}

/** A service that reads the whole request, then hangs up without answering: the lost reply. */
function silentService() {
  let calls = 0;
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(socket, data) {
        const text = Buffer.from(data).toString("latin1");
        (socket as any).seen = ((socket as any).seen ?? "") + text;
        const seen: string = (socket as any).seen;
        const head = seen.indexOf("\r\n\r\n");
        if (head === -1) return;
        const length = Number(/content-length:\s*(\d+)/i.exec(seen.slice(0, head))?.[1] ?? 0);
        if (Buffer.byteLength(seen.slice(head + 4), "latin1") >= length && !(socket as any).counted) {
          (socket as any).counted = true;
          calls++;
          socket.end();
        }
      },
    },
  });
  return { calls: () => calls, url: `http://127.0.0.1:${listener.port}/backups`, stop: () => listener.stop(true) };
}

describe.skipIf(skip)("backup, ship, restore (real PostgreSQL)", () => {
  let source: Awaited<ReturnType<typeof createTestDatabase>>;
  const cleanups: (() => Promise<void> | void)[] = [];
  let dir: string;

  beforeAll(async () => {
    source = await createTestDatabase("valerix_bk");
    cleanups.push(() => source.drop());
    dir = mkdtempSync(join(tmpdir(), "valerix-backups-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    await query(
      source.url,
      `create type movement_kind as enum ('deduct', 'release');
       create table items (
         id serial primary key,
         sku text not null unique,
         name text not null,
         quantity integer not null check (quantity >= 0),
         attrs jsonb not null default '{}'
       );
       create table movements (
         id bigint generated always as identity primary key,
         item_id integer not null references items(id),
         delta integer not null,
         kind movement_kind not null,
         at timestamptz not null default now(),
         unique (item_id, id)
       );
       create index movements_item on movements (item_id, at);
       create view stock_view as select sku, quantity from items where quantity > 0;
       insert into items (sku, name, quantity, attrs)
         select 'SKU-' || g, 'Item ' || g || ' — ünïcødé ✓', g * 3, jsonb_build_object('g', g, 'tags', array['a', 'b'])
         from generate_series(1, 200) g;
       insert into movements (item_id, delta, kind, at)
         select 1 + (g % 200), -1, case when g % 7 = 0 then 'release'::movement_kind else 'deduct' end,
                timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
         from generate_series(1, 1000) g;`,
    );
  }, 60_000);

  // Dropping several databases can outlast the default hook timeout on a busy machine.
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  }, 60_000);

  const dumpsOf = (db: string) => readdirSync(join(dir, db)).filter((f) => f.endsWith(".dump")).sort();

  test("backup.sh writes complete, checksummed dumps and keeps only the newest BACKUP_KEEP", async () => {
    const db = dbName(source.url);
    for (let i = 0; i < 3; i++) {
      await query(source.url, "insert into items (sku, name, quantity) values ($1, 'run', 1)", [`RUN-${i}`]);
      const r = await script("backup.sh", [db], { BACKUP_DIR: dir, BACKUP_KEEP: "2" });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringContaining(`${db} -> `) });
    }
    const files = readdirSync(join(dir, db)).sort();
    const dumps = dumpsOf(db);
    expect(dumps.length).toBe(2);
    expect(files).toEqual(dumps.flatMap((d) => [d, `${d}.sha256`]).sort());
    for (const d of dumps) {
      const [sum, name] = readFileSync(join(dir, db, `${d}.sha256`), "utf8").trim().split(/\s+/);
      expect(name).toBe(d);
      expect(sum).toBe(sha256(readFileSync(join(dir, db, d))));
      expect(d).toMatch(new RegExp(`^${db}_\\d{8}T\\d{6}\\.\\d{3}Z\\.dump$`));
    }
  });

  test("backup.sh reports a database it cannot dump, keeps going, and leaves no partial file", async () => {
    const db = dbName(source.url);
    const before = dumpsOf(db);
    const missing = `valerix_missing_${randomUUID().slice(0, 8)}`;
    const r = await script("backup.sh", [missing, db], { BACKUP_DIR: dir, BACKUP_KEEP: "2" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${missing}: pg_dump failed`);
    expect(readdirSync(join(dir, missing))).toEqual([]);
    const after = dumpsOf(db);
    expect(after.at(-1)! > before.at(-1)!).toBe(true);
    rmSync(join(dir, missing), { recursive: true });
  });

  test("backup.sh refuses to run without BACKUP_DIR or with a bad BACKUP_KEEP", async () => {
    expect((await script("backup.sh", ["x"], { BACKUP_DIR: undefined })).code).toBe(2);
    expect((await script("backup.sh", ["x"], { BACKUP_DIR: dir, BACKUP_KEEP: "0" })).code).toBe(2);
    expect((await script("backup.sh", [], { BACKUP_DIR: dir })).code).toBe(2);
  });

  test("ship-daily.sh sends one bundle in a single call, and no second call that day", async () => {
    const service = fakeBackupService();
    cleanups.push(service.stop);
    const env = { BACKUP_DIR: dir, BACKUP_UPLOAD_URL: service.url, BACKUP_UPLOAD_TOKEN: "t0ken", BACKUP_SHIP_DAY: "2031-01-15" };

    const first = await script("ship-daily.sh", [], env);
    expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: expect.stringContaining("shipped for 2031-01-15 (HTTP 201)") });
    expect(service.calls.length).toBe(1);
    const call = service.calls[0]!;
    expect(call.method).toBe("PUT");
    expect(call.headers["content-type"]).toBe("application/gzip");
    expect(call.headers["authorization"]).toBe("Bearer t0ken");
    expect(call.headers["x-backup-day"]).toBe("2031-01-15");
    expect(call.headers["x-backup-sha256"]).toBe(sha256(call.body));
    // The token never appears in what the script prints.
    expect(first.stderr + first.stdout).not.toContain("t0ken");
    expect(readFileSync(join(dir, ".shipped", "2031-01-15"), "utf8")).toStartWith("ok ");

    const again = await script("ship-daily.sh", [], env);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain("already shipped for 2031-01-15");
    expect(service.calls.length).toBe(1);

    const nextDay = await script("ship-daily.sh", [], { ...env, BACKUP_SHIP_DAY: "2031-01-16", BACKUP_UPLOAD_METHOD: "POST" });
    expect(nextDay.code).toBe(0);
    expect(service.calls.map((c) => c.method)).toEqual(["PUT", "POST"]);

    const bundle = join(dir, "..", `${dbName(source.url)}-shipped.tar.gz`);
    writeFileSync(bundle, call.body);
    cleanups.push(() => rmSync(bundle, { force: true }));
    const listing = await run(["tar", "-tzf", bundle]);
    const newest = dumpsOf(dbName(source.url)).at(-1)!;
    expect(listing.stdout.trim().split("\n").sort()).toEqual(["BUNDLE", "SHA256SUMS", `${dbName(source.url)}/${newest}`]);
  });

  test("ship-daily.sh never repeats a call whose answer was lost, unless forced", async () => {
    const silent = silentService();
    cleanups.push(silent.stop);
    const env = { BACKUP_DIR: dir, BACKUP_UPLOAD_URL: silent.url, BACKUP_SHIP_DAY: "2031-02-01" };

    const lost = await script("ship-daily.sh", [], env);
    expect(lost.code).toBe(3);
    expect(silent.calls()).toBe(1);
    expect(readFileSync(join(dir, ".shipped", "2031-02-01"), "utf8")).toStartWith("unknown ");

    const retry = await script("ship-daily.sh", [], env);
    expect(retry.code).toBe(3);
    expect(retry.stderr).toContain("outcome is unknown");
    expect(silent.calls()).toBe(1);

    const service = fakeBackupService();
    cleanups.push(service.stop);
    const forced = await script("ship-daily.sh", ["--force"], { ...env, BACKUP_UPLOAD_URL: service.url });
    expect(forced.code).toBe(0);
    expect(service.calls.length).toBe(1);
  });

  test("ship-daily.sh may try again when it could not connect at all (nothing was sent)", async () => {
    const closed = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const url = `http://127.0.0.1:${closed.port}/backups`;
    closed.stop(true);
    const env = { BACKUP_DIR: dir, BACKUP_UPLOAD_URL: url, BACKUP_SHIP_DAY: "2031-03-01" };
    const refused = await script("ship-daily.sh", [], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("no call was made");
    expect(existsSync(join(dir, ".shipped", "2031-03-01"))).toBe(false);

    const service = fakeBackupService();
    cleanups.push(service.stop);
    const later = await script("ship-daily.sh", [], { ...env, BACKUP_UPLOAD_URL: service.url });
    expect(later.code).toBe(0);
    expect(service.calls.length).toBe(1);
  });

  test("ship-daily.sh will not ship a dump that no longer matches its checksum", async () => {
    const copy = mkdtempSync(join(tmpdir(), "valerix-backups-bad-"));
    cleanups.push(() => rmSync(copy, { recursive: true, force: true }));
    const db = dbName(source.url);
    await run(["cp", "-r", join(dir, db), copy]);
    const newest = join(copy, db, dumpsOf(db).at(-1)!);
    const bytes = readFileSync(newest);
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    writeFileSync(newest, bytes);
    const service = fakeBackupService();
    cleanups.push(service.stop);
    const r = await script("ship-daily.sh", [], { BACKUP_DIR: copy, BACKUP_UPLOAD_URL: service.url, BACKUP_SHIP_DAY: "2031-04-01" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("damaged");
    expect(service.calls.length).toBe(0);
  });

  test("restore.sh brings the shipped bundle back into another database, as the given owner", async () => {
    const expected = await snapshot(source.url);
    const target = await createTestDatabase("valerix_rs");
    const owner = `valerix_owner_${randomUUID().replaceAll("-", "").slice(0, 8)}`;
    await query(PG_ADMIN_URL, `create role ${owner}`);
    // As init-databases.sh sets things up: the app's role owns its database.
    await query(PG_ADMIN_URL, `alter database ${dbName(target.url)} owner to ${owner}`);
    cleanups.push(async () => {
      await target.drop();
      await query(PG_ADMIN_URL, `drop role if exists ${owner}`);
    });
    const bundle = join(dir, "..", `${dbName(source.url)}-shipped.tar.gz`);

    const list = await script("restore.sh", ["--list", bundle], {});
    expect(list.code).toBe(0);
    expect(list.stdout).toContain("day: 2031-01-15");

    const r = await script("restore.sh", ["--owner", owner, bundle, dbName(target.url)], {});
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringContaining("done: 2 tables") });
    expect(await snapshot(target.url)).toEqual(expected);
    const owners = await query(target.url, "select tableowner from pg_tables where schemaname = 'public' order by tablename");
    expect(owners.map((o) => o.tableowner)).toEqual([owner, owner]);
    // Constraints, defaults, identity and indexes came back, not only rows.
    await expect(query(target.url, "update items set quantity = -1 where id = 1")).rejects.toThrow(/check constraint/);
    await expect(query(target.url, "insert into movements (item_id, delta, kind) values (999999, 1, 'deduct')")).rejects.toThrow(/foreign key/);
    const [inserted] = await query(target.url, "insert into items (sku, name, quantity) values ('NEW', 'n', 1) returning id");
    expect(Number(inserted.id)).toBe(Number(expected.nextId) + 1);
    const idx = await query(target.url, "select indexname from pg_indexes where tablename = 'movements' order by 1");
    expect(idx.map((i) => i.indexname)).toContain("movements_item");
  });

  test("restore.sh --clean puts a local dump back over changed data, in one transaction", async () => {
    const db = dbName(source.url);
    const dump = join(dir, db, dumpsOf(db).at(-1)!);
    const target = await createTestDatabase("valerix_rc");
    cleanups.push(() => target.drop());
    expect((await script("restore.sh", [dump, dbName(target.url)], {})).code).toBe(0);
    const expected = await snapshot(target.url);

    await query(target.url, "delete from movements where id > 10; update items set quantity = 0; create table stray (x int)");
    const r = await script("restore.sh", ["--clean", dump, target.url], {});
    expect(r.code).toBe(0);
    expect(await snapshot(target.url)).toEqual(expected);
    // The URL's credentials are never printed.
    expect(r.stderr).not.toContain(new URL(target.url).username + "@");

    // Without --clean the objects already exist: the restore fails and changes nothing.
    await query(target.url, "update items set name = 'kept' where id = 1");
    const clash = await script("restore.sh", [dump, dbName(target.url)], {});
    expect(clash.code).not.toBe(0);
    expect((await query(target.url, "select name from items where id = 1"))[0].name).toBe("kept");
  });

  test("restore.sh refuses a damaged dump or bundle and leaves the target untouched", async () => {
    const db = dbName(source.url);
    const work = mkdtempSync(join(tmpdir(), "valerix-restore-bad-"));
    cleanups.push(() => rmSync(work, { recursive: true, force: true }));
    const newest = dumpsOf(db).at(-1)!;
    await run(["cp", join(dir, db, newest), join(dir, db, `${newest}.sha256`), work]);
    const dump = join(work, newest);
    const bytes = readFileSync(dump);
    bytes[100] = bytes[100]! ^ 0xff;
    writeFileSync(dump, bytes);
    const target = await createTestDatabase("valerix_rd");
    cleanups.push(() => target.drop());

    const r = await script("restore.sh", [dump, dbName(target.url)], {});
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("does not match");

    // A bundle whose dump was swapped after SHA256SUMS was written.
    const bundleDir = join(work, "bundle");
    await run(["mkdir", "-p", bundleDir]);
    await run(["tar", "-xzf", join(dir, "..", `${db}-shipped.tar.gz`), "-C", bundleDir]);
    const inner = join(bundleDir, db, readdirSync(join(bundleDir, db))[0]!);
    writeFileSync(inner, bytes);
    const badBundle = join(work, "bad.tar.gz");
    await run(["tar", "-czf", badBundle, "-C", bundleDir, "."]);
    const rb = await script("restore.sh", [badBundle, dbName(target.url)], {});
    expect(rb.code).toBe(1);
    expect(rb.stderr).toContain("checksum mismatch");

    const tables = await query(target.url, "select count(*)::int as n from pg_tables where schemaname = 'public'");
    expect(tables[0].n).toBe(0);
  });
});

describe.skipIf(skip)("init-databases.sh (real PostgreSQL)", () => {
  const script = join(OPS, "k8s/base/postgres/init-databases.sh");
  const names: string[] = [];
  let secrets: string;

  beforeAll(() => {
    secrets = mkdtempSync(join(tmpdir(), "valerix-db-secrets-"));
    for (const role of ["orders", "inventory"]) {
      const name = `valerix_it_${role}_${randomUUID().replaceAll("-", "").slice(0, 6)}`;
      names.push(name);
      writeFileSync(join(secrets, `db-${name}`), `pw-${role}-'quote"`);
    }
  });

  afterAll(async () => {
    for (const n of names) {
      await query(PG_ADMIN_URL, `drop database if exists ${n} with (force)`);
      await query(PG_ADMIN_URL, `drop role if exists ${n}`);
    }
    rmSync(secrets, { recursive: true, force: true });
  }, 60_000);

  test("creates one login role and one database per db-<name> file, with its password, twice over", async () => {
    for (let i = 0; i < 2; i++) {
      const r = await run(["bash", script], { env: { ...pgEnv, VALERIX_DB_SECRETS_DIR: secrets, VALERIX_DATABASES: undefined } });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      for (const n of names) expect(r.stdout).toContain(`database ${n} ready`);
    }
    for (const n of names) {
      const [db] = await query(PG_ADMIN_URL, "select pg_get_userbyid(datdba) as owner from pg_database where datname = $1", [n]);
      expect(db.owner).toBe(n);
      const [role] = await query(PG_ADMIN_URL, "select rolcanlogin, rolsuper, rolpassword from pg_authid where rolname = $1", [n]);
      expect(role.rolcanlogin).toBe(true);
      expect(role.rolsuper).toBe(false);
      // Stored hashed (quotes in the password did not break the SQL that set it).
      expect(role.rolpassword).toStartWith("SCRAM-SHA-256$");
    }
  });

  test("refuses a name that is not a plain identifier, and a database without a password", async () => {
    const bad = await run(["bash", script], { env: { ...pgEnv, VALERIX_DATABASES: "Robert;drop", VALERIX_DB_SECRETS_DIR: secrets } });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("not a plain lower-case identifier");
    const nopw = await run(["bash", script], { env: { ...pgEnv, VALERIX_DATABASES: "valerix_nopw", VALERIX_DB_SECRETS_DIR: secrets, VALERIX_DB_PASSWORD: undefined } });
    expect(nopw.code).toBe(1);
    expect(nopw.stderr).toContain("no password");
  });
});
