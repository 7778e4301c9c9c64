import { parseArgs } from "node:util";
import { PRESETS, type PresetName } from "../chaos/chaos.config.ts";
import { INFRA_SCENARIOS, isInfraScenario, type InfraScenario } from "./infra/scenarios.ts";

/** The command line of `npm run chaos`, checked once; a bad flag exits 2 with the usage text. */

export type Scenario = PresetName | InfraScenario | "none";

export interface RunOptions {
  scenario: Scenario;
  orders: number;
  seed: number;
  concurrency: number;
  /** Orders started per second; 0 for as fast as the concurrency allows. */
  rate: number;
  items: number;
  /** Processes per role behind HAProxy; 1 without a balancer, unless an infra scenario asks for one. */
  replicas: number;
  /** Extra experiment fields merged over the preset, e.g. `{"routes": "all"}`. */
  chaosOverride: Record<string, unknown>;
  /** Run against a deployment instead of starting one. */
  target: string | null;
  inventoryUrl: string | null;
  chaosUrl: string | null;
  adminToken: string | null;
  /** Inventory's database, to read the ledger of a deployment. */
  inventoryDb: string | null;
  embedded: boolean;
  pgUrl: string;
  redisUrl: string;
  redisDb: number | undefined;
  settleTimeoutS: number;
  requestTimeoutMs: number;
  maxAttempts: number;
  duplicateRate: number;
  unknownRate: number;
  /** Lines per order: 1 to this many. */
  maxLines: number;
  /** Share of one-line orders sent in the seed's `{item_id, quantity}` body. */
  oneItemRate: number;
  /** Share of orders cancelled (right after their answer, a few seconds later, or after healing). */
  cancelRate: number;
  /** Restocks made during the load. */
  restocks: number;
  /** Share of orders placed with a hold (`hold_s`): paid, cancelled while reserved, or left to expire. */
  holdRate: number;
  /** The holds' `hold_s`, seconds (60 at least, as the API requires). */
  holdS: number;
  delayThresholdMs: number;
  out: string | null;
  keep: boolean;
  progress: "auto" | "plain" | "off";
  jsonOrders: "all" | "affected" | "none";
  /** Caps the JSON's request-by-request orders (worst first); 0 for no cap. */
  jsonMaxOrders: number;
  /** Settings for the roles the runner starts (`--env RETRY_MAX_ATTEMPTS=2`), over their defaults. */
  roleEnv: Record<string, string>;
  /** A webhook receiver that fails and goes down, two relay processes killed in turn, and the webhook invariants. */
  webhooks: boolean;
}

export class UsageError extends Error {
  readonly code = "usage";
}

