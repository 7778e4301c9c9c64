import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { embeddedTemplate } from "./pglite-template.ts";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { PGlite } from "@electric-sql/pglite";
import { PglitePgConnection } from "@electric-sql/pglite/node-postgres";
import { databaseError, rethrowDatabaseError } from "./db-errors.ts";
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
  /** PostgreSQL connections this process may open, both pools together (see `poolSizes`). */
  poolSize?: number;
  /** PostgreSQL's `application_name` for every connection, so `pg_stat_activity` tells processes apart. */
  applicationName?: string;
  /** Told when a pooled connection fails outside any query (the server went away); the pool replaces it. */
  onConnectionError?: (err: Error) => void;
}

/**
 * How `poolSize` splits: the order path's pool (`query`) and Kysely's (admin, lists, the retry
 * worker's bookkeeping, health, migrations). Group commit caps the order path's statements in
 * flight per kind, so the hot pool need not be large; Kysely's needs a few.
 */
export function poolSizes(total: number): { hot: number; side: number } {
  if (!(Number.isInteger(total) && total >= 2)) throw new RangeError(`poolSize must be a whole number of at least 2, got ${total}`);
  const side = Math.min(4, Math.max(1, Math.round(total / 4)));
  return { hot: total - side, side };
}

/**
 * Time bounds, so no request waits on PostgreSQL past Bun's 30 s idle timeout, even when the
 * server stops answering without closing its sockets (a frozen host, a partition):
 * - connecting (both pools) and waiting for a free Kysely client: 3 s; a server that is up
 *   accepts in milliseconds, one that is down refuses at once.
 * - order-path statements: 5 s in the server (`statement_timeout`: they take milliseconds, a
 *   batch of 64 well under one second) and 7 s at the client, which also covers a silent server.
 * - Kysely's statements: 10 s at the client (`query_timeout`), none in the server: migrations and
 *   the state counts behind /metrics may legitimately run longer there, and rarely run on a request.
 * The worst order request (claim, inventory call of 3 s, transition, a read) stays under 30 s.
 */
export const DB_TIMEOUTS = { connectMs: 3_000, hotStatementMs: 5_000, hotClientMs: 7_000, sideQueryMs: 10_000 } as const;

// int8 and numeric come back as strings by default; our counts and sums fit in a double.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => Number(v));

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl, opts) : openPGlite(opts.dataDir);
}

// int8 and numeric, parsed to numbers like the pg parsers above.
const NUMERIC_TYPES = new Set([20, 1700]);

/**
 * Bun's built-in PostgreSQL client for the hot path: it prepares each statement once per
 * connection (by text; `name` is not needed) and costs about a third of node-pg's CPU per query.
 * Errors carry the SQLSTATE in `code`, as node-pg's do, so callers need not know which client ran.
 */
async function bunQuery<R>(client: InstanceType<typeof Bun.SQL>, text: string, params: unknown[]): Promise<R[]> {
  let res: Awaited<ReturnType<typeof client.unsafe>>;
  const query = client.unsafe(text, params as any[]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    res = await Promise.race([
      query,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          query.cancel();
          reject(Object.assign(new Error(`no answer from PostgreSQL within ${DB_TIMEOUTS.hotClientMs} ms`), { code: "ETIMEDOUT" }));
        }, DB_TIMEOUTS.hotClientMs);
      }),
    ]);
  } catch (err) {
    const sqlstate = (err as { errno?: unknown }).errno;
    if (typeof sqlstate === "string") Object.defineProperty(err, "code", { value: sqlstate, configurable: true });
    throw databaseError(err);
  } finally {
    clearTimeout(timer);
  }
  const columns = (res as unknown as { columns?: Array<{ name: string; type: number }> }).columns ?? [];
  const numeric = columns.filter((c) => NUMERIC_TYPES.has(c.type)).map((c) => c.name);
  if (numeric.length) {
    for (const row of res as unknown as Array<Record<string, unknown>>) {
      for (const c of numeric) if (typeof row[c] === "string") row[c] = Number(row[c]);
    }
  }
  return res as unknown as R[];
}

