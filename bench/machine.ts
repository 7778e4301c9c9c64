import { readdirSync, readFileSync } from "node:fs";
import { cpus, totalmem, release } from "node:os";

export interface MachineFacts {
  cpuModel: string;
  cores: number;
  memoryGb: number;
  kernel: string;
  bun: string;
  /** 1-minute load average when the run started: a busy machine makes every number smaller. */
  loadAverage: number;
}

export function machineFacts(): MachineFacts {
  let loadAverage = 0;
  try {
    loadAverage = Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
  } catch {
    // Not Linux: leave it out.
  }
  return {
    cpuModel: cpus()[0]?.model ?? "unknown",
    cores: navigator.hardwareConcurrency || cpus().length,
    memoryGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    bun: Bun.version,
    loadAverage,
  };
}

/** Cumulative busy and total CPU ticks of the whole machine (all cores), from /proc/stat. */
export function cpuTicks(): { busy: number; total: number } {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** Machine CPU use between two samples, in % of all cores together (100 = every core busy). */
export function busyPct(a: { busy: number; total: number }, b: { busy: number; total: number }): number {
  const total = b.total - a.total;
  return total > 0 ? Math.round(((b.busy - a.busy) / total) * 1000) / 10 : 0;
}

/**
 * CPU milliseconds per unit of work between two readings of a CPU-seconds counter, to 0.001 ms;
 * null when a reading is missing or nothing was done.
 */
export function cpuMsPer(before: number | null, after: number | null, count: number): number | null {
  if (before === null || after === null || !(count > 0)) return null;
  return Math.round(((after - before) * 1e6) / count) / 1000;
}

let clockTicks: number | null = null;

/** Kernel clock ticks per second, the unit of /proc's CPU times (100 on nearly every Linux). */
function ticksPerSecond(): number {
  if (clockTicks === null) {
    let n = NaN;
    try {
      const out = Bun.spawnSync(["getconf", "CLK_TCK"], { stdout: "pipe", stderr: "ignore" });
      if (out.success) n = Number(out.stdout.toString().trim());
    } catch {
      // No getconf: keep the usual value.
    }
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/**
 * CPU seconds the PostgreSQL server on this machine has used so far: every live `postgres`
 * process, plus what each postmaster has collected from backends that already exited (so a
 * client that disconnects inside the window still counts). Sampled twice, the difference is the
 * server's work over the window, whatever the number of connections. Null where /proc cannot be
 * read; the caller decides whether the database it drives is this machine's.
 */
export function postgresCpuSeconds(): number | null {
  let entries: string[];
  try {
    entries = readdirSync("/proc").filter((e) => /^\d+$/.test(e));
  } catch {
    return null;
  }
  const procs = new Map<string, { ppid: string; own: number; children: number }>();
  for (const pid of entries) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue; // exited between the listing and the read
    }
    const close = stat.lastIndexOf(")");
    if (stat.slice(stat.indexOf("(") + 1, close) !== "postgres") continue;
    // Fields after "(comm)": state ppid … utime(14) stime(15) cutime(16) cstime(17), 1-based.
    const f = stat.slice(close + 2).split(" ");
    procs.set(pid, { ppid: f[1]!, own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) });
  }
  if (procs.size === 0) return null;
  let ticks = 0;
  for (const p of procs.values()) ticks += p.own + (procs.has(p.ppid) ? 0 : p.children);
  return ticks / ticksPerSecond();
}
