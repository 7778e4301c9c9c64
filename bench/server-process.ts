import { openSync, closeSync, readFileSync } from "node:fs";
import { resolve } from "node:path";

/** The repository root, where `src/main.ts` lives. */
export const REPO_ROOT = resolve(import.meta.dir, "..");

/**
 * One Valerix process, started the way an operator starts it (`bun src/main.ts` with environment
 * variables), so the numbers include everything the real executable does at run time.
 */
export interface RoleProcess {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  readonly logFile: string;
  /** Peak resident set size so far (VmHWM), in MB. */
  peakRssMb(): number;
  /** User + system CPU time so far, in seconds. */
  cpuSeconds(): number;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** A free loopback port, chosen by the kernel. */
export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

function readStatusKb(pid: number, field: string): number {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

function readCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which may itself hold spaces and parentheses.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

export interface StartOptions {
  name: string;
  env: Record<string, string>;
  logFile: string;
  /** How long to wait for /health/ready (PGlite's first start runs initdb). */
  readyTimeoutMs?: number;
  /** Flags for the bun runtime itself, e.g. `--cpu-prof-md` to profile the server. */
  bunFlags?: string[];
  /** The checkout to run (`REPO_ROOT`, or another commit's tree for a before/after run). */
  root?: string;
}

export async function startRole(opts: StartOptions): Promise<RoleProcess> {
  const port = freePort();
  const fd = openSync(opts.logFile, "a");
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/",
    HOST: "127.0.0.1",
    PORT: String(port),
    ...opts.env,
  };
  const child = Bun.spawn([process.execPath, ...(opts.bunFlags ?? []), "src/main.ts"], { cwd: opts.root ?? REPO_ROOT, env, stdin: "ignore", stdout: fd, stderr: fd });
  closeSync(fd);
  const url = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + (opts.readyTimeoutMs ?? 90_000);
  let last = "";
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${opts.name} exited during start-up (code ${child.exitCode ?? child.signalCode}); see ${opts.logFile}`);
    }
    try {
      const res = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(2_000) });
      last = `${res.status} ${await res.text()}`;
      if (res.ok) break;
    } catch (err) {
      last = (err as Error).message;
    }
    if (performance.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${opts.name} not ready after ${opts.readyTimeoutMs ?? 90_000} ms: ${last.slice(0, 300)}`);
    }
    await Bun.sleep(100);
  }
  const pid = child.pid;
  let stopped = false;
  return {
    name: opts.name,
    pid,
    port,
    url,
    logFile: opts.logFile,
    peakRssMb: () => Math.round((readStatusKb(pid, "VmHWM") / 1024) * 10) / 10,
    cpuSeconds: () => readCpuSeconds(pid),
    async stop(graceMs = 10_000) {
      if (stopped) return;
      stopped = true;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await child.exited;
      clearTimeout(timer);
    },
  };
}

/** POST a JSON body and return the parsed answer; throws on any status outside `expect`. */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}, expect: number[] = [200, 201]): Promise<unknown> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!expect.includes(res.status)) throw new Error(`POST ${url} answered ${res.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}
