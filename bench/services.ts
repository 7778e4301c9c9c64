import pg from "pg";
import { randomUUID } from "node:crypto";
import { RedisClient } from "bun";

/**
 * The real PostgreSQL and Redis the benchmark runs on. Every scenario gets a database of its
 * own, created fresh and dropped afterwards; Redis gets one database index, flushed before each
 * scenario (so nothing else may live there — see docs/benchmarks.md).
 */
export interface Services {
  /** A maintenance connection URL (any database the user may connect to). */
  pgAdminUrl: string;
  /** Base Redis URL without a database index. */
  redisBaseUrl: string;
  redisDb: number;
}

export function servicesFromEnv(env: Record<string, string | undefined> = process.env): Services {
  return {
    pgAdminUrl: env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
    redisBaseUrl: (env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379").replace(/\/\d*$/, ""),
    redisDb: Number(env.BENCH_REDIS_DB ?? 15),
  };
}

export function redisUrl(s: Services): string {
  return `${s.redisBaseUrl}/${s.redisDb}`;
}

export async function flushRedis(s: Services): Promise<void> {
  const client = new RedisClient(redisUrl(s), { connectionTimeout: 3_000, autoReconnect: false });
  try {
    await client.send("FLUSHDB", []);
  } finally {
    client.close();
  }
}

async function admin<T>(s: Services, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: s.pgAdminUrl, connectionTimeoutMillis: 5_000 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export interface ScratchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database; `drop()` removes it even if connections are still open. */
export async function createDatabase(s: Services, label: string): Promise<ScratchDatabase> {
  const name = `valerix_bench_${label}_${randomUUID().replaceAll("-", "").slice(0, 8)}`;
  await admin(s, (c) => c.query(`create database ${name}`));
  const url = new URL(s.pgAdminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => admin(s, (c) => c.query(`drop database if exists ${name} with (force)`)).then(() => undefined),
  };
}

/** Server-side facts worth printing next to the numbers. */
export async function postgresFacts(s: Services): Promise<Record<string, string>> {
  return admin(s, async (c) => {
    const out: Record<string, string> = {};
    out.version = String((await c.query("show server_version")).rows[0].server_version);
    for (const name of ["max_connections", "shared_buffers", "synchronous_commit", "fsync", "wal_sync_method", "commit_delay"]) {
      out[name] = String(Object.values((await c.query(`show ${name}`)).rows[0])[0]);
    }
    return out;
  });
}

export async function redisVersion(s: Services): Promise<string> {
  const client = new RedisClient(redisUrl(s), { connectionTimeout: 3_000, autoReconnect: false });
  try {
    const info = String(await client.send("INFO", ["server"]));
    return /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
  } finally {
    client.close();
  }
}
