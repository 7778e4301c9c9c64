import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { embeddedTemplate } from "./pglite-template.ts";
import { Kysely, PGliteDialect, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { PGlite } from "@electric-sql/pglite";
// Embedded so that `bun build --compile` carries PGlite inside the executable; in `bun run`
// these resolve to the files in node_modules. Same code path either way.
import pgliteWasmPath from "@electric-sql/pglite/pglite.wasm" with { type: "file" };
import initdbWasmPath from "@electric-sql/pglite/initdb.wasm" with { type: "file" };
import pgliteDataPath from "@electric-sql/pglite/pglite.data" with { type: "file" };

/**
 * The database behind a role. `db` is untyped at this level: each module types its own
 * tables (`order.tables.ts`, `inventory.tables.ts`) and narrows `db` with `withTables()`.
 */
export interface Database {
  readonly kind: "postgres" | "pglite";
  readonly db: Kysely<any>;
  /** Raw SQL with positional parameters, for hot paths that want one named prepared statement. */
  query<R = Record<string, unknown>>(name: string, text: string, params: unknown[]): Promise<R[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  databaseUrl?: string | undefined;
  dataDir: string;
  poolSize?: number;
}

// int8 and numeric come back as strings by default; our counts and sums fit in a double.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => Number(v));

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl, opts.poolSize ?? 20) : openPGlite(opts.dataDir);
}

function openPostgres(url: string, max: number): Database {
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 5_000, idleTimeoutMillis: 30_000 });
  // An idle client losing its server must not crash the process; the next checkout reconnects.
  pool.on("error", () => {});
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  return {
    kind: "postgres",
    db,
    async query<R>(name: string, text: string, params: unknown[]) {
      const res = await pool.query({ name, text, values: params as unknown[] });
      return res.rows as R[];
    },
    async ping() {
      await pool.query("select 1");
    },
    async close() {
      await db.destroy();
    },
  };
}

async function openPGlite(dataDir: string): Promise<Database> {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  // An empty folder starts from the initialised cluster the build embedded, if there is one.
  const template = existsSync(join(dir, "PG_VERSION")) ? undefined : embeddedTemplate();
  const [pgliteWasmModule, initdbWasmModule, fsBundle] = await Promise.all([
    WebAssembly.compile(await Bun.file(pgliteWasmPath).arrayBuffer()),
    WebAssembly.compile(await Bun.file(initdbWasmPath).arrayBuffer()),
    Bun.file(pgliteDataPath).arrayBuffer().then((b) => new Blob([b])),
  ]);
  const pglite = await PGlite.create({
    dataDir: dir,
    pgliteWasmModule,
    initdbWasmModule,
    fsBundle,
    ...(template ? { loadDataDir: template } : {}),
    parsers: { 20: (v: string) => Number(v), 1700: (v: string) => Number(v) },
  });
  const db = new Kysely<any>({ dialect: new PGliteDialect({ pglite }) });
  return {
    kind: "pglite",
    db,
    async query<R>(_name: string, text: string, params: unknown[]) {
      const res = await pglite.query<R>(text, params as any[]);
      return res.rows;
    },
    async ping() {
      await pglite.query("select 1");
    },
    async close() {
      await db.destroy();
      if (!pglite.closed) await pglite.close();
    },
  };
}

/** True when every named table exists and answers a query. */
export async function tablesAnswer(database: Database, tables: readonly string[]): Promise<boolean> {
  for (const t of tables) {
    await sql`select 1 from ${sql.table(t)} limit 1`.execute(database.db);
  }
  return true;
}
