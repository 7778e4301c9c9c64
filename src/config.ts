/**
 * Configuration is read once, at start-up, from the environment. A bad value stops the process
 * with a message naming the variable (exit code 2, see `main.ts`), never later at first use.
 * An empty variable counts as unset, so `FOO= valerix` behaves like no `FOO` at all.
 */
import { parseRange } from "../platform/net/ip-address.ts";

export type Role = "all" | "orders" | "inventory";
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export interface Config {
  port: number;
  host: string;
  role: Role;
  databaseUrl: string | undefined;
  dataDir: string;
  redisUrl: string | undefined;
  redisToken: string | undefined;
  inventoryUrl: string | undefined;
  adminToken: string | undefined;
  /** Bearer token for inventory's internal write routes (deduct, release); falls back to adminToken. */
  inventoryToken: string | undefined;
  logLevel: LogLevel;
  nodeEnv: string;
  idempotencyTtlS: number;
  /** Seconds to finish in-flight work after SIGTERM before exiting anyway. */
  drainTimeoutS: number;
  /** Orders per minute a single client may create; 0 turns rate limiting off. */
  rateLimitPerMin: number;
  /** Proxies (addresses, CIDR ranges) whose X-Forwarded-For names the client for the rate limit; none by default. */
  trustedProxies: string[];
  seedCatalog: boolean;
  /** Resilience tuning; the defaults are the design's, the knobs exist for tests and operators. */
  inventoryTimeoutMs: number;
  breakerHalfOpenMs: number;
  retryMaxAttempts: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  sweepStrandedAfterMs: number;
  /** How often holds past their deadline are expired: a hold lasts at most this much longer. */
  holdSweepIntervalMs: number;
  /** How long a delivered retry message stays hidden before another consumer may take it over. */
  retryVisibilityTimeoutMs: number;
  /** The rolling window behind the health banner (seconds). */
  healthWindowS: number;
  /** Most orders per group-committed statement on the order path; 1 turns group commit off. */
  groupCommitMaxBatch: number;
  /** Group-committed statements of one kind running at once on PostgreSQL (PGlite runs one). */
  groupCommitInFlight: number;
  /** Key for the pages' anti-forgery tokens; set it when several replicas serve the pages. */
  csrfSecret: string | undefined;
  /** Origins (`scheme://host[:port]`) whose pages may call the public API from a browser; none by default. */
  corsOrigins: string[];
  /** PostgreSQL connections one process may hold, all pools together (see `DATABASE_POOL_SIZE`). */
  databasePoolSize: number;
  /** Seconds between two checks of quantity = Σ movements on processes hosting inventory; 0 turns the check off. */
  ledgerCheckIntervalS: number;
  /** Webhooks may point at loopback, link-local and private addresses (always outside production). */
  webhookAllowPrivate: boolean;
  /** How long one webhook attempt may take before it counts as failed. */
  webhookTimeoutMs: number;
  /** How long the previous secret keeps signing after a rotation. */
  webhookRotationWindowS: number;
  /** An endpoint failing without one success this long is disabled. */
  webhookDisableAfterS: number;
  /** Days order events, finished deliveries and attempts are kept (the catch-up window). */
  webhookRetentionDays: number;
  /** Whether this process runs the webhook relay (orders role); several replicas may. */
  webhookRelay: boolean;
  /** Waits after each failed webhook attempt, then given up; undefined: the relay's own (about a day). */
  webhookRetryScheduleMs: number[] | undefined;
  /** How long an endpoint's breaker stays open after consecutive failed attempts. */
  webhookBreakerOpenMs: number;
  /** How often an idle relay looks for due deliveries. */
  webhookPollIntervalMs: number;
}

/**
 * Connections per process by role (README, "Connections"): the order path runs on group-committed
 * statements, at most GROUP_COMMIT_IN_FLIGHT of each kind at once, so a handful serves it; the
 * rest is the Kysely pool (admin, lists, the retry worker's bookkeeping, health).
 */
export const DEFAULT_POOL_SIZE: Record<Role, number> = { all: 12, orders: 10, inventory: 8 };

export class ConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

function read(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `expected a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${allowed.join(", ")}, got "${raw}"`);
  }
  return raw as T;
}

function url(env: Env, name: string, schemes: readonly string[]): string | undefined {
  const raw = read(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, "is not a valid URL");
  }
  if (!schemes.includes(parsed.protocol)) {
    throw new ConfigError(name, `scheme must be one of ${schemes.join(", ")}, got "${parsed.protocol}"`);
  }
  return raw;
}

/**
 * A comma-separated list of waits in ms, `250,500,1000`: each from `min` to `max`, at least one,
 * at most `maxItems`; unset gives undefined (the caller's default).
 */