export const USAGE = `Usage: npm run chaos -- [options]

Starts Valerix in split mode (or uses --target), drives orders through careful clients while
inventory misbehaves, heals, and checks the invariants. Exit 0: all hold; 1: a breach; 2: the
run could not be carried out.

  --scenario NAME        mild | moderate | extreme | none: inventory chaos (default moderate)
                         infra | infra-extreme: replicas behind HAProxy, replica kills, PostgreSQL
                         and Redis restarts, a partition between the roles (README, "Replicas
                         and infrastructure faults")
  --replicas N           processes per role behind HAProxy, on a private PostgreSQL and Redis
                         (default 1, no balancer; infra scenarios: 2)
  --orders N             logical orders to place                       (default 2000)
  --seed N               seeds the chaos faults and the order plan     (default: random, reported)
  --concurrency N        orders in flight at once                      (default 24)
  --rate N               orders started per second, 0 = unpaced        (default 50)
  --items N              items created for the run                     (default 8)
  --chaos JSON           experiment fields over the preset, e.g. '{"routes":"all"}'
  --target URL           an existing deployment's orders API (no processes started)
  --inventory-url URL    its inventory API, when split                 (default: --target)
  --chaos-url URL        where to call /api/admin/chaos                (default: --inventory-url)
  --admin-token TOKEN    bearer for the admin API                      (default: $ADMIN_TOKEN)
  --inventory-db URL     inventory's PostgreSQL, for the ledger checks of a deployment
  --embedded             PGlite and in-memory stores even when PostgreSQL and Redis answer
  --pg-url URL           PostgreSQL admin connection    (default postgres://postgres@127.0.0.1:5432/postgres)
  --redis-url URL        Redis server                   (default redis://127.0.0.1:6379)
  --redis-db N           Redis DB index for the run, flushed first (default: highest empty of 1–15)
  --settle-timeout S     wait this long after healing for final states (default 120)
  --request-timeout MS   client deadline per request   (default 15000)
  --max-attempts N       requests per order before waiting for the heal (default 8)
  --duplicate-rate R     share of orders sent twice at once (default 0.05)
  --unknown-rate R       share of orders with a line for a missing item (default 0.01)
  --max-lines N          lines per order, 1 to N over the run's shared items (default 4)
  --one-item-rate R      share of one-line orders sent in the seed's {item_id, quantity} body
                         (default 0.5)
  --cancel-rate R        share of orders cancelled: right after their answer, 0.5–5 s later, or
                         after healing; some sent again with the same key and with a second key
                         (default 0.1)
  --restocks N           restocks of random items during the load (default 4)
  --hold-rate R          share of orders placed with a hold (hold_s): 55 % paid (early, near
                         the deadline, or after it), 15 % cancelled while reserved, 30 % left
                         to expire; payments sent again with the same key and a second key
                         (default 0.2)
  --hold-s S             the holds' hold_s; the settle phase waits for the last deadline
                         (default 60, the least the API takes)
  --delay-threshold MS   an order slower than this counts as delayed (default 1000)
  --out PATH             report path prefix (PATH.json, PATH.md) (default verify/reports/<time>-<scenario>-s<seed>)
  --json-orders MODE     all | affected | none: which orders the JSON lists request by request
                         (default all; the affected-orders table is always complete)
  --json-max-orders N    at most N of those, the worst first (default 0: no cap)
  --webhooks             a webhook receiver in the runner (50 % 503, slow at times, down for a
                         stretch), subscribed to every event; the relay runs in two processes of
                         its own, killed with SIGKILL in turn and restarted; after healing the
                         backlog must drain and the five webhook invariants hold (split mode on
                         PostgreSQL; not with --target, --embedded or replicas)
  --env NAME=VALUE       a setting for the roles the runner starts, e.g. RETRY_MAX_ATTEMPTS=2
                         (repeatable; shown in the report and its replay command)
  --keep                 keep databases, data folders and the Redis DB after the run
  --plain                progress as plain lines even on a terminal
  --quiet                no progress output
  -h, --help             this text
`;