function openPostgres(url: string, opts: DatabaseOptions): Database {
  const { hot, side } = poolSizes(opts.poolSize ?? 12);
  // A name given in the URL (`?application_name=`) wins.
  const applicationName = new URL(url).searchParams.has("application_name") ? undefined : opts.applicationName;
  // Kysely's pool serves what is off the order path (admin, lists, the retry worker); the order
  // path runs on `fast`.
  const pool = new pg.Pool({
    connectionString: url,
    max: side,
    connectionTimeoutMillis: DB_TIMEOUTS.connectMs,
    query_timeout: DB_TIMEOUTS.sideQueryMs,
    idleTimeoutMillis: 30_000,
    ...(applicationName ? { application_name: applicationName } : {}),
  });
  const lost = (err: Error) => opts.onConnectionError?.(err);
  // `error` on the pool covers idle clients only. A client Kysely has checked out (a transaction
  // between statements) gets PostgreSQL's goodbye (57P01 on a fast shutdown, or a bare end of the
  // stream) as an `error` event of its own; without a listener that event ends the process.
  // Every client gets one; the failed client is not queryable and the pool drops it on release.
  pool.on("connect", (client) => client.on("error", lost));
  pool.on("error", lost);
  const wrapped = new WeakSet<pg.PoolClient>();
  // What Kysely sees: connection failures as `DatabaseUnavailableError`, from checkout and queries.
  const kyselyPool = {
    options: pool.options,
    async connect() {
      const client = await pool.connect().catch(rethrowDatabaseError);
      if (!wrapped.has(client)) {
        wrapped.add(client);
        const query = client.query.bind(client) as (...args: unknown[]) => unknown;
        (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
          const r = query(...args);
          return r instanceof Promise ? r.catch(rethrowDatabaseError) : r;
        };
      }
      return client;
    },
    end: () => pool.end(),
  };
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: kyselyPool }) });
  const fast = new Bun.SQL(url, {
    max: hot,
    idleTimeout: 30,
    connectionTimeout: DB_TIMEOUTS.connectMs / 1000,
    connection: { statement_timeout: DB_TIMEOUTS.hotStatementMs, ...(applicationName ? { application_name: applicationName } : {}) },
  });
  return {
    kind: "postgres",
    db,
    query<R>(_name: string, text: string, params: unknown[]) {
      return bunQuery<R>(fast, text, params);
    },
    async ping() {
      await pool.query("select 1").catch(rethrowDatabaseError);
    },
    async close() {
      await fast.close();
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
  // Everything reaches PGlite through node-postgres on PGlite's wire-protocol adapter, one client
  // at a time: named statements are then prepared once, as on PostgreSQL (in WebAssembly,
  // planning the hot path's CTE chains costs more than running them), and a Kysely transaction
  // holds the only client, so no other statement can slip into it.
  class PgliteClient extends pg.Client {
    constructor(config?: pg.ClientConfig) {
      super({ ...config, connection: new PglitePgConnection({ pglite }) } as unknown as pg.ClientConfig);
    }
  }
  const pool = new pg.Pool({ Client: PgliteClient, max: 1, idleTimeoutMillis: 0 } as unknown as pg.PoolConfig);
  pool.on("error", () => {});
  // PGlite's session outlives a client, with the statements it prepared: a replacement client
  // (after a connection-level failure) prepares under names of its own.
  const generations = new WeakMap<pg.PoolClient, number>();
  let generation = 0;
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  return {
    kind: "pglite",
    db,
    async query<R>(name: string, text: string, params: unknown[]) {
      const client = await pool.connect();
      try {
        let gen = generations.get(client);
        if (gen === undefined) generations.set(client, (gen = generation++));
        const res = await client.query({ name: `${name}_${gen}`, text, values: params as unknown[] });
        return res.rows as R[];
      } finally {
        // Released without the error: a refused statement (a CHECK, a conflict) leaves the client sound.
        client.release();
      }
    },
    async ping() {
      await pool.query("select 1");
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