function msList(env: Env, name: string, min: number, max: number, maxItems: number): number[] | undefined {
  const raw = read(env, name);
  if (raw === undefined) return undefined;
  const parts = raw.split(",").map((p) => p.trim());
  if (parts.length > maxItems) throw new ConfigError(name, `must list at most ${maxItems} waits, got ${parts.length}`);
  return parts.map((p) => {
    const n = Number(p);
    if (p === "" || !Number.isInteger(n) || n < min || n > max) {
      throw new ConfigError(name, `must be a comma-separated list of integers from ${min} to ${max} (ms), got "${raw}"`);
    }
    return n;
  });
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (["1", "true", "yes", "on"].includes(raw.toLowerCase())) return true;
  if (["0", "false", "no", "off"].includes(raw.toLowerCase())) return false;
  throw new ConfigError(name, `expected true or false, got "${raw}"`);
}

/** A comma-separated list of IPv4/IPv6 addresses and CIDR ranges; each entry must parse. */
function addressRanges(env: Env, name: string): string[] {
  const raw = read(env, name);
  if (raw === undefined) return [];
  const entries = raw.split(",").map((e) => e.trim());
  for (const entry of entries) {
    if (entry === "") throw new ConfigError(name, `expected addresses or CIDR ranges separated by commas, got an empty entry in "${raw}"`);
    try {
      parseRange(entry);
    } catch (err) {
      throw new ConfigError(name, (err as Error).message);
    }
  }
  return entries;
}

/**
 * A comma-separated list of exact web origins, each as a browser writes it in `Origin`:
 * `https://shop.example` or `http://localhost:5173`. No wildcard, no path, no `null` (sandboxed
 * frames and files all send that one origin), and the canonical spelling only (lower-case host,
 * no default port), since browsers compare origins as strings and so do we.
 */
