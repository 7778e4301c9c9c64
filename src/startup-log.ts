import type { Config } from "./config.ts";
import type { Logger } from "../platform/logging.ts";
import { redactUrl } from "../platform/logging.ts";
import { VERSION } from "./version.ts";

/** The settings that are secrets: shown only as set ("[redacted]") or unset (null). */
const SECRETS = ["adminToken", "inventoryToken", "redisToken", "csrfSecret"] as const satisfies ReadonlyArray<keyof Config>;
/** The settings that are URLs: shown without a password. */
const URLS = ["databaseUrl", "redisUrl", "inventoryUrl"] as const satisfies ReadonlyArray<keyof Config>;

/**
 * The configuration as the process runs it, every setting named, secrets redacted: tokens become
 * "[redacted]" when set, passwords inside URLs likewise. Unset settings are `null`, so a line says
 * what was left to its default.
 */
export function effectiveConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) out[k] = v === undefined ? null : v;
  for (const k of SECRETS) out[k] = config[k] === undefined ? null : "[redacted]";
  for (const k of URLS) out[k] = config[k] === undefined ? null : redactUrl(config[k]!);
  return out;
}

/**
 * The start-up line: version, effective configuration and what was opened, one line. The role
 * travels in the logger's base fields when the process logger carries it, so it is named here
 * only through `config` (a key the base never has).
 */
export function logStartup(logger: Logger, config: Config, opened: { port: number | undefined; database: string; kv: string; startMs: number }): void {
  logger.info(
    { version: VERSION, port: opened.port, database: opened.database, kv: opened.kv, start_ms: Math.round(opened.startMs), config: effectiveConfig(config) },
    "valerix listening",
  );
}
