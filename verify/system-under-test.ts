import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LedgerSource } from "./ledger.ts";
import type { RunOptions } from "./options.ts";
import { spawnRole, type SpawnedRole } from "./processes.ts";
import { createDatabase, postgresAnswers, prepareRedis, redisAnswers, type RunDatabase, type RunRedis } from "./backing-services.ts";
import type { Progress } from "./progress.ts";
import type { RunEnvironment } from "./report.ts";
import type { SystemUrls } from "./system-api.ts";
import { bringUpInfra } from "./infra/deployment.ts";
import { isInfraScenario } from "./infra/scenarios.ts";
import { relayPool, relayTuning, type RelayPool } from "./webhooks.ts";
import { PrivatePostgres, postgresBinDir } from "./infra/private-postgres.ts";
import { atExit } from "./processes.ts";

/**
 * The system under test: either a deployment the runner only talks to (`--target`), or split mode
 * started here — backing services prepared, both roles spawned — and torn down afterwards.
 */

export interface System {
  urls: SystemUrls;
  adminToken: string | undefined;
  environment: RunEnvironment;
  ledger: LedgerSource | null;
  /** PGlite can be read only once its process is gone. */
  ledgerAfterStop: boolean;
  /** `--webhooks`: the dedicated relay processes (the orders role itself runs no relay then). */
  relays?: RelayPool | null;
  /** The settings those relays run with. */
  relaySettings?: Record<string, string>;
  /** An admin URL of the PostgreSQL server the roles use, to name what holds the outbox back. */
  pgAdminUrl?: string;
  stop(): Promise<void>;
  cleanup(keep: boolean): Promise<void>;
  logDir: string | null;
}