function origins(env: Env, name: string): string[] {
  const raw = read(env, name);
  if (raw === undefined) return [];
  const entries = raw.split(",").map((e) => e.trim());
  for (const entry of entries) {
    if (entry === "") throw new ConfigError(name, `expected origins separated by commas, got an empty entry in "${raw}"`);
    if (entry.includes("*")) throw new ConfigError(name, `"${entry}": wildcards are not allowed; list each origin exactly`);
    let parsed: URL;
    try {
      parsed = new URL(entry);
    } catch {
      throw new ConfigError(name, `"${entry}" is not an origin; write scheme://host[:port], e.g. https://shop.example`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new ConfigError(name, `"${entry}": the scheme must be http or https`);
    }
    if (parsed.origin !== entry) {
      throw new ConfigError(name, `"${entry}" is not an exact origin (no path, query, user or trailing slash; lower-case host; no default port): write ${parsed.origin}`);
    }
  }
  return [...new Set(entries)];
}

/**
 * The retry queue's visibility timeout. One delivery may take two inventory calls (a deduction,
 * then a release when inventory answers `released`), each up to INVENTORY_TIMEOUT_MS, plus a few
 * database and queue round trips; a shorter visibility would let another consumer take over a
 * message a live worker still holds and call inventory for it a second time. The default grows
 * with INVENTORY_TIMEOUT_MS; an explicit value below the floor is refused where the worker runs.
 */
function visibilityTimeout(env: Env, role: Role, inventoryTimeoutMs: number): number {
  const floor = 2 * inventoryTimeoutMs + 2_000;
  const ms = int(env, "RETRY_VISIBILITY_TIMEOUT_MS", Math.max(30_000, floor), 1_000, 3_600_000);
  if (role !== "inventory" && ms < floor) {
    throw new ConfigError(
      "RETRY_VISIBILITY_TIMEOUT_MS",
      `must be at least 2 × INVENTORY_TIMEOUT_MS + 2000 = ${floor} ms, so a worker's message is not taken over while it works; got ${ms}`,
    );
  }
  return ms;
}

/**
 * How long an unfinished order may sit untouched before the sweeper re-enqueues it. A live
 * request holds its pending order for one inventory call (INVENTORY_TIMEOUT_MS) and a few
 * database round trips; a sweep before that would hand the order to the retry worker while the
 * request still runs, and the client would be told 202 for an order its own call was about to
 * settle. Refused where the worker runs.
 */
function strandedAfter(env: Env, role: Role, inventoryTimeoutMs: number): number {
  const floor = inventoryTimeoutMs + 1_000;
  const ms = int(env, "SWEEP_STRANDED_AFTER_MS", Math.max(60_000, floor), 500, 86_400_000);
  if (role !== "inventory" && ms < floor) {
    throw new ConfigError(
      "SWEEP_STRANDED_AFTER_MS",
      `must be at least INVENTORY_TIMEOUT_MS + 1000 = ${floor} ms, so the sweeper never takes over an order a live request is still placing; got ${ms}`,
    );
  }
  return ms;
}

/** What `valerix migrate` needs: which modules (by role) and which database. */
export interface DatabaseConfig {
  role: Role;
  databaseUrl: string | undefined;
  dataDir: string;
}

/**
 * The database settings alone, checked as `loadConfig` checks them. `valerix migrate` reads only
 * these, so a migration job needs no INVENTORY_URL, tokens or tuning it never uses.
 */
export function loadDatabaseConfig(env: Env = process.env): DatabaseConfig {
  return {
    role: oneOf(env, "VALERIX_ROLE", ["all", "orders", "inventory"] as const, "all"),
    databaseUrl: url(env, "DATABASE_URL", ["postgres:", "postgresql:"]),
    dataDir: read(env, "VALERIX_DATA_DIR") ?? "./.valerix-data",
  };
}

export function loadConfig(env: Env = process.env): Config {
  const { role, databaseUrl, dataDir } = loadDatabaseConfig(env);
  const redisUrl = url(env, "REDIS_URL", ["redis:", "rediss:", "https:", "http:"]);
  const redisToken = read(env, "REDIS_TOKEN");
  if (redisUrl && /^https?:/.test(redisUrl) && !redisToken) {
    throw new ConfigError("REDIS_TOKEN", "is required when REDIS_URL is an Upstash REST (https://) URL");
  }
  const inventoryUrl = url(env, "INVENTORY_URL", ["http:", "https:"]);
  if (role === "orders" && !inventoryUrl) {
    throw new ConfigError("INVENTORY_URL", "is required when VALERIX_ROLE=orders");
  }
  const nodeEnv = read(env, "NODE_ENV") ?? "development";
  const inventoryTimeoutMs = int(env, "INVENTORY_TIMEOUT_MS", 3_000, 50, 60_000);
  const retryVisibilityTimeoutMs = visibilityTimeout(env, role, inventoryTimeoutMs);
  return {
    port: int(env, "PORT", 3000, 0, 65535),
    host: read(env, "HOST") ?? "0.0.0.0",
    role,
    databaseUrl,
    dataDir,
    redisUrl,
    redisToken,
    inventoryUrl,
    adminToken: read(env, "ADMIN_TOKEN"),
    inventoryToken: read(env, "INVENTORY_TOKEN"),
    logLevel: oneOf(env, "LOG_LEVEL", ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const, "info"),
    nodeEnv,
    idempotencyTtlS: int(env, "IDEMPOTENCY_TTL_S", 86_400, 60, 30 * 86_400),
    drainTimeoutS: int(env, "DRAIN_TIMEOUT_S", 20, 0, 600),
    rateLimitPerMin: int(env, "RATE_LIMIT_PER_MIN", nodeEnv === "production" ? 600 : 0, 0, 1_000_000),
    trustedProxies: addressRanges(env, "TRUSTED_PROXIES"),
    seedCatalog: bool(env, "VALERIX_SEED_CATALOG", true),
    inventoryTimeoutMs,
    breakerHalfOpenMs: int(env, "BREAKER_HALF_OPEN_MS", 10_000, 100, 600_000),
    retryMaxAttempts: int(env, "RETRY_MAX_ATTEMPTS", 15, 1, 1_000),
    retryBaseDelayMs: int(env, "RETRY_BASE_DELAY_MS", 500, 10, 60_000),
    retryMaxDelayMs: int(env, "RETRY_MAX_DELAY_MS", 30_000, 10, 3_600_000),
    sweepStrandedAfterMs: strandedAfter(env, role, inventoryTimeoutMs),
    holdSweepIntervalMs: int(env, "HOLD_SWEEP_INTERVAL_MS", 1_000, 100, 60_000),
    retryVisibilityTimeoutMs,
    healthWindowS: int(env, "HEALTH_WINDOW_S", 30, 1, 3_600),
    groupCommitMaxBatch: int(env, "GROUP_COMMIT_MAX_BATCH", 64, 1, 1_000),
    groupCommitInFlight: int(env, "GROUP_COMMIT_IN_FLIGHT", 2, 1, 16),
    csrfSecret: read(env, "CSRF_SECRET"),
    corsOrigins: origins(env, "CORS_ORIGINS"),
    databasePoolSize: int(env, "DATABASE_POOL_SIZE", DEFAULT_POOL_SIZE[role], 2, 1_000),
    ledgerCheckIntervalS: int(env, "LEDGER_CHECK_INTERVAL_S", 60, 0, 86_400),
    webhookAllowPrivate: bool(env, "WEBHOOK_ALLOW_PRIVATE", false) || nodeEnv !== "production",
    webhookTimeoutMs: int(env, "WEBHOOK_TIMEOUT_MS", 10_000, 100, 60_000),
    webhookRotationWindowS: int(env, "WEBHOOK_ROTATION_WINDOW_S", 86_400, 0, 30 * 86_400),
    webhookDisableAfterS: int(env, "WEBHOOK_DISABLE_AFTER_S", 3 * 86_400, 3_600, 30 * 86_400),
    webhookRetentionDays: int(env, "WEBHOOK_RETENTION_DAYS", 30, 1, 3_650),
    webhookRelay: bool(env, "WEBHOOK_RELAY", true),
    webhookRetryScheduleMs: msList(env, "WEBHOOK_RETRY_SCHEDULE_MS", 10, 7 * 86_400_000, 100),
    webhookBreakerOpenMs: int(env, "WEBHOOK_BREAKER_OPEN_MS", 30_000, 100, 3_600_000),
    webhookPollIntervalMs: int(env, "WEBHOOK_POLL_INTERVAL_MS", 500, 10, 60_000),
  };
}
