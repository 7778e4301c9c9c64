import pg from "pg";
import { randomUUID } from "node:crypto";

/**
 * Tests talk to the machine's real PostgreSQL and Redis. Each test file makes its own database
 * (dropped afterwards) and uses a Redis DB index of its own plus a unique key prefix, so runs
 * never collide. In CI an unreachable service fails the run; on a laptop without them the
 * suites that need them are skipped and the embedded adapters still run.
 */
export const PG_ADMIN_URL = process.env.TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const REDIS_BASE_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
export const inCI = !!process.env.CI;

async function reachable(check: () => Promise<unknown>, what: string): Promise<boolean> {
  try {
    await check();
    return true;
  } catch (err) {
    if (inCI) throw new Error(`${what} is not reachable in CI: ${(err as Error).message}`);
    return false;
  }
}

export const hasPostgres = await reachable(async () => {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  await c.end();
}, "PostgreSQL");

export const hasRedis = await reachable(async () => {
  const { RedisClient } = await import("bun");
  const r = new RedisClient(REDIS_BASE_URL, { connectionTimeout: 2000, autoReconnect: false });
  await r.send("PING", []);
  r.close();
}, "Redis");

/** A fresh database on the real server; returns its URL and a function that drops it. */
export async function createTestDatabase(prefix = "valerix_t"): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

let nextDb = 1;
/**
 * A Redis URL on a DB index reserved for tests (1–14, rotating; 15 is the benchmark's, which it
 * flushes) and a unique key prefix.
 * Tests must use the prefix for every key they touch, so parallel runs stay apart.
 */
export function testRedis(): { url: string; prefix: string } {
  const db = 1 + ((nextDb++ + process.pid) % 14);
  return { url: `${REDIS_BASE_URL}/${db}`, prefix: `t:${randomUUID().slice(0, 8)}:` };
}
