import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig } from "./config.ts";

describe("configuration", () => {
  test("defaults: port 3000, role all, embedded database, in-memory cache", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 3000, role: "all", databaseUrl: undefined, redisUrl: undefined, dataDir: "./.valerix-data", logLevel: "info", nodeEnv: "development", idempotencyTtlS: 86_400, rateLimitPerMin: 0 });
  });

  test("an empty variable counts as unset", () => {
    expect(loadConfig({ PORT: "", DATABASE_URL: "  ", VALERIX_ROLE: "" })).toMatchObject({ port: 3000, databaseUrl: undefined, role: "all" });
  });

  test.each([
    ["PORT", "abc"],
    ["PORT", "70000"],
    ["VALERIX_ROLE", "both"],
    ["DATABASE_URL", "mysql://x"],
    ["DATABASE_URL", "not a url"],
    ["REDIS_URL", "ftp://x"],
    ["LOG_LEVEL", "loud"],
    ["IDEMPOTENCY_TTL_S", "5"],
    ["RETRY_VISIBILITY_TIMEOUT_MS", "soon"],
    ["RETRY_VISIBILITY_TIMEOUT_MS", "500"],
    ["TRUSTED_PROXIES", "10.0.0.0/8, ingress"],
    ["TRUSTED_PROXIES", "10.0.0.0/33"],
    ["TRUSTED_PROXIES", "10.1.0.0/8"],
    ["TRUSTED_PROXIES", "10.0.0.1,,10.0.0.2"],
    ["TRUSTED_PROXIES", "10.0.0.1 10.0.0.2"],
    ["GROUP_COMMIT_MAX_BATCH", "0"],
    ["GROUP_COMMIT_MAX_BATCH", "many"],
    ["GROUP_COMMIT_IN_FLIGHT", "0"],
    ["GROUP_COMMIT_IN_FLIGHT", "17"],
    ["CORS_ORIGINS", "*"],
    ["CORS_ORIGINS", "https://*.shop.example"],
    ["CORS_ORIGINS", "https://shop.example/"],
    ["CORS_ORIGINS", "https://shop.example/checkout"],
    ["CORS_ORIGINS", "https://shop.example?x=1"],
    ["CORS_ORIGINS", "https://user@shop.example"],
    ["CORS_ORIGINS", "https://Shop.Example"],
    ["CORS_ORIGINS", "https://shop.example:443"],
    ["CORS_ORIGINS", "shop.example"],
    ["CORS_ORIGINS", "null"],
    ["CORS_ORIGINS", "file:///tmp/shop.html"],
    ["CORS_ORIGINS", "ftp://shop.example"],
    ["CORS_ORIGINS", "https://a.example,,https://b.example"],
    ["CORS_ORIGINS", "https://a.example https://b.example"],
    ["LEDGER_CHECK_INTERVAL_S", "-1"],
    ["LEDGER_CHECK_INTERVAL_S", "1m"],
    ["LEDGER_CHECK_INTERVAL_S", "86401"],
    ["WEBHOOK_TIMEOUT_MS", "0"],
    ["WEBHOOK_ALLOW_PRIVATE", "maybe"],
    ["WEBHOOK_DISABLE_AFTER_S", "60"],
    ["WEBHOOK_RETENTION_DAYS", "0"],
    ["WEBHOOK_RETRY_SCHEDULE_MS", "250,,500"],
    ["WEBHOOK_RETRY_SCHEDULE_MS", "5"],
    ["WEBHOOK_RETRY_SCHEDULE_MS", "1s,2s"],
    ["WEBHOOK_RETRY_SCHEDULE_MS", Array.from({ length: 101 }, () => "100").join(",")],
    ["WEBHOOK_BREAKER_OPEN_MS", "0"],
    ["WEBHOOK_POLL_INTERVAL_MS", "5"],
  ])("%s=%s is refused with the variable named", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });

  test("the ledger check runs every 60 s by default; 0 turns it off", () => {
    expect(loadConfig({}).ledgerCheckIntervalS).toBe(60);
    expect(loadConfig({ LEDGER_CHECK_INTERVAL_S: "0" }).ledgerCheckIntervalS).toBe(0);
    expect(loadConfig({ LEDGER_CHECK_INTERVAL_S: "5" }).ledgerCheckIntervalS).toBe(5);
  });

  test("webhooks: private destinations allowed outside production, refused in it unless WEBHOOK_ALLOW_PRIVATE=true", () => {
    expect(loadConfig({}).webhookAllowPrivate).toBe(true);
    expect(loadConfig({ NODE_ENV: "production" }).webhookAllowPrivate).toBe(false);
    expect(loadConfig({ NODE_ENV: "production", WEBHOOK_ALLOW_PRIVATE: "true" }).webhookAllowPrivate).toBe(true);
    const c = loadConfig({});
    expect([c.webhookTimeoutMs, c.webhookRotationWindowS, c.webhookDisableAfterS, c.webhookRelay]).toEqual([10_000, 86_400, 259_200, true]);
  });

  test("webhook relay tuning: the relay's own retry schedule unless one is listed; breaker 30 s and poll 500 ms by default", () => {
    const c = loadConfig({});
    expect([c.webhookRetryScheduleMs, c.webhookBreakerOpenMs, c.webhookPollIntervalMs]).toEqual([undefined, 30_000, 500]);
    const t = loadConfig({ WEBHOOK_RETRY_SCHEDULE_MS: "250, 500,1000", WEBHOOK_BREAKER_OPEN_MS: "1000", WEBHOOK_POLL_INTERVAL_MS: "100" });
    expect([t.webhookRetryScheduleMs, t.webhookBreakerOpenMs, t.webhookPollIntervalMs]).toEqual([[250, 500, 1000], 1000, 100]);
  });

  test("cross-field rules: orders role needs INVENTORY_URL; an Upstash URL needs a token", () => {
    expect(() => loadConfig({ VALERIX_ROLE: "orders" })).toThrow("INVENTORY_URL");
    expect(loadConfig({ VALERIX_ROLE: "orders", INVENTORY_URL: "http://inventory:3000" }).inventoryUrl).toBe("http://inventory:3000");
    expect(() => loadConfig({ REDIS_URL: "https://eu1.upstash.io" })).toThrow("REDIS_TOKEN");
  });

  test("the retry visibility timeout outlasts what one delivery may take: two inventory calls and some slack", () => {
    expect(loadConfig({}).retryVisibilityTimeoutMs).toBe(30_000);
    expect(loadConfig({ RETRY_VISIBILITY_TIMEOUT_MS: "8000" }).retryVisibilityTimeoutMs).toBe(8_000);
    expect(() => loadConfig({ RETRY_VISIBILITY_TIMEOUT_MS: "7999" })).toThrow("RETRY_VISIBILITY_TIMEOUT_MS");
    expect(() => loadConfig({ RETRY_VISIBILITY_TIMEOUT_MS: "3000", INVENTORY_TIMEOUT_MS: "500" })).not.toThrow();
    expect(() => loadConfig({ RETRY_VISIBILITY_TIMEOUT_MS: "30000", INVENTORY_TIMEOUT_MS: "20000" })).toThrow("INVENTORY_TIMEOUT_MS");
    // Unset, it grows with the inventory timeout instead of refusing to start.
    expect(loadConfig({ INVENTORY_TIMEOUT_MS: "20000" }).retryVisibilityTimeoutMs).toBe(42_000);
    // The inventory role runs no retry worker.
    expect(loadConfig({ VALERIX_ROLE: "inventory", RETRY_VISIBILITY_TIMEOUT_MS: "2000" }).retryVisibilityTimeoutMs).toBe(2_000);
  });

  test("the sweeper waits out a live request: SWEEP_STRANDED_AFTER_MS of at least INVENTORY_TIMEOUT_MS + 1000", () => {
    expect(loadConfig({}).sweepStrandedAfterMs).toBe(60_000);
    expect(loadConfig({ SWEEP_STRANDED_AFTER_MS: "4000" }).sweepStrandedAfterMs).toBe(4_000);
    expect(() => loadConfig({ SWEEP_STRANDED_AFTER_MS: "3999" })).toThrow("SWEEP_STRANDED_AFTER_MS");
    expect(() => loadConfig({ SWEEP_STRANDED_AFTER_MS: "500" })).toThrow("INVENTORY_TIMEOUT_MS + 1000 = 4000 ms");
    expect(loadConfig({ SWEEP_STRANDED_AFTER_MS: "1500", INVENTORY_TIMEOUT_MS: "500" }).sweepStrandedAfterMs).toBe(1_500);
    // Unset, it grows with a long inventory timeout instead of refusing to start.
    expect(loadConfig({ INVENTORY_TIMEOUT_MS: "60000" }).sweepStrandedAfterMs).toBe(61_000);
    // The inventory role runs no sweeper.
    expect(loadConfig({ VALERIX_ROLE: "inventory", SWEEP_STRANDED_AFTER_MS: "500" }).sweepStrandedAfterMs).toBe(500);
  });

  test("TRUSTED_PROXIES: none by default; a comma-separated list of IPv4/IPv6 addresses and CIDR ranges", () => {
    expect(loadConfig({}).trustedProxies).toEqual([]);
    expect(loadConfig({ TRUSTED_PROXIES: "10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,::1" }).trustedProxies).toEqual(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"]);
  });

  test("CORS_ORIGINS: none by default; a comma-separated list of exact origins", () => {
    expect(loadConfig({}).corsOrigins).toEqual([]);
    expect(loadConfig({ CORS_ORIGINS: "https://shop.example, http://localhost:5173 ,http://[::1]:8080,https://shop.example" }).corsOrigins).toEqual([
      "https://shop.example",
      "http://localhost:5173",
      "http://[::1]:8080",
    ]);
    expect(() => loadConfig({ CORS_ORIGINS: "https://shop.example/" })).toThrow("write https://shop.example");
  });

  test("group commit: up to 64 orders a statement, two statements in flight, 1 turns it off", () => {
    expect(loadConfig({})).toMatchObject({ groupCommitMaxBatch: 64, groupCommitInFlight: 2 });
    expect(loadConfig({ GROUP_COMMIT_MAX_BATCH: "1", GROUP_COMMIT_IN_FLIGHT: "1" })).toMatchObject({ groupCommitMaxBatch: 1, groupCommitInFlight: 1 });
  });

  test("database connections per process: by role unless DATABASE_POOL_SIZE says, at least 2", () => {
    expect(loadConfig({}).databasePoolSize).toBe(12);
    expect(loadConfig({ VALERIX_ROLE: "orders", INVENTORY_URL: "http://inventory:3000" }).databasePoolSize).toBe(10);
    expect(loadConfig({ VALERIX_ROLE: "inventory" }).databasePoolSize).toBe(8);
    expect(loadConfig({ DATABASE_POOL_SIZE: "20" }).databasePoolSize).toBe(20);
    expect(() => loadConfig({ DATABASE_POOL_SIZE: "1" })).toThrow(/DATABASE_POOL_SIZE/);
  });

  test("production turns rate limiting on by default", () => {
    expect(loadConfig({ NODE_ENV: "production" }).rateLimitPerMin).toBe(600);
  });

  test.each([
    ["PORT", "nope"],
    ["TRUSTED_PROXIES", "10.0.0.0/8,load-balancer"],
    ["CORS_ORIGINS", "https://shop.example/*"],
  ])("a bad value stops the executable with exit code 2 and a clear message (%s=%s)", async (name, value) => {
    const proc = Bun.spawn(["bun", "src/main.ts"], { env: { ...process.env, [name]: value }, stderr: "pipe", stdout: "pipe", cwd: `${import.meta.dir}/..` });
    expect(await proc.exited).toBe(2);
    expect(await new Response(proc.stderr).text()).toContain(name);
  });
});
