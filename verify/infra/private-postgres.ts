import { appendFileSync, chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { postgresAnswers } from "../backing-services.ts";
import { alive, freePort, runAsync, waitFor } from "./util.ts";

/**
 * A PostgreSQL cluster of a test's (or a verification run's) own: `initdb` into a temporary folder,
 * a free loopback port, trust authentication on 127.0.0.1 only (plus any `trust` ranges asked for,
 * e.g. a network namespace the run made). Tests and the infra scenarios that stop, kill and restart
 * PostgreSQL use this, never the machine's shared server on 5432. As root, the server runs as the `postgres` user
 * (PostgreSQL refuses to run as root); otherwise as the current user.
 */

/** The folder with `initdb` and `pg_ctl`, or undefined when PostgreSQL's server binaries are absent. */
export function postgresBinDir(): string | undefined {
  const candidates: string[] = [];
  const fromConfig = Bun.which("pg_config") ? Bun.spawnSync(["pg_config", "--bindir"]).stdout.toString().trim() : "";
  if (fromConfig) candidates.push(fromConfig);
  const debian = "/usr/lib/postgresql";
  if (existsSync(debian)) {
    const versions = readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(join(debian, v, "bin"));
  }
  return candidates.find((dir) => existsSync(join(dir, "initdb")) && existsSync(join(dir, "pg_ctl")));
}

const asRoot = process.getuid?.() === 0;

/** Runs a PostgreSQL binary as the server's user; throws with its output when it fails. */
function run(bin: string, args: string[], opts: { allowFailure?: boolean } = {}): { ok: boolean; output: string } {
  const cmd = asRoot ? ["runuser", "-u", "postgres", "--", bin, ...args] : [bin, ...args];
  const res = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", env: { ...process.env, LC_ALL: "C" } });
  const output = res.stdout.toString() + res.stderr.toString();
  if (!res.success && !opts.allowFailure) throw new Error(`${cmd.join(" ")} failed (exit ${res.exitCode}):\n${output}`);
  return { ok: res.success, output };
}

/** `run` without blocking the event loop (a verification run keeps its clients going meanwhile). */
function runLater(bin: string, args: string[]): Promise<{ ok: boolean; output: string }> {
  return runAsync(asRoot ? ["runuser", "-u", "postgres", "--", bin, ...args] : [bin, ...args], { allowFailure: true });
}

export class PrivatePostgres {
  readonly url: string;

  private constructor(
    readonly bin: string,
    readonly dataDir: string,
    readonly port: number,
    private readonly settings: Record<string, string | number>,
  ) {
    this.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  }

  /**
   * Creates and starts a fresh cluster. `settings` become `-c name=value` server options;
   * `trust` adds `host all all <cidr> trust` lines (give `listen_addresses` to match).
   */
  static async create(settings: Record<string, string | number> = {}, trust: string[] = []): Promise<PrivatePostgres> {
    const bin = postgresBinDir();
    if (!bin) throw new Error("PostgreSQL server binaries (initdb, pg_ctl) not found");
    const root = mkdtempSync(join(tmpdir(), "valerix-pg-"));
    // The server's user must reach its data folder through this one.
    chmodSync(root, 0o755);
    const dataDir = join(root, "data");
    if (asRoot) Bun.spawnSync(["chown", "postgres:postgres", root]);
    run(join(bin, "initdb"), ["-D", dataDir, "-U", "postgres", "--auth=trust", "--no-sync", "--encoding=UTF8", "--no-instructions"]);
    for (const cidr of trust) {
      if (!/^[0-9a-f.:]+\/\d+$/i.test(cidr)) throw new Error(`not a CIDR range: ${cidr}`);
      appendFileSync(join(dataDir, "pg_hba.conf"), `host all all ${cidr} trust\n`);
    }
    const cluster = new PrivatePostgres(bin, dataDir, freePort(), settings);
    await cluster.start();
    return cluster;
  }

  private options(): string {
    const all: Record<string, string | number> = {
      port: this.port,
      listen_addresses: "127.0.0.1",
      unix_socket_directories: this.dataDir,
      // A test cluster: a crash of the server process keeps the OS page cache, so no fsync is needed.
      fsync: "off",
      full_page_writes: "off",
      ...this.settings,
    };
    return Object.entries(all)
      .map(([k, v]) => `-c ${k}=${v}`)
      .join(" ");
  }

  /** Starts the server and waits until it takes connections. Retries while a killed server's backends linger. */
  async start(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await runLater(join(this.bin, "pg_ctl"), ["-D", this.dataDir, "-l", join(this.dataDir, "server.log"), "-o", this.options(), "-w", "-t", "20", "start"]);
      if (res.ok) break;
      if (Date.now() > deadline) throw new Error(`pg_ctl start failed:\n${res.output}\n${this.log()}`);
      await Bun.sleep(300);
    }
    await waitFor(() => this.answers(), Math.max(1_000, deadline - Date.now()), "the private PostgreSQL to answer");
  }

  /** `pg_ctl stop -m fast`: sessions get 57P01 (terminating connection due to administrator command). */
  stopFast(): void {
    run(join(this.bin, "pg_ctl"), ["-D", this.dataDir, "-m", "fast", "-w", "-t", "30", "stop"], { allowFailure: true });
  }

  /** `stopFast` without blocking the event loop. */
  async stopFastLater(): Promise<void> {
    await runLater(join(this.bin, "pg_ctl"), ["-D", this.dataDir, "-m", "fast", "-w", "-t", "30", "stop"]);
  }

  /** The postmaster's process id, from its pid file; undefined when it is not running. */
  postmasterPid(): number | undefined {
    const file = join(this.dataDir, "postmaster.pid");
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }

  /** `kill -9` of the postmaster: no goodbye to anyone; its backends notice and exit on their own. */
  async killPostmaster(): Promise<void> {
    const pid = this.postmasterPid();
    if (!pid) return;
    process.kill(pid, "SIGKILL");
    await waitFor(async () => !alive(pid), 10_000, "the postmaster to die");
  }

  /** True when a connection and `select 1` succeed. */
  answers(): Promise<boolean> {
    return postgresAnswers(this.url, 1_000);
  }

  /** Creates a database and returns its URL. */
  async createDatabase(name: string): Promise<string> {
    const c = new pg.Client({ connectionString: this.url });
    await c.connect();
    try {
      await c.query(`create database ${name}`);
    } finally {
      await c.end();
    }
    const u = new URL(this.url);
    u.pathname = `/${name}`;
    return u.toString();
  }

  /** Runs a query with a fresh connection, on the admin database unless another URL is given. */
  async query<R = Record<string, unknown>>(text: string, params: unknown[] = [], url = this.url): Promise<R[]> {
    const c = new pg.Client({ connectionString: url });
    c.on("error", () => {});
    await c.connect();
    try {
      return (await c.query(text, params)).rows as R[];
    } finally {
      await c.end().catch(() => {});
    }
  }

  /** The tail of the server's log, for failure messages. */
  log(): string {
    const file = join(this.dataDir, "server.log");
    return existsSync(file) ? readFileSync(file, "utf8").slice(-4_000) : "";
  }

  /** Stops the server (immediate, whatever its state) and deletes the cluster. */
  async destroy(): Promise<void> {
    run(join(this.bin, "pg_ctl"), ["-D", this.dataDir, "-m", "immediate", "-w", "-t", "20", "stop"], { allowFailure: true });
    const pid = this.postmasterPid();
    if (pid && alive(pid)) process.kill(pid, "SIGKILL");
    rmSync(join(this.dataDir, ".."), { recursive: true, force: true });
  }
}

/**
 * Whether suites that need a private cluster can run. Outside CI, without PostgreSQL's server
 * binaries, they are skipped with a message saying why; in CI (`CI` set) their absence fails.
 */
export function privatePostgresAvailable(suite: string): boolean {
  if (postgresBinDir()) return true;
  const why = `${suite}: skipped, PostgreSQL server binaries (initdb, pg_ctl) not found (pg_config --bindir, /usr/lib/postgresql/*/bin); install postgresql to run it`;
  if (process.env.CI) throw new Error(`${why.replace("skipped, ", "")}. CI must run this suite.`);
  console.warn(why);
  return false;
}
