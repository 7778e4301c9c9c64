import { readFileSync } from "node:fs";
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