export async function bringUp(o: RunOptions, runId: string, progress: Progress): Promise<System> {
  const runtime = `bun ${Bun.version}`;
  const platform = `${process.platform}-${process.arch}`;
  const cpus = navigator.hardwareConcurrency ?? 1;
  if (o.target) {
    const inventory = o.inventoryUrl ?? o.target;
    const urls = { orders: o.target, inventory, chaos: o.chaosUrl ?? inventory };
    return {
      urls,
      adminToken: o.adminToken ?? undefined,
      environment: {
        mode: "target",
        database: o.inventoryDb ? "postgres" : "unknown",
        key_value: "as deployed",
        retry_queue: "as deployed",
        urls,
        runtime,
        platform,
        cpus,
      },
      ledger: o.inventoryDb ? { databaseUrl: o.inventoryDb } : null,
      ledgerAfterStop: false,
      stop: async () => {},
      cleanup: async () => {},
      logDir: null,
    };
  }

  // Replicas behind a balancer, on a PostgreSQL and a Redis of the run's own (verify/infra/).
  if (o.replicas > 1 || isInfraScenario(o.scenario)) return bringUpInfra(o, runId, progress);

  const workDir = mkdtempSync(join(tmpdir(), `valerix-chaos-${runId}-`));
  const logDir = join(workDir, "logs");
  mkdirSync(logDir, { recursive: true });
  const adminToken = randomBytes(24).toString("hex");
  const dbs: RunDatabase[] = [];
  let redis: RunRedis | null = null;
  let privatePg: PrivatePostgres | null = null;
  let removePg: (() => void) | null = null;
  const roles: SpawnedRole[] = [];
  const sys: System = {
    urls: { orders: "", inventory: "", chaos: "" },
    adminToken,
    environment: { mode: "spawned", database: "pglite", key_value: "in-memory (per process)", retry_queue: "PostgreSQL table", settings: o.roleEnv, urls: { orders: "", inventory: "", chaos: "" }, runtime, platform, cpus },
    ledger: null,
    ledgerAfterStop: false,
    logDir,
    async stop() {
      await this.relays?.stopAll();
      // Orders first: its worker must not call an inventory that is already gone.
      for (const r of [...roles].reverse()) await r.stop().catch(() => null);
      roles.length = 0;
    },
    async cleanup(keep) {
      await this.stop();
      if (keep) {
        // Its data folder stays; the server stops with the run.
        removePg?.();
        privatePg?.stopFast();
        if (privatePg) progress.phase(`kept the run's PostgreSQL cluster in ${privatePg.dataDir} (start it with pg_ctl -D)`);
        return;
      }
      for (const d of dbs) await d.drop().catch(() => {});
      await redis?.flush().catch(() => {});
      removePg?.();
      await privatePg?.destroy().catch(() => {});
      rmSync(workDir, { recursive: true, force: true });
    },
  };

  try {
    // --webhooks: a PostgreSQL server of the run's own when its binaries are here. The outbox is
    // read only below the oldest transaction running anywhere on the server (any database), so a
    // long transaction of someone else's on a shared server would hold every event back.
    const pgBin = o.webhooks ? postgresBinDir() : undefined;
    if (pgBin) {
      privatePg = await PrivatePostgres.create({ max_connections: 200 });
      const pgRef = privatePg;
      removePg = atExit(() => void pgRef.destroy());
    }
    const usePg = !o.embedded && (privatePg !== null || (await postgresAnswers(o.pgUrl)));
    if (o.webhooks && !usePg) throw new Error(`--webhooks needs PostgreSQL (the relays share the orders database), and ${o.pgUrl} does not answer`);
    const useRedis = !o.embedded && (await redisAnswers(o.redisUrl));
    const base: Record<string, string> = { ADMIN_TOKEN: adminToken, DRAIN_TIMEOUT_S: "5", RATE_LIMIT_PER_MIN: "0", VALERIX_SEED_CATALOG: "false", ...o.roleEnv };
    const invEnv: Record<string, string> = { ...base };
    const ordEnv: Record<string, string> = { ...base };
    if (usePg) {
      const inv = privatePg ? { url: await privatePg.createDatabase(`valerix_chaos_${runId}_inventory`) } : await createDatabase(o.pgUrl, `valerix_chaos_${runId}_inventory`);
      if ("drop" in inv) dbs.push(inv);
      const ord = privatePg ? { url: await privatePg.createDatabase(`valerix_chaos_${runId}_orders`) } : await createDatabase(o.pgUrl, `valerix_chaos_${runId}_orders`);
      if ("drop" in ord) dbs.push(ord);
      invEnv.DATABASE_URL = inv.url;
      ordEnv.DATABASE_URL = ord.url;
      sys.environment.database = "postgres";
      sys.pgAdminUrl = privatePg ? privatePg.url : o.pgUrl;
      if (privatePg) sys.environment.topology = `PostgreSQL server of the run's own (port ${privatePg.port})`;
      sys.ledger = { databaseUrl: inv.url };
    } else {
      invEnv.VALERIX_DATA_DIR = join(workDir, "inventory-data");
      ordEnv.VALERIX_DATA_DIR = join(workDir, "orders-data");
      sys.ledger = { dataDir: invEnv.VALERIX_DATA_DIR };
      sys.ledgerAfterStop = true;
    }
    if (useRedis) {
      redis = await prepareRedis(o.redisUrl, o.redisDb);
      invEnv.REDIS_URL = redis.url;
      ordEnv.REDIS_URL = redis.url;
      sys.environment.key_value = `Redis (DB ${redis.index})`;
      sys.environment.retry_queue = "Redis Streams";
    }
    progress.phase(
      `starting split mode: ${privatePg ? `a PostgreSQL server of the run's own on port ${privatePg.port}` : usePg ? "PostgreSQL" : "PGlite (embedded)"}, ${useRedis ? `Redis DB ${redis!.index}` : "in-memory key-value store"}`,
    );
    const inventory = await spawnRole({ role: "inventory", env: invEnv, logDir });
    roles.push(inventory);
    progress.phase(`  inventory role pid ${inventory.pid} at ${inventory.url}`);
    // With --webhooks the relay runs only in processes of its own, which no load goes through.
    const orders = await spawnRole({ role: "orders", env: { ...ordEnv, INVENTORY_URL: inventory.url, ...(o.webhooks ? { WEBHOOK_RELAY: "false" } : {}) }, logDir });
    roles.push(orders);
    progress.phase(`  orders role    pid ${orders.pid} at ${orders.url}`);
    if (o.webhooks) {
      const relayEnv = { ...ordEnv, ...relayTuning(), ...o.roleEnv, INVENTORY_URL: inventory.url, WEBHOOK_RELAY: "true" };
      sys.relaySettings = Object.fromEntries(Object.entries(relayEnv).filter(([k]) => k.startsWith("WEBHOOK_")));
      sys.relays = relayPool(2, (name) => spawnRole({ role: "orders", env: relayEnv, logDir, name }));
      await sys.relays.startAll();
      progress.phase(`  webhook relays pids ${sys.relays.pids().join(", ")} (orders role, WEBHOOK_RELAY=true, no load through them)`);
      sys.environment.topology = `${privatePg ? `a PostgreSQL server of the run's own (port ${privatePg.port}), so no transaction elsewhere holds the outbox back; ` : ""}orders role with WEBHOOK_RELAY=false behind the load; two relay processes of their own (orders role, WEBHOOK_RELAY=true, same database), killed with SIGKILL in turn and restarted`;
    }
    // In split mode the inventory role injects the faults, so the experiment is set there; with a
    // shared store the orders role would see it too, without one it must not matter.
    sys.urls = { orders: orders.url, inventory: inventory.url, chaos: inventory.url };
    sys.environment.urls = sys.urls;
    return sys;
  } catch (err) {
    await sys.cleanup(false).catch(() => {});
    throw err;
  }
}
