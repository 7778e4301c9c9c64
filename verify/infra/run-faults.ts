import type { RunOptions } from "../options.ts";
import type { System } from "../system-under-test.ts";
import type { OrderRecord } from "../types.ts";
import type { InfraSystem } from "./deployment.ts";
import { runSchedule, summarizeFaults, type FaultRecord, type FaultSummary } from "./faults.ts";
import { faultSchedule } from "./scenarios.ts";

/** The run's side of the infrastructure faults: start the schedule with the load, finish it, report it. */

export interface InfraReport {
  topology: string;
  faults: FaultSummary[];
  /** Replicas that exited without being killed (each was restarted); empty when none did. */
  crashes: Array<{ replica: string; exit_code: number | null; at_ms: number; restart: string }>;
}

export const asInfra = (sys: System | null): InfraSystem | null => (sys && "faults" in sys ? (sys as InfraSystem) : null);

/** Starts the scenario's schedule as the load starts; null when the system is not an infra deployment or the scenario has no faults. */
export function startFaults(
  sys: System,
  o: RunOptions,
  clock: { elapsed: () => number; say: (line: string) => void; signal?: AbortSignal },
): { records: FaultRecord[]; done: Promise<void> } | null {
  const infra = asInfra(sys);
  const schedule = faultSchedule(o.scenario, o.replicas);
  if (!infra || schedule.length === 0) return null;
  const plannedLoadMs = o.rate > 0 ? (o.orders / o.rate) * 1000 : 60_000;
  return runSchedule(schedule, infra.faults, { elapsed: clock.elapsed, loadStartMs: clock.elapsed(), plannedLoadMs, say: clock.say, signal: clock.signal });
}

/**
 * After settling: notes what is still unacknowledged for each killed orders replica (its messages
 * must have been taken over), and joins the faults with the clients' answers.
 */
export async function finishFaults(sys: System, records: readonly OrderRecord[], faults: FaultRecord[], elapsed: () => number): Promise<InfraReport | null> {
  const infra = asInfra(sys);
  if (!infra) return null;
  const pending = await infra.pendingByConsumer();
  for (const f of faults) {
    const m = f.steps[0] ? /kill -9 orders replica \d+ \(pid (\d+)\), holding (\d+)/.exec(f.steps[0].what) : null;
    if (!m) continue;
    const left = pending ? Object.entries(pending).filter(([c]) => c.endsWith(`-${m[1]}`)).reduce((n, [, v]) => n + v, 0) : null;
    f.notes.push(
      left === null
        ? "the retry queue's pending list could not be read after settling"
        : `unacknowledged retry messages of the killed process after settling: ${left} (held ${m[2]} at the kill; the others took them over)`,
    );
  }
  const offset = elapsed() - performance.now();
  return {
    topology: infra.environment.topology ?? "",
    faults: summarizeFaults(records, faults),
    crashes: infra.crashes.map((c) => ({ replica: c.replica, exit_code: c.exit_code, at_ms: Math.round(c.noticed_at + offset), restart: c.restart })),
  };
}
