import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import type { RunOptions } from "../options.ts";
import { atExit, spawnRole, type SpawnedRole } from "../processes.ts";
import type { Progress } from "../progress.ts";
import type { System } from "../system-under-test.ts";
import { Balancer } from "./balancer.ts";
import type { FaultTargets } from "./faults.ts";
import { InventoryNetns, probeNetns } from "./netns.ts";
import { PrivatePostgres, postgresBinDir } from "./private-postgres.ts";
import { PrivateRedis } from "./private-redis.ts";
import { freePort } from "./util.ts";

/**
 * The deployment the infra scenarios (and `--replicas`) run against, every piece the run's own:
 * a private PostgreSQL cluster and a private redis-server (so both can be killed), N replicas of
 * each role on fixed ports, HAProxy in front of each role, and — where `ip netns` is permitted —
 * the inventory replicas inside a network namespace, so the link between the roles can be
 * impaired and cut. Orders replicas reach inventory only through the balancer, as in Kubernetes.
 */

type Role = "orders" | "inventory";

interface Replica {
  role: Role;
  index: number;
  host: string;
  port: number;
  env: Record<string, string>;
  wrap: string[] | undefined;
  current: SpawnedRole | null;
  starts: number;
  /** Down on purpose (killed by a fault, or the run is stopping): the watcher leaves it alone. */
  expectedDown: boolean;
}

/** A replica that exited without being killed: a crash, which the watcher reports and restarts. */
export interface ReplicaCrash {
  replica: string;
  exit_code: number | null;
  /** `performance.now()` when it was noticed. */
  noticed_at: number;
  restart: string;
}

export interface InfraSystem extends System {
  faults: FaultTargets;
  /** Prometheus text of every live replica of a role, one after the other (counters add up across them). */
  metricsOf(role: Role): Promise<string | null>;
  /** Replicas that exited on their own during the run; each was restarted. */
  crashes: ReplicaCrash[];
  /** Unacknowledged retry messages by consumer (`host-pid`), to show a killed replica's work was taken over. */
  pendingByConsumer(): Promise<Record<string, number> | null>;
}

/** What the infra deployment needs that may be missing; empty when all is there. */
export function missingTools(): string[] {
  const out: string[] = [];
  if (!Balancer.available()) out.push("haproxy (Debian package haproxy)");
  if (!postgresBinDir()) out.push("PostgreSQL server binaries initdb/pg_ctl (Debian package postgresql)");
  if (!PrivateRedis.available()) out.push("redis-server (Debian package redis-server)");
  return out;
}

const STREAM = "valerix:retry:stream";
const GROUP = "retry-workers";

