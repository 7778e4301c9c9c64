import type { OrderRecord } from "../types.ts";
import type { FaultAction, PlannedFault } from "./scenarios.ts";
import type { Impairment } from "./netns.ts";

/**
 * Runs a fault schedule beside the load and keeps what happened: when each fault began and ended
 * (on the run's clock), what exactly was done, or why it was skipped. Afterwards the client side of
 * each fault is read from the order records: every request sent while it lasted, by answer.
 */

/** What the schedule acts on; the deployment provides it. */
export interface FaultTargets {
  /** Kills a replica; `onKill` is called at the moment of the kill (it may first wait for the replica to hold work). */
  killReplica(role: "orders" | "inventory", index: number, onKill?: () => void): Promise<string>;
  restartReplica(role: "orders" | "inventory", index: number): Promise<string>;
  postgresFastStop(): Promise<string>;
  postgresKill(): Promise<string>;
  postgresStart(): Promise<string>;
  redisKill(): Promise<string>;
  redisStart(): Promise<string>;
  /** Null when the network faults cannot run here; the string says why. */
  network: { impair(i: Impairment): void; heal(): void; describe(i: Impairment): string } | string;
}

export interface FaultStep {
  what: string;
  at_ms: number;
}

export interface FaultRecord {
  name: string;
  kind: FaultAction["kind"];
  planned_ms: number;
  /** When it began and when it was lifted (restart done, link healed); null if skipped. */
  start_ms: number | null;
  end_ms: number | null;
  skipped: string | null;
  steps: FaultStep[];
  /** Set by the deployment: e.g. unacknowledged retry messages the killed replica held. */
  notes: string[];
  error: string | null;
}

export interface FaultClock {
  elapsed: () => number;
  /** When the load started, on the same clock, and how long it is planned to last. */
  loadStartMs: number;
  plannedLoadMs: number;
  say?: (line: string) => void;
  signal?: AbortSignal;
  /** Injected in tests, with `elapsed`, so a schedule runs without real waiting. */
  sleep?: (ms: number) => Promise<void>;
}

const sleepUntil = async (clock: FaultClock, at: number) => {
  const sleep = clock.sleep ?? ((ms: number) => Bun.sleep(ms));
  while (clock.elapsed() < at && !clock.signal?.aborted) await sleep(Math.min(200, Math.max(1, at - clock.elapsed())));
};

async function perform(f: PlannedFault, rec: FaultRecord, t: FaultTargets, clock: FaultClock): Promise<void> {
  const step = (what: string) => {
    rec.steps.push({ what, at_ms: Math.round(clock.elapsed()) });
    clock.say?.(`fault: ${what}`);
  };
  const down = async (s: number) => sleepUntil(clock, clock.elapsed() + s * 1000);
  const a = f.action;
  switch (a.kind) {
    case "kill-replica":
      rec.start_ms = Math.round(clock.elapsed());
      step(await t.killReplica(a.role, a.replica, () => (rec.start_ms = Math.round(clock.elapsed()))));
      await down(a.downS);
      step(await t.restartReplica(a.role, a.replica));
      break;
    case "postgres-fast-restart":
      rec.start_ms = Math.round(clock.elapsed());
      step(await t.postgresFastStop());
      await down(a.downS);
      step(await t.postgresStart());
      break;
    case "postgres-kill":
      rec.start_ms = Math.round(clock.elapsed());
      step(await t.postgresKill());
      await down(a.downS);
      step(await t.postgresStart());
      break;
    case "redis-kill":
      rec.start_ms = Math.round(clock.elapsed());
      step(await t.redisKill());
      await down(a.downS);
      step(await t.redisStart());
      break;
    case "network": {
      const net = t.network;
      if (typeof net === "string") {
        rec.skipped = net;
        clock.say?.(`fault skipped: ${f.name}: ${net}`);
        return;
      }
      rec.start_ms = Math.round(clock.elapsed());
      try {
        for (const s of a.steps) {
          net.impair(s.impairment);
          step(net.describe(s.impairment));
          await down(s.forS);
          if (clock.signal?.aborted) break;
        }
      } finally {
        net.heal();
        step("network healed");
      }
      break;
    }
  }
  rec.end_ms = Math.round(clock.elapsed());
}

