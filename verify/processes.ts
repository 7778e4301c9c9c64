import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

/**
 * Starts Valerix roles as real child processes — the same `bun src/main.ts` a deployment runs —
 * each on a port the OS picks (PORT=0; the port is read from its start-up log line, so there is no
 * window in which another process can take it). Output goes to log files kept with the report.
 */

export const REPO_ROOT = resolve(import.meta.dir, "..");

export interface SpawnedRole {
  role: string;
  url: string;
  port: number;
  pid: number;
  logs: { out: string; err: string };
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves with the exit code (null when killed). */
  stop(graceMs?: number): Promise<number | null>;
  readonly exited: boolean;
}

export interface SpawnOptions {
  role: "all" | "orders" | "inventory";
  env: Record<string, string>;
  logDir: string;
  readyTimeoutMs?: number;
  /** A fixed port instead of one the OS picks (a replica behind a balancer restarts on its own port). */
  port?: number;
  /** Where it listens (default 127.0.0.1) and where the runner reaches it (default: the same). */
  host?: string;
  /** Run inside this command, e.g. `["ip", "netns", "exec", "vx1"]` (it must exec the role in place). */
  wrap?: string[];
  /** Log file name stem (default: the role). */
  name?: string;
}

const live = new Set<Subprocess>();
const cleanups = new Set<() => void>();

/** Keeps a child the runner started elsewhere (a balancer, a Redis) on the list killed at exit. */
export function trackChild(proc: Subprocess): void {
  live.add(proc);
  void proc.exited.then(() => live.delete(proc));
}

/** A synchronous clean-up run by `killAllChildren` (a daemonized server, a network namespace); returns its remover. */
export function atExit(fn: () => void): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/** Kills every child still running and runs the registered clean-ups; safe to call from an exit handler (synchronous). */
export function killAllChildren(): void {
  for (const p of live) {
    try {
      p.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  live.clear();
  for (const fn of [...cleanups]) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      // best effort at exit
    }
  }
}

/** The environment a child gets: ours minus anything that would point it at other services. */
export function childEnv(extra: Record<string, string>): Record<string, string> {
  const drop = new Set(["DATABASE_URL", "REDIS_URL", "REDIS_TOKEN", "INVENTORY_URL", "ADMIN_TOKEN", "VALERIX_ROLE", "VALERIX_DATA_DIR", "PORT", "HOST"]);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !drop.has(k)) out[k] = v;
  return { ...out, ...extra };
}

function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** Finds the port in the role's `valerix listening` JSON log line. */
export function listeningPort(logText: string): number | null {
  for (const line of logText.split("\n")) {
    if (!line.includes("valerix listening")) continue;
    try {
      const port = (JSON.parse(line) as { port?: unknown }).port;
      if (typeof port === "number" && port > 0) return port;
    } catch {
      // a partial line: the next poll reads it whole
    }
  }
  return null;
}

/** `await spawnRole({ role: "inventory", env: { DATABASE_URL }, logDir })` → `{ url: "http://127.0.0.1:41234", … }` once ready. */
export async function spawnRole(o: SpawnOptions): Promise<SpawnedRole> {
  const stem = o.name ?? o.role;
  const logs = { out: join(o.logDir, `${stem}.out.log`), err: join(o.logDir, `${stem}.err.log`) };
  const proc = Bun.spawn([...(o.wrap ?? []), process.execPath, join(REPO_ROOT, "src", "main.ts")], {
    cwd: REPO_ROOT,
    env: childEnv({ ...o.env, VALERIX_ROLE: o.role, PORT: String(o.port ?? 0), HOST: o.host ?? "127.0.0.1", LOG_LEVEL: o.env.LOG_LEVEL ?? "info" }),
    stdout: Bun.file(logs.out),
    stderr: Bun.file(logs.err),
    stdin: "ignore",
  });
  live.add(proc);
  let exited = false;
  void proc.exited.then(() => {
    exited = true;
    live.delete(proc);
  });

  const deadline = Date.now() + (o.readyTimeoutMs ?? 90_000);
  const fail = (why: string): never => {
    try {
      proc.kill("SIGKILL");
    } catch {
      // already gone
    }
    throw new Error(`${o.role} role ${why}\n--- stdout (tail)\n${tail(logs.out)}\n--- stderr (tail)\n${tail(logs.err)}`);
  };

  let port: number | null = null;
  while (port === null) {
    if (exited) fail(`exited with code ${proc.exitCode} before listening`);
    if (Date.now() > deadline) fail("did not start listening in time");
    if (existsSync(logs.out)) port = listeningPort(readFileSync(logs.out, "utf8"));
    if (port === null) await Bun.sleep(100);
  }
  const url = `http://${o.host ?? "127.0.0.1"}:${port}`;
  for (;;) {
    if (exited) fail(`exited with code ${proc.exitCode} before ready`);
    if (Date.now() > deadline) fail("listened but never became ready");
    try {
      const res = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel().catch(() => {});
      if (res.ok) break;
    } catch {
      // not yet
    }
    await Bun.sleep(150);
  }

  return {
    role: o.role,
    url,
    port,
    pid: proc.pid,
    logs,
    get exited() {
      return exited;
    },
    async stop(graceMs = 10_000) {
      if (exited) return proc.exitCode;
      proc.kill("SIGTERM");
      const done = await Promise.race([proc.exited.then(() => true), Bun.sleep(graceMs).then(() => false)]);
      if (!done) {
        proc.kill("SIGKILL");
        await proc.exited;
      }
      live.delete(proc);
      return proc.exitCode;
    },
  };
}
