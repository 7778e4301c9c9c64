import { Migrator, type Migration, type MigrationProvider } from "kysely/migration";
import { sql, type Kysely } from "kysely";
import * as inventory0001 from "./inventory/0001_init.ts";
import * as inventory0002 from "./inventory/0002_ledger.ts";
import * as inventory0003 from "./inventory/0003_holds.ts";
import * as inventory0004 from "./inventory/0004_low_stock.ts";
import * as orders0001 from "./orders/0001_init.ts";
import * as orders0002 from "./orders/0002_retry_queue.ts";
import * as orders0003 from "./orders/0003_worker_lease.ts";
import * as orders0004 from "./orders/0004_lines_and_cancel.ts";
import * as orders0005 from "./orders/0005_holds.ts";
import * as orders0006 from "./orders/0006_outbox.ts";
import * as orders0007 from "./orders/0007_key_purpose.ts";
import * as orders0008 from "./orders/0008_stock_events.ts";

/**
 * Migrations live in code, not read from disk at run time, so the compiled binary carries them.
 * Each module owns a schema and its own migration history table inside it.
 */
export const moduleMigrations = {
  inventory: { "0001_init": inventory0001, "0002_ledger": inventory0002, "0003_holds": inventory0003, "0004_low_stock": inventory0004 },
  orders: { "0001_init": orders0001, "0002_retry_queue": orders0002, "0003_worker_lease": orders0003, "0004_lines_and_cancel": orders0004, "0005_holds": orders0005, "0006_outbox": orders0006, "0007_key_purpose": orders0007, "0008_stock_events": orders0008 },
} satisfies Record<string, Record<string, Migration>>;

export type MigratedModule = keyof typeof moduleMigrations;

class InCodeProvider implements MigrationProvider {
  constructor(private readonly migrations: Record<string, Migration>) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return this.migrations;
  }
}

function historyTable(module: MigratedModule): string {
  return `valerix_${module}_migrations`;
}

function migratorFor(db: Kysely<any>, module: MigratedModule): Migrator {
  // The history table lives in `public` because the module's schema is created by its first migration.
  return new Migrator({
    db,
    provider: new InCodeProvider(moduleMigrations[module]),
    migrationTableName: historyTable(module),
    migrationLockTableName: `valerix_${module}_migrations_lock`,
  });
}

export async function migrateModule(db: Kysely<any>, module: MigratedModule): Promise<string[]> {
  const { error, results } = await migratorFor(db, module).migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}

/**
 * Migrates a module up or down to the named migration (tests of a migration start from the one
 * before it); resolves to the names run.
 */
export async function migrateModuleTo(db: Kysely<any>, module: MigratedModule, name: string): Promise<string[]> {
  const { error, results } = await migratorFor(db, module).migrateTo(name);
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}

/** Names of migrations not yet applied, for readiness checks. */
export async function pendingMigrations(db: Kysely<any>, module: MigratedModule): Promise<string[]> {
  const all = await migratorFor(db, module).getMigrations();
  return all.filter((m) => !m.executedAt).map((m) => m.name);
}

export interface MigrationStatus {
  module: MigratedModule;
  /** In the order they run; `executedAt` from the module's history table. */
  applied: Array<{ name: string; executedAt: Date }>;
  pending: string[];
  /** Recorded as applied but not in this build: the database was migrated by a newer release. */
  unknown: string[];
}

/** Applied, pending and unknown migrations of a module; reads only, creates nothing. */
export async function migrationStatus(db: Kysely<any>, module: MigratedModule): Promise<MigrationStatus> {
  const known = await migratorFor(db, module).getMigrations();
  const table = historyTable(module);
  const { rows } = await sql<{ present: boolean }>`select to_regclass(${table}) is not null as present`.execute(db);
  const recorded: string[] = rows[0]?.present
    ? (await db.selectFrom(table).select("name").orderBy("name").execute()).map((r) => r.name as string)
    : [];
  const names = new Set(known.map((m) => m.name));
  return {
    module,
    applied: known.filter((m) => m.executedAt).map((m) => ({ name: m.name, executedAt: m.executedAt! })),
    pending: known.filter((m) => !m.executedAt).map((m) => m.name),
    unknown: recorded.filter((n) => !names.has(n)),
  };
}