/**
 * Starts the schedule; `done` resolves when every fault has been lifted (a fault whose own step
 * failed is recorded with its error, and the rest still run).
 */
export function runSchedule(schedule: readonly PlannedFault[], targets: FaultTargets, clock: FaultClock): { records: FaultRecord[]; done: Promise<void> } {
  const records: FaultRecord[] = schedule.map((f) => ({
    name: f.name,
    kind: f.action.kind,
    planned_ms: Math.round(clock.loadStartMs + f.at * clock.plannedLoadMs),
    start_ms: null,
    end_ms: null,
    skipped: null,
    steps: [],
    notes: [],
    error: null,
  }));
  const finished: Array<Promise<void>> = [];
  const done = Promise.all(
    schedule.map(async (f, i) => {
      const rec = records[i]!;
      await sleepUntil(clock, rec.planned_ms);
      if (f.afterPreviousS !== undefined && i > 0) {
        await finished[i - 1];
        await sleepUntil(clock, clock.elapsed() + f.afterPreviousS * 1000);
      }
      if (clock.signal?.aborted) {
        rec.skipped = "the run was interrupted";
        return;
      }
      try {
        await perform(f, rec, targets, clock);
      } catch (err) {
        rec.error = (err as Error).message.split("\n")[0]!;
        rec.end_ms ??= Math.round(clock.elapsed());
        clock.say?.(`fault ${f.name} failed: ${rec.error}`);
      }
    }).map((p) => (finished.push(p), p)),
  ).then(() => {});
  return { records, done };
}

export interface FaultSummary extends FaultRecord {
  /** Requests sent while the fault lasted, by status (`0` = no answer), and how many 503s carried Retry-After. */
  requests_during: Record<string, number>;
  retry_after_503: number;
  /** Logical orders first sent while it lasted, by their first definitive answer (`none` = none during the load). */
  orders_during: Record<string, number>;
  /** From the fault's end to the answer of the first request sent after it that was accepted (201 or 202): orders taken again; null if none came. */
  accepted_after_ms: number | null;
  /**
   * From the fault's end to the answer of the first request sent after it that was confirmed (201):
   * the whole path — balancer, orders, inventory, database — placing orders at once again (a
   * circuit breaker opened by the fault keeps answering 202 until its probe); null if none came.
   */
  recovered_after_ms: number | null;
}

const inc = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

/** Joins the fault records with the clients' view: `summarizeFaults(records, faults)`. */
export function summarizeFaults(orders: readonly OrderRecord[], faults: readonly FaultRecord[]): FaultSummary[] {
  const attempts = orders.flatMap((o) => o.attempts).sort((a, b) => a.at_ms - b.at_ms);
  return faults.map((f) => {
    const requests_during: Record<string, number> = {};
    const orders_during: Record<string, number> = {};
    let retry_after_503 = 0;
    let recovered: number | null = null;
    let accepted: number | null = null;
    if (f.start_ms !== null && f.end_ms !== null) {
      for (const a of attempts) {
        if (a.at_ms >= f.start_ms && a.at_ms < f.end_ms) {
          inc(requests_during, String(a.status));
          if (a.status === 503 && a.retry_after_s !== undefined) retry_after_503++;
        } else if (a.at_ms >= f.end_ms) {
          if (recovered === null && a.status === 201) recovered = a.at_ms + a.duration_ms - f.end_ms;
          if (accepted === null && (a.status === 201 || a.status === 202)) accepted = a.at_ms + a.duration_ms - f.end_ms;
        }
      }
      for (const o of orders) if (o.sent_ms >= f.start_ms && o.sent_ms < f.end_ms) inc(orders_during, o.answers[0] ? String(o.answers[0].status) : "none");
    }
    return { ...f, requests_during, retry_after_503, orders_during, accepted_after_ms: accepted, recovered_after_ms: recovered };
  });
}
