import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { DatabaseConfig, Role } from "./config.ts";
import { openDatabase, type Database } from "../platform/db.ts";
import { DatabaseUnavailableError } from "../platform/db-errors.ts";
import { migrateModule, migrationStatus, moduleMigrations, type MigratedModule, type MigrationStatus } from "../migrations/index.ts";
import { EXIT_PENDING } from "./cli.ts";
import { VERSION } from "./version.ts";

/**
 * `valerix migrate` and `valerix migrate --status`: the migrations the server would apply at
 * start-up, applied or listed ahead of time, then exit. Output is plain text for a person or a
 * job log; a failure is one line on stderr, never a stack trace.
 */
export interface CommandOutput {
  out(line: string): void;
  err(line: string): void;
}

const consoleOutput: CommandOutput = { out: (l) => console.log(l), err: (l) => console.error(l) };

/** The modules whose schema a role owns, in the order the server migrates them. */
const MODULES_BY_ROLE: Record<Role, MigratedModule[]> = {
  all: ["inventory", "orders"],
  inventory: ["inventory"],
  orders: ["orders"],
};

/** Where the migrations go, without the credentials a URL may carry. */
function describeTarget(config: DatabaseConfig): string {
  if (!config.databaseUrl) return `embedded PostgreSQL (PGlite) in ${resolve(config.dataDir)}`;
  const u = new URL(config.databaseUrl);
  return `PostgreSQL at ${u.host || "local socket"}${u.pathname}`;
}

/** An error as one line: pg's connection failures can be AggregateErrors with no message of their own. */
export function errorLine(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length) {
    return [...new Set(err.errors.map(errorLine))].join("; ");
  }
  // An operator reads the driver's own reason (refused, unknown host, bad password), not the
  // generic outage wording the HTTP layer answers with.
  if (err instanceof DatabaseUnavailableError && err.cause !== undefined) return errorLine(err.cause);
  const e = err as { message?: unknown; code?: unknown } | null;
  const message = typeof e?.message === "string" && e.message.trim() ? e.message : typeof e?.code === "string" ? e.code : String(err);
  return message.trim().replace(/\s*\n\s*/g, " ");
}

export async function runMigrateCommand(config: DatabaseConfig, opts: { status: boolean }, io: CommandOutput = consoleOutput): Promise<number> {
  const modules = MODULES_BY_ROLE[config.role];
  io.out(`database: ${describeTarget(config)}`);
  // Listing must not create anything: an embedded database that does not exist yet has every
  // migration pending, and opening it would initialise a cluster in the folder.
  if (opts.status && !config.databaseUrl && !existsSync(join(resolve(config.dataDir), "PG_VERSION"))) {
    io.out("(no database there yet)");
    return printStatus(
      modules.map((module) => ({ module, applied: [], pending: Object.keys(moduleMigrations[module]).sort(), unknown: [] })),
      io,
    );
  }
  // PGlite does not lock its folder: a second process opening it while a server runs would
  // write the same files from a second PostgreSQL. A running one leaves postmaster.pid there.
  if (!config.databaseUrl && existsSync(join(resolve(config.dataDir), "postmaster.pid"))) {
    io.err(
      `valerix: the embedded database in ${resolve(config.dataDir)} is in use (its postmaster.pid is there): stop the server that uses it first.` +
        " If none runs, the last one did not shut down cleanly: start and stop it once.",
    );
    return 1;
  }
  let database: Database | undefined;
  try {
    try {
      database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
      await database.ping();
    } catch (err) {
      io.err(`valerix: cannot reach the database: ${errorLine(err)}`);
      return 1;
    }
    if (opts.status) {
      const statuses: MigrationStatus[] = [];
      for (const module of modules) statuses.push(await migrationStatus(database.db, module));
      return printStatus(statuses, io);
    }
    for (const module of modules) {
      let applied: string[];
      try {
        applied = await migrateModule(database.db, module);
      } catch (err) {
        io.err(`valerix: migrating ${module} failed: ${errorLine(err)}`);
        return 1;
      }
      io.out(`${module}: ${applied.length ? `applied ${applied.join(", ")}` : "up to date"}`);
    }
    return 0;
  } catch (err) {
    io.err(`valerix: migrate failed: ${errorLine(err)}`);
    return 1;
  } finally {
    await database?.close().catch(() => {});
  }
}

function printStatus(statuses: MigrationStatus[], io: CommandOutput): number {
  const width = Math.max(0, ...statuses.flatMap((s) => [...s.applied.map((a) => a.name), ...s.pending, ...s.unknown]).map((n) => n.length));
  for (const s of statuses) {
    io.out(s.module);
    for (const a of s.applied) io.out(`  applied  ${a.name.padEnd(width)}  ${a.executedAt.toISOString()}`);
    for (const name of s.unknown) io.out(`  applied  ${name.padEnd(width)}  (not in valerix ${VERSION})`);
    for (const name of s.pending) io.out(`  pending  ${name}`);
  }
  const unknown = statuses.flatMap((s) => s.unknown.map((n) => `${s.module}/${n}`));
  if (unknown.length) {
    io.err(`valerix: the database has migrations valerix ${VERSION} does not know (${unknown.join(", ")}): a newer release migrated it`);
    return 1;
  }
  const pending = statuses.reduce((n, s) => n + s.pending.length, 0);
  if (pending === 0) {
    io.out("up to date");
    return 0;
  }
  io.out(`${pending} pending; \`valerix migrate\` applies ${pending === 1 ? "it" : "them"}`);
  return EXIT_PENDING;
}
