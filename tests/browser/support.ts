import type { Clock } from "../../platform/clock.ts";
import type { ResponseTimeWindow } from "../../platform/response-window.ts";
import type { InventoryPort } from "../../modules/inventory/index.ts";
import type { ChaosControl } from "../../views/index.ts";
import type { RunningServer } from "../../src/server.ts";
import { hasPostgres } from "../support/services.ts";
import { startSystem } from "../support/system.ts";

export interface UiSystemOptions {
  /** PGlite (what the binary uses by default, seconds to initialise) or the real PostgreSQL. Default pglite. */
  backend?: "pglite" | "postgres";
  /** Length of the latency window behind the banner; short in tests so recovery is quick. */
  windowMs?: number;
  adminToken?: string;
  nodeEnv?: string;
  /** The pages' clock (sparkline slots, "5 s ago"); the screenshot script runs it ahead. */
  clock?: Clock;
  /** Breaker cool-down before the half-open probe. */
  halfOpenAfterMs?: number;
  /** Any other settings, as environment variables (`CORS_ORIGINS`, …). */
  env?: Record<string, string>;
}

/** The quickest backend at hand, for suites that test the pages rather than the storage. */
export const FAST_BACKEND: "pglite" | "postgres" = hasPostgres ? "postgres" : "pglite";

export interface UiSystem {
  url: string;
  origin: string;
  window: ResponseTimeWindow;
  chaos: { control: ChaosControl };
  inventory: { port: InventoryPort };
  orders: { service: NonNullable<RunningServer["orders"]> };
  stop(): Promise<void>;
}

/**
 * The real `all` role (the composition root itself, with the pages, the real chaos injector and
 * the call policy) on port 0, with the handles the page tests drive directly.
 */
export async function startUiSystem(opts: UiSystemOptions = {}): Promise<UiSystem> {
  const env: Record<string, string> = { HEALTH_WINDOW_S: String(Math.max(1, Math.round((opts.windowMs ?? 30_000) / 1000))), ...opts.env };
  if (opts.adminToken) env.ADMIN_TOKEN = opts.adminToken;
  if (opts.nodeEnv) env.NODE_ENV = opts.nodeEnv;
  if (opts.halfOpenAfterMs) env.BREAKER_HALF_OPEN_MS = String(opts.halfOpenAfterMs);
  const sys = await startSystem(opts.backend ?? "pglite", env, { clock: opts.clock });
  const server = sys.server;
  return {
    url: sys.url,
    origin: sys.url,
    window: server.window,
    chaos: { control: server.chaos },
    inventory: { port: server.inventory! },
    orders: { service: server.orders! },
    stop: () => sys.stop(),
  };
}
