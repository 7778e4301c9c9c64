import pino, { type Logger } from "pino";
import type { LogLevel } from "../config.ts";

export type { Logger };

/**
 * Structured JSON logs on stdout, one object per line. Secrets never reach a log line: the
 * redaction list covers every header and field that could carry one.
 */
export function createLogger(level: LogLevel, base: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { service: "valerix", ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ["authorization", "headers.authorization", "req.headers.authorization", "cookie", "headers.cookie", "token", "adminToken", "config.adminToken", "config.redisToken", "config.databaseUrl"],
      censor: "[redacted]",
    },
    formatters: { level: (label) => ({ level: label }) },
  });
}
