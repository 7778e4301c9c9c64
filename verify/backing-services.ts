import pg from "pg";

/**
 * The real services a spawned run uses when they answer: a fresh PostgreSQL database per role
 * (created here, dropped afterwards) and one Redis DB index, emptied first. When either is
 * unreachable (or `--embedded`), the roles fall back to their embedded defaults: PGlite on disk
 * and the in-memory key-value store with the PostgreSQL-table retry queue.
 */

/**
 * The transaction that has held an xid longest on the whole server, any database: it holds back
 * every reader of the outbox (`xid < xmin`). `"whbench: 134 s"`, or null when none runs (or the
 * server is not readable).
 */
export async function oldestTransaction(adminUrl: string): Promise<string | null> {
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2_000 });
  c.on("error", () => {});
  try {
    await c.connect();
    const r = await c.query<{ datname: string | null; age_s: number; app: string | null }>(
      `select datname, extract(epoch from now() - xact_start)::int as age_s, application_name as app
       from pg_stat_activity where backend_xid is not null and pid <> pg_backend_pid() order by age(backend_xid) desc limit 1`,
    );
    const t = r.rows[0];
    return t ? `database ${t.datname ?? "?"}${t.app ? ` (${t.app})` : ""}: open ${t.age_s} s` : null;
  } catch {
    return null;
  } finally {
    await c.end().catch(() => {});
  }
}

/** True when a connection and `select 1` succeed within `timeoutMs`. */
export async function postgresAnswers(adminUrl: string, timeoutMs = 2_000): Promise<boolean> {
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: timeoutMs });
  // A server that goes away mid-check must not end the process with an unheard `error` event.
  c.on("error", () => {});
  try {
    await c.connect();
    await c.query("select 1");
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

export interface RunDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** `await createDatabase("postgres://postgres@127.0.0.1:5432/postgres", "valerix_chaos_ab12_inv")` → its URL and a dropper. */
export async function createDatabase(adminUrl: string, name: string): Promise<RunDatabase> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`unsafe database name: ${name}`);
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

async function redisClient(url: string) {
  const { RedisClient } = await import("bun");
  const client = new RedisClient(url, { connectionTimeout: 2_000, autoReconnect: false, enableOfflineQueue: false });
  // Without the offline queue a command before the handshake fails at once, so connect first.
  await client.connect();
  return client;
}

export async function redisAnswers(baseUrl: string): Promise<boolean> {
  try {
    const r = await redisClient(baseUrl);
    try {
      await r.send("PING", []);
      return true;
    } finally {
      r.close();
    }
  } catch {
    return false;
  }
}

export interface RunRedis {
  index: number;
  url: string;
  flush(): Promise<void>;
}

/** `redis://host:6379` + 12 → `redis://host:6379/12`. */
export function redisUrlFor(baseUrl: string, index: number): string {
  const u = new URL(baseUrl);
  u.pathname = `/${index}`;
  return u.toString();
}

/** Set in a run's DB for as long as the run holds it, so the DB never looks empty to another run. */
export const REDIS_CLAIM_KEY = "valerix:chaos:run-claim";

/**
 * Picks the run's DB index — the one asked for, else the highest empty one in 1–15 (index 0 is
 * everyone's default, so never chosen) — and claims it with a marker key. An empty DB is claimed
 * with SET NX, so two runs starting together never take the same one; and the marker keeps the
 * DB from looking empty to a run that starts while this one's own keys are momentarily gone
 * (after healing, with every queue message acknowledged), which would flush it under this run.
 */
export async function prepareRedis(baseUrl: string, index?: number, token = `${process.pid}-${Date.now()}`): Promise<RunRedis> {
  let chosen = index;
  if (chosen === undefined) {
    for (let i = 15; i >= 1 && chosen === undefined; i--) {
      const r = await redisClient(redisUrlFor(baseUrl, i));
      try {
        if (Number(await r.send("DBSIZE", [])) === 0 && (await r.send("SET", [REDIS_CLAIM_KEY, token, "NX"])) === "OK") chosen = i;
      } finally {
        r.close();
      }
    }
    if (chosen === undefined) throw new Error("no empty Redis DB in 1–15 for the run: give one with --redis-db");
  }
  const url = redisUrlFor(baseUrl, chosen);
  const flush = async () => {
    const r = await redisClient(url);
    try {
      await r.send("FLUSHDB", []);
    } finally {
      r.close();
    }
  };
  if (index !== undefined) {
    // Asked for by number: emptied, whatever it held, then claimed.
    await flush();
    const r = await redisClient(url);
    try {
      await r.send("SET", [REDIS_CLAIM_KEY, token]);
    } finally {
      r.close();
    }
  }
  return { index: chosen, url, flush };
}