function num(name: string, raw: string | undefined, fallback: number, min: number, max: number, integer = true): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw new UsageError(`--${name} must be ${integer ? "an integer" : "a number"} from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

function url(name: string, raw: string | undefined): string | null {
  if (raw === undefined) return null;
  try {
    const u = new URL(raw);
    return u.toString().replace(/\/+$/, "");
  } catch {
    throw new UsageError(`--${name} is not a URL: "${raw}"`);
  }
}

/** `parseOptions(["--scenario", "extreme", "--orders", "500"])` → `{ scenario: "extreme", orders: 500, … }`; `null` for --help. */
export function parseOptions(argv: string[], env: Record<string, string | undefined> = process.env, random: () => number = Math.random): RunOptions | null {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        scenario: { type: "string" },
        orders: { type: "string" },
        seed: { type: "string" },
        concurrency: { type: "string" },
        rate: { type: "string" },
        items: { type: "string" },
        replicas: { type: "string" },
        chaos: { type: "string" },
        target: { type: "string" },
        "inventory-url": { type: "string" },
        "chaos-url": { type: "string" },
        "admin-token": { type: "string" },
        "inventory-db": { type: "string" },
        embedded: { type: "boolean" },
        "pg-url": { type: "string" },
        "redis-url": { type: "string" },
        "redis-db": { type: "string" },
        "settle-timeout": { type: "string" },
        "request-timeout": { type: "string" },
        "max-attempts": { type: "string" },
        env: { type: "string", multiple: true },
        "duplicate-rate": { type: "string" },
        "unknown-rate": { type: "string" },
        "max-lines": { type: "string" },
        "one-item-rate": { type: "string" },
        "cancel-rate": { type: "string" },
        restocks: { type: "string" },
        "hold-rate": { type: "string" },
        "hold-s": { type: "string" },
        "delay-threshold": { type: "string" },
        out: { type: "string" },
        "json-orders": { type: "string" },
        "json-max-orders": { type: "string" },
        keep: { type: "boolean" },
        webhooks: { type: "boolean" },
        plain: { type: "boolean" },
        quiet: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return null;

  const scenario = (v.scenario ?? "moderate") as Scenario;
  if (scenario !== "none" && !(scenario in PRESETS) && !isInfraScenario(scenario)) {
    throw new UsageError(`--scenario must be one of ${[...Object.keys(PRESETS), ...INFRA_SCENARIOS, "none"].join(", ")}, got "${v.scenario}"`);
  }
  let chaosOverride: Record<string, unknown> = {};
  if (v.chaos !== undefined) {
    try {
      const o = JSON.parse(v.chaos) as unknown;
      if (!o || typeof o !== "object" || Array.isArray(o)) throw new Error("not an object");
      chaosOverride = o as Record<string, unknown>;
    } catch (err) {
      throw new UsageError(`--chaos must be a JSON object: ${(err as Error).message}`);
    }
  }
  const target = url("target", v.target);
  const inventoryUrl = url("inventory-url", v["inventory-url"]);
  const jsonOrders = v["json-orders"] ?? "all";
  if (jsonOrders !== "all" && jsonOrders !== "affected" && jsonOrders !== "none") {
    throw new UsageError(`--json-orders must be all, affected or none, got "${jsonOrders}"`);
  }
  if (!target && (inventoryUrl || v["chaos-url"] || v["inventory-db"])) {
    throw new UsageError("--inventory-url, --chaos-url and --inventory-db only apply with --target");
  }
  const replicas = num("replicas", v.replicas, isInfraScenario(scenario) ? 2 : 1, 1, 16);
  if ((v.replicas !== undefined || isInfraScenario(scenario)) && (target || v.embedded)) {
    throw new UsageError("--replicas and the infra scenarios start their own deployment: not with --target or --embedded");
  }

  if (v.webhooks && (target || v.embedded || replicas > 1 || isInfraScenario(scenario))) {
    throw new UsageError("--webhooks starts its own relays in split mode: not with --target, --embedded, --replicas or the infra scenarios");
  }

  return {
    scenario,
    webhooks: v.webhooks ?? false,
    orders: num("orders", v.orders, 2000, 1, 1_000_000),
    seed: num("seed", v.seed, Math.floor(random() * 0x1_0000_0000), 0, 0xffff_ffff),
    concurrency: num("concurrency", v.concurrency, 24, 1, 1024),
    rate: num("rate", v.rate, 50, 0, 100_000, false),
    items: num("items", v.items, 8, 1, 1000),
    replicas,
    chaosOverride,
    target,
    inventoryUrl,
    chaosUrl: url("chaos-url", v["chaos-url"]),
    adminToken: v["admin-token"] ?? env.ADMIN_TOKEN ?? null,
    inventoryDb: url("inventory-db", v["inventory-db"]),
    embedded: v.embedded ?? false,
    pgUrl: v["pg-url"] ?? env.CHAOS_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
    redisUrl: v["redis-url"] ?? env.CHAOS_REDIS_URL ?? "redis://127.0.0.1:6379",
    redisDb: v["redis-db"] === undefined ? undefined : num("redis-db", v["redis-db"], 0, 0, 15),
    settleTimeoutS: num("settle-timeout", v["settle-timeout"], 120, 1, 3600),
    requestTimeoutMs: num("request-timeout", v["request-timeout"], 15_000, 100, 600_000),
    maxAttempts: num("max-attempts", v["max-attempts"], 8, 1, 100),
    duplicateRate: num("duplicate-rate", v["duplicate-rate"], 0.05, 0, 1, false),
    unknownRate: num("unknown-rate", v["unknown-rate"], 0.01, 0, 1, false),
    maxLines: num("max-lines", v["max-lines"], 4, 1, 50),
    oneItemRate: num("one-item-rate", v["one-item-rate"], 0.5, 0, 1, false),
    cancelRate: num("cancel-rate", v["cancel-rate"], 0.1, 0, 1, false),
    restocks: num("restocks", v.restocks, 4, 0, 1000),
    holdRate: num("hold-rate", v["hold-rate"], 0.2, 0, 1, false),
    holdS: num("hold-s", v["hold-s"], 60, 60, 86_400),
    delayThresholdMs: num("delay-threshold", v["delay-threshold"], 1000, 0, 600_000),
    out: v.out ?? null,
    keep: v.keep ?? false,
    progress: v.quiet ? "off" : v.plain ? "plain" : "auto",
    jsonOrders,
    jsonMaxOrders: num("json-max-orders", v["json-max-orders"], 0, 0, 10_000_000),
    roleEnv: roleEnv(v.env ?? []),
  };
}

/** `--env NAME=VALUE` pairs; the runner's own wiring (URLs, tokens, role, port) is not for them to change. */
function roleEnv(pairs: readonly string[]): Record<string, string> {
  const reserved = new Set(["DATABASE_URL", "REDIS_URL", "REDIS_TOKEN", "INVENTORY_URL", "ADMIN_TOKEN", "VALERIX_ROLE", "VALERIX_DATA_DIR", "PORT", "HOST"]);
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(pair);
    if (!m) throw new UsageError(`--env takes NAME=VALUE with an upper-case NAME, got "${pair}"`);
    if (reserved.has(m[1]!)) throw new UsageError(`--env ${m[1]} is set by the runner itself`);
    out[m[1]!] = m[2]!;
  }
  return out;
}

/** The command that repeats a run, for the report. */
export function replayCommand(o: RunOptions): string {
  const parts = ["npm run chaos --", `--scenario ${o.scenario}`, `--orders ${o.orders}`, `--seed ${o.seed}`, `--concurrency ${o.concurrency}`, `--rate ${o.rate}`];
  if (o.replicas > 1 || isInfraScenario(o.scenario)) parts.push(`--replicas ${o.replicas}`);
  if (Object.keys(o.chaosOverride).length) parts.push(`--chaos '${JSON.stringify(o.chaosOverride)}'`);
  if (o.maxLines !== 4) parts.push(`--max-lines ${o.maxLines}`);
  if (o.oneItemRate !== 0.5) parts.push(`--one-item-rate ${o.oneItemRate}`);
  if (o.cancelRate !== 0.1) parts.push(`--cancel-rate ${o.cancelRate}`);
  if (o.restocks !== 4) parts.push(`--restocks ${o.restocks}`);
  if (o.holdRate !== 0.2) parts.push(`--hold-rate ${o.holdRate}`);
  if (o.holdS !== 60) parts.push(`--hold-s ${o.holdS}`);
  if (o.target) parts.push(`--target ${o.target}`);
  if (o.embedded) parts.push("--embedded");
  if (o.webhooks) parts.push("--webhooks");
  for (const [k, val] of Object.entries(o.roleEnv)) parts.push(`--env ${k}=${val}`);
  return parts.join(" ");
}
