import { parseArgs } from "node:util";

/**
 * The executable's command line. Everything else (ports, database, tokens) is configured by
 * environment variables; the arguments only pick what the process does.
 */
export type Command =
  | { kind: "serve" }
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "migrate"; status: boolean }
  | { kind: "healthcheck" }
  | { kind: "usage-error"; message: string };

/** `valerix migrate --status` exits with this when migrations are pending (see USAGE). */
export const EXIT_PENDING = 3;

export const USAGE = `Usage: valerix [command] [options]

Commands:
  (none)             run the server
  migrate            apply pending database migrations, then exit
  migrate --status   list applied and pending migrations per module, then exit
  healthcheck        ask the server on 127.0.0.1:$PORT for /health/live (container health checks)

Options:
  -h, --help         print this help and exit
  --version          print the version and exit

Everything else is configured by environment variables (see the README). The server applies
pending migrations itself when it starts; \`migrate\` does it ahead of time, against the same
database: DATABASE_URL (PostgreSQL) or, when unset, the embedded one in VALERIX_DATA_DIR
(default ./.valerix-data). VALERIX_ROLE picks the modules: all (default), orders or inventory.

Exit codes:
  0  done; for \`migrate --status\`: every migration is applied
  1  failed: database unreachable, a migration failed, the server not live
  2  usage error or invalid configuration
  3  \`migrate --status\` only: migrations are pending (run \`valerix migrate\`)`;

const COMMANDS = ["migrate", "healthcheck"] as const;

export function parseCommandLine(argv: readonly string[]): Command {
  let values: { help?: boolean; version?: boolean; status?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
        status: { type: "boolean" },
      },
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    // parseArgs' messages name the argument and add a hint of its own; the first sentence is enough.
    const first = ((err as Error).message.split(/\.\s/)[0] ?? "").replace(/\.$/, "");
    return { kind: "usage-error", message: first.charAt(0).toLowerCase() + first.slice(1) };
  }
  if (values.help) return { kind: "help" };
  const [command, ...extra] = positionals;
  if (extra.length) return { kind: "usage-error", message: `unexpected argument '${extra[0]}'` };
  if (command !== undefined && !(COMMANDS as readonly string[]).includes(command)) {
    return { kind: "usage-error", message: `unknown command '${command}'` };
  }
  if (values.version) {
    return command === undefined ? { kind: "version" } : { kind: "usage-error", message: `--version takes no command` };
  }
  if (values.status && command !== "migrate") return { kind: "usage-error", message: "--status belongs to `migrate`" };
  if (command === "migrate") return { kind: "migrate", status: values.status === true };
  if (command === "healthcheck") return { kind: "healthcheck" };
  return { kind: "serve" };
}
