import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, type Config } from "../../src/config.ts";
import { startServer, type RunningServer } from "../../src/server.ts";
import type { Logger } from "../../platform/logging.ts";
import type { Clock } from "../../platform/clock.ts";
import { createTestDatabase, hasPostgres } from "./services.ts";
import { openDatabase, type Database } from "../../platform/db.ts";
import { migrateModule, type MigratedModule } from "../../migrations/index.ts";

export type Backend = "pglite" | "postgres";

/** The backends a suite runs against: PGlite always; the real PostgreSQL when it answers. */
export const BACKENDS: Backend[] = hasPostgres ? ["pglite", "postgres"] : ["pglite"];

/** A database of its own on `backend`, migrated for `modules`; `close()` removes it. */
export async function openTestDatabase(backend: Backend, modules: MigratedModule[]): Promise<{ database: Database; close(): Promise<void> }> {
  let database: Database;
  let remove: () => Promise<void>;
  if (backend === "postgres") {
    const t = await createTestDatabase("valerix_db");
    database = await openDatabase({ databaseUrl: t.url, dataDir: "" });
    remove = t.drop;
  } else {
    const dir = mkdtempSync(join(tmpdir(), "valerix-db-"));
    database = await openDatabase({ dataDir: dir });
    remove = async () => rmSync(dir, { recursive: true, force: true });
  }
  for (const m of modules) await migrateModule(database.db, m);
  return {
    database,
    async close() {
      await database.close();
      await remove();
    },
  };
}

export interface TestSystem {
  server: RunningServer;
  url: string;
  config: Config;
  /** Restarts the server on the same data (same folder or database), with `env` changed if given. */
  restart(env?: Record<string, string>): Promise<void>;
  stop(): Promise<void>;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  get(path: string, headers?: Record<string, string>): Promise<Response>;
}

/** Starts the whole `all` role on port 0 with its own data, and cleans it up on `stop()`. */
export async function startSystem(backend: Backend, env: Record<string, string> = {}, opts: { logger?: Logger; clock?: Clock } = {}): Promise<TestSystem> {
  let dataDir: string | undefined;
  let dropDb: (() => Promise<void>) | undefined;
  const vars: Record<string, string> = { PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "silent", ...env };
  if (backend === "pglite") {
    dataDir = mkdtempSync(join(tmpdir(), "valerix-test-"));
    vars.VALERIX_DATA_DIR = dataDir;
  } else {
    const db = await createTestDatabase();
    vars.DATABASE_URL = db.url;
    dropDb = db.drop;
  }
  let config = loadConfig(vars);
  let server = await startServer(config, opts);
  const sys: TestSystem = {
    get server() {
      return server;
    },
    get url() {
      return server.url;
    },
    get config() {
      return config;
    },
    async restart(env) {
      await server.stop();
      if (env) config = loadConfig({ ...vars, ...env });
      server = await startServer(config, opts);
    },
    async stop() {
      await server.stop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      await dropDb?.();
    },
    post(path, body, headers = {}) {
      return fetch(server.url + path, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
    },
    get(path, headers = {}) {
      return fetch(server.url + path, { headers });
    },
  };
  return sys;
}

let keyCounter = 0;
export const newKey = (prefix = "k") => `${prefix}-${process.pid}-${Date.now()}-${keyCounter++}`;
