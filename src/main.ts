import { ConfigError, loadConfig } from "./config.ts";
import { startServer } from "./server.ts";
import { createProcessLogger } from "../platform/logging.ts";

/**
 * The executable's entry point. `valerix` runs the server; `valerix healthcheck` asks a running
 * one for /health/live (for container HEALTHCHECKs on images without curl).
 */
async function main(argv: string[]): Promise<number> {
  if (argv[0] === "healthcheck") {
    const port = Number(process.env.PORT || 3000);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health/live`, { signal: AbortSignal.timeout(3000) });
      return res.ok ? 0 : 1;
    } catch {
      return 1;
    }
  }
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
  const server = await startServer(config, { logger });
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
