import { ConfigError, loadConfig, loadDatabaseConfig } from "./config.ts";
import { startServer } from "./server.ts";
import { createProcessLogger } from "../platform/logging.ts";
import { parseCommandLine, USAGE } from "./cli.ts";
import { errorLine, runMigrateCommand } from "./migrate-command.ts";
import { unavailabilityReason } from "../platform/db-errors.ts";
import { VERSION } from "./version.ts";

/**
 * The executable's entry point. `valerix` runs the server; `valerix --help` lists the rest:
 * `migrate` (and `migrate --status`), `healthcheck` (for container HEALTHCHECKs on images
 * without curl), `--version`.
 */
async function main(argv: string[]): Promise<number> {
  const command = parseCommandLine(argv);
  switch (command.kind) {
    case "usage-error":
      console.error(`valerix: ${command.message}\n\n${USAGE}`);
      return 2;
    case "help":
      console.log(USAGE);
      return 0;
    case "version":
      console.log(VERSION);
      return 0;
    case "healthcheck":
      return healthcheck();
    case "migrate": {
      let config;
      try {
        config = loadDatabaseConfig();
      } catch (err) {
        if (err instanceof ConfigError) {
          console.error(`valerix: invalid configuration: ${err.message}`);
          return 2;
        }
        throw err;
      }
      return runMigrateCommand(config, { status: command.status });
    }
    case "serve":
      return serve();
  }
}

/** Asks a running server for /health/live: 0 when it answers 2xx, 1 otherwise. */
async function healthcheck(): Promise<number> {
  const port = Number(process.env.PORT || 3000);
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health/live`, { signal: AbortSignal.timeout(3000) });
    return res.ok ? 0 : 1;
  } catch {
    return 1;
  }
}

/** Runs the server until SIGTERM or SIGINT; returns -1 so the process stays up. */
async function serve(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`valerix: invalid configuration: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const logger = createProcessLogger(config.logLevel, { role: config.role });
  if (!config.adminToken) {
    if (config.nodeEnv === "production") logger.warn("ADMIN_TOKEN is not set: the admin API is closed");
    else logger.warn("ADMIN_TOKEN is not set: the admin API (chaos, catalog) is OPEN to anyone who can reach this port. Set ADMIN_TOKEN outside local development.");
  }
  let server;
  try {
    server = await startServer(config, { logger });
  } catch (err) {
    // A replica started while PostgreSQL is away (restarted during an outage) exits for its
    // supervisor to start again: say why in one line, as `valerix migrate` does, not with an
    // unhandled error's stack. Any other failure keeps its stack in the log.
    const unreachable = unavailabilityReason(err) !== null;
    const why = unreachable ? "cannot start: the database is unreachable" : "cannot start";
    logger.fatal(unreachable ? { reason: errorLine(err) } : { err }, why);
    console.error(`valerix: ${why}: ${errorLine(err)}`);
    return 1;
  }
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "draining");
    const force = setTimeout(() => {
      logger.error("drain timed out; exiting");
      process.exit(1);
    }, config.drainTimeoutS * 1000);
    await server.stop();
    clearTimeout(force);
    logger.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  return -1;
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exit(code);