export async function bringUpInfra(o: RunOptions & { replicas: number }, runId: string, progress: Progress): Promise<InfraSystem> {
  const missing = missingTools();
  if (missing.length) throw new Error(`--replicas and the infra scenarios need: ${missing.join(", ")}`);
  const workDir = mkdtempSync(join(tmpdir(), `valerix-chaos-${runId}-`));
  const logDir = join(workDir, "logs");
  mkdirSync(logDir, { recursive: true });
  const removeWorkDir = atExit(() => rmSync(workDir, { recursive: true, force: true }));
  const adminToken = randomBytes(24).toString("hex");
  const runtime = `bun ${Bun.version}`;

  let netns: InventoryNetns | null = null;
  let netnsSkipped: string | null = null;
  let pg: PrivatePostgres | null = null;
  let redis: PrivateRedis | null = null;
  let balancer: Balancer | null = null;
  let removePg = () => {};
  const replicas: Replica[] = [];

  let watcher: ReturnType<typeof setInterval> | null = null;
  const stopAll = async () => {
    if (watcher) clearInterval(watcher);
    for (const r of replicas) r.expectedDown = true;
    // Orders first: their workers must not call an inventory that is already gone.
    for (const r of [...replicas].sort((a, b) => (a.role === b.role ? 0 : a.role === "orders" ? -1 : 1))) {
      await r.current?.stop(5_000).catch(() => null);
      r.current = null;
    }
    await balancer?.stop().catch(() => {});
  };

  const sys: InfraSystem = {
    urls: { orders: "", inventory: "", chaos: "" },
    adminToken,
    environment: {
      mode: "spawned",
      database: "postgres",
      key_value: "",
      retry_queue: "Redis Streams",
      settings: o.roleEnv,
      urls: { orders: "", inventory: "", chaos: "" },
      runtime,
      platform: `${process.platform}-${process.arch}`,
      cpus: navigator.hardwareConcurrency ?? 1,
    },
    ledger: null,
    ledgerAfterStop: false,
    logDir,
    async stop() {
      await stopAll();
    },
    async cleanup(keep) {
      await stopAll();
      netns?.destroy();
      await redis?.destroy().catch(() => {});
      // --keep keeps the cluster's data folder for a look afterwards, not a server running on.
      if (pg) {
        if (keep) pg.stopFast();
        else await pg.destroy().catch(() => {});
      }
      removePg();
      if (!keep) {
        rmSync(workDir, { recursive: true, force: true });
        removeWorkDir();
      }
    },
    faults: null as unknown as FaultTargets,
    crashes: [],
    async metricsOf(role) {
      const texts = await Promise.all(
        replicas
          .filter((r) => r.role === role && r.current && !r.current.exited)
          .map(async (r) => {
            try {
              const res = await fetch(`${r.current!.url}/metrics`, { signal: AbortSignal.timeout(5_000) });
              return res.ok ? await res.text() : "";
            } catch {
              return "";
            }
          }),
      );
      const joined = texts.join("\n");
      return joined.trim() ? joined : null;
    },
    async pendingByConsumer() {
      if (!redis) return null;
      const { RedisClient } = await import("bun");
      const c = new RedisClient(redis.url(), { connectionTimeout: 2_000, autoReconnect: false, enableOfflineQueue: false });
      try {
        await c.connect();
        const reply = (await c.send("XPENDING", [STREAM, GROUP])) as unknown[];
        const out: Record<string, number> = {};
        for (const pair of (reply?.[3] as Array<[string, string]> | null) ?? []) out[String(pair[0])] = Number(pair[1]);
        return out;
      } catch {
        return null;
      } finally {
        c.close();
      }
    },
  };

  try {
    // The network namespace first: PostgreSQL and Redis listen on its data link too.
    const probe = probeNetns();
    if (probe.ok) {
      try {
        netns = InventoryNetns.create(runId);
      } catch (err) {
        netnsSkipped = `the network namespace could not be made: ${(err as Error).message.split("\n").slice(0, 2).join(" ")}`;
      }
    } else {
      netnsSkipped = probe.reason!;
    }
    if (netnsSkipped) progress.phase(`network faults will be skipped: ${netnsSkipped}`);

    const n = o.replicas;
    const listen = netns ? `127.0.0.1,${netns.dataHost}` : "127.0.0.1";
    pg = await PrivatePostgres.create({ listen_addresses: `'${listen}'`, max_connections: Math.max(100, 24 * 2 * n + 40) }, netns ? [netns.dataCidr] : []);
    const pgRef = pg;
    removePg = atExit(() => void pgRef.destroy());
    const ordersDb = await pg.createDatabase("valerix_orders");
    const inventoryDb = await pg.createDatabase("valerix_inventory");
    redis = new PrivateRedis(netns ? ["127.0.0.1", netns.dataHost] : ["127.0.0.1"]);
    await redis.start();
    const viaData = (url: string) => (netns ? url.replace("127.0.0.1", netns.dataHost) : url);
    progress.phase(
      `private PostgreSQL on port ${pg.port}, private Redis on port ${redis.port}${netns ? `, inventory in network namespace ${netns.ns} (${netns.mechanism})` : ""}`,
    );

    const base: Record<string, string> = { ADMIN_TOKEN: adminToken, DRAIN_TIMEOUT_S: "5", RATE_LIMIT_PER_MIN: "0", VALERIX_SEED_CATALOG: "false", CSRF_SECRET: randomBytes(16).toString("hex"), ...o.roleEnv };
    const invHost = netns ? netns.serviceNs : "127.0.0.1";
    for (let i = 0; i < n; i++) {
      replicas.push({
        role: "inventory",
        index: i,
        host: invHost,
        port: freePort(),
        env: { ...base, DATABASE_URL: viaData(inventoryDb), REDIS_URL: viaData(redis.url()) },
        wrap: netns?.wrap,
        current: null,
        starts: 0,
        expectedDown: false,
      });
    }
    const ordersPorts = Array.from({ length: n }, () => freePort());
    balancer = new Balancer(join(workDir, "haproxy"), {
      orders: ordersPorts.map((port, i) => ({ name: `orders-${i + 1}`, host: "127.0.0.1", port })),
      inventory: replicas.map((r) => ({ name: `inventory-${r.index + 1}`, host: r.host, port: r.port })),
    });
    for (let i = 0; i < n; i++) {
      replicas.push({
        role: "orders",
        index: i,
        host: "127.0.0.1",
        port: ordersPorts[i]!,
        env: { ...base, DATABASE_URL: ordersDb, REDIS_URL: redis.url(), INVENTORY_URL: balancer.url("inventory") },
        wrap: undefined,
        current: null,
        starts: 0,
        expectedDown: false,
      });
    }

    const start = async (r: Replica) => {
      r.starts++;
      r.current = await spawnRole({
        role: r.role,
        env: r.env,
        logDir,
        port: r.port,
        host: r.host,
        wrap: r.wrap,
        name: `${r.role}-${r.index + 1}${r.starts > 1 ? `.restart${r.starts - 1}` : ""}`,
      });
      return r.current;
    };
    // Inventory first (the orders role checks inventory's configuration at start), the first of each
    // role alone so it runs the migrations, then the rest side by side.
    const inv = replicas.filter((r) => r.role === "inventory");
    const ord = replicas.filter((r) => r.role === "orders");
    await start(inv[0]!);
    await Promise.all(inv.slice(1).map(start));
    // The orders role reaches inventory through the balancer, so the balancer comes before it; its
    // orders frontend waits for the first orders replica.
    const balancerReady = balancer.start(join(logDir, "haproxy.log"), 120_000).then(
      () => null,
      (err: unknown) => err,
    );
    await start(ord[0]!);
    await Promise.all(ord.slice(1).map(start));
    const balancerError = await balancerReady;
    if (balancerError) throw balancerError;
    for (const r of replicas) progress.phase(`  ${r.role} replica ${r.index + 1}: pid ${r.current!.pid} at ${r.current!.url}`);
    progress.phase(`  HAProxy: orders at ${balancer.url("orders")}, inventory at ${balancer.url("inventory")}`);

    sys.urls = { orders: balancer.url("orders"), inventory: balancer.url("inventory"), chaos: balancer.url("inventory") };
    sys.environment.urls = sys.urls;
    sys.environment.key_value = `Redis (private redis-server, append-only file fsynced every second)`;
    sys.environment.topology = `${n} orders + ${n} inventory replicas behind HAProxy (health checks on /health/ready every 500 ms, out after 2 failures, back after 2 passes); the orders role reaches inventory through the balancer${
      netns ? `; inventory replicas in a network namespace behind a veth pair (${netns.mechanism})` : "; no network namespace (network faults skipped)"
    }; private PostgreSQL cluster and redis-server made by the run`;
    sys.ledger = { databaseUrl: inventoryDb };

    // As a supervisor does (Kubernetes' restart policy): a replica that cannot start — its
    // database or Redis is away at that moment, and it exits — is started again, with backoff.
    const supervise = async (r: Replica): Promise<string> => {
      const t0 = performance.now();
      const failures: string[] = [];
      for (;;) {
        try {
          const cur = await start(r);
          const retried = failures.length ? ` after ${failures.length} failed start${failures.length > 1 ? "s" : ""} (${[...new Set(failures)].join("; ")})` : "";
          return `${r.role} replica ${r.index + 1} restarted as pid ${cur.pid}, ready after ${Math.round(performance.now() - t0)} ms${retried}`;
        } catch (err) {
          failures.push((err as Error).message.split("\n")[0]!.replace(/^\w+ role /, ""));
          if (performance.now() - t0 > 120_000) throw err;
          await Bun.sleep(Math.min(5_000, 500 * 2 ** Math.min(failures.length, 4)));
        }
      }
    };
    // A replica that exits on its own (a crash: what a fast shutdown of PostgreSQL once did) is
    // noticed, recorded for the report and restarted, so one crash does not end the run.
    const restarting = new Set<Replica>();
    watcher = setInterval(() => {
      for (const r of replicas) {
        if (r.expectedDown || restarting.has(r) || !r.current?.exited) continue;
        const crashed = r.current;
        restarting.add(r);
        const noticed = performance.now();
        void (async () => {
          const code = await crashed.stop(0).catch(() => null);
          const restart = await supervise(r).catch((err: unknown) => `not restarted: ${(err as Error).message.split("\n")[0]}`);
          sys.crashes.push({ replica: `${r.role} replica ${r.index + 1} (pid ${crashed.pid})`, exit_code: code, noticed_at: noticed, restart });
          restarting.delete(r);
        })();
      }
    }, 250);

    const find = (role: Role, index: number) => {
      const r = replicas.find((x) => x.role === role && x.index === index);
      if (!r) throw new Error(`no ${role} replica ${index + 1}`);
      return r;
    };
    const consumer = (pid: number) => `${hostname()}-${pid}`;
    sys.faults = {
      async killReplica(role, index, onKill) {
        const r = find(role, index);
        const cur = r.current;
        if (!cur || cur.exited) return `${role} replica ${index + 1} was not running`;
        // An orders replica is killed while it holds retry messages (delivered, not yet acknowledged)
        // when it has any within a few seconds, so the kill leaves work for the others to take over.
        let pending: number | null = null;
        let waited = 0;
        if (role === "orders") {
          const t0 = performance.now();
          for (;;) {
            pending = (await sys.pendingByConsumer())?.[consumer(cur.pid)] ?? 0;
            waited = Math.round(performance.now() - t0);
            if (pending > 0 || waited > 5_000) break;
            await Bun.sleep(20);
          }
        }
        onKill?.();
        r.expectedDown = true;
        process.kill(cur.pid, "SIGKILL");
        await cur.stop(1_000).catch(() => null);
        const held = pending === null ? "" : `, holding ${pending} unacknowledged retry messages${waited > 100 ? ` (waited ${waited} ms for it to hold any)` : ""}`;
        return `kill -9 ${role} replica ${index + 1} (pid ${cur.pid})${held}`;
      },
      async restartReplica(role, index) {
        const r = find(role, index);
        const said = await supervise(r);
        r.expectedDown = false;
        return said;
      },
      async postgresFastStop() {
        const t0 = performance.now();
        await pgRef.stopFastLater();
        return `pg_ctl stop -m fast (took ${Math.round(performance.now() - t0)} ms)`;
      },
      async postgresKill() {
        const pid = pgRef.postmasterPid();
        await pgRef.killPostmaster();
        return `kill -9 of the postmaster (pid ${pid})`;
      },
      async postgresStart() {
        const t0 = performance.now();
        await pgRef.start(60_000);
        return `PostgreSQL started, answering after ${Math.round(performance.now() - t0)} ms`;
      },
      async redisKill() {
        const pid = redis!.pid;
        await redis!.kill9();
        return `kill -9 redis-server (pid ${pid})`;
      },
      async redisStart() {
        const t0 = performance.now();
        await redis!.start();
        return `redis-server restarted from its append-only file, answering after ${Math.round(performance.now() - t0)} ms`;
      },
      network: netns ?? (netnsSkipped as string),
    };
    return sys;
  } catch (err) {
    await sys.cleanup(false).catch(() => {});
    throw err;
  }
}
