import type { PresetName } from "../../chaos/chaos.config.ts";
import type { Impairment } from "./netns.ts";

/**
 * The infrastructure scenarios: which inventory chaos rides along, and the schedule of faults the
 * run injects underneath. Start times are fractions of the planned load (orders ÷ rate), so a
 * bounded run in CI meets the same faults in the same order as a long one, only closer together.
 */

export const INFRA_SCENARIOS = ["infra", "infra-extreme"] as const;
export type InfraScenario = (typeof INFRA_SCENARIOS)[number];

export const isInfraScenario = (s: string): s is InfraScenario => (INFRA_SCENARIOS as readonly string[]).includes(s);

/** The inventory chaos preset a scenario runs with: `infra` none (every answer is the infrastructure's doing), `infra-extreme` mild. */
export function chaosPresetFor(scenario: string): PresetName | null {
  if (scenario === "none" || scenario === "infra") return null;
  if (scenario === "infra-extreme") return "mild";
  return scenario as PresetName;
}

export type FaultAction =
  | { kind: "kill-replica"; role: "orders" | "inventory"; replica: number; downS: number }
  | { kind: "postgres-fast-restart"; downS: number }
  | { kind: "postgres-kill"; downS: number }
  | { kind: "redis-kill"; downS: number }
  | { kind: "network"; steps: Array<{ impairment: Impairment; forS: number }> };

export interface PlannedFault {
  name: string;
  /** Fraction of the planned load at which it starts. */
  at: number;
  /** Not before the fault listed just above has been lifted, plus this many seconds (keeps `infra` one fault at a time). */
  afterPreviousS?: number;
  action: FaultAction;
}

const slow = (rateKbit: number): Impairment => ({ kind: "slow", delayMs: 300, jitterMs: 100, rateKbit });

/**
 * `infra`: one fault at a time. The network fault comes early, so the orders it queues are still
 * with the retry workers when an orders replica is killed right after it: the kill then takes
 * unacknowledged messages with it, for the other replica to take over.
 */
const INFRA: PlannedFault[] = [
  { name: "kill -9 inventory replica 1", at: 0.05, action: { kind: "kill-replica", role: "inventory", replica: 0, downS: 4 } },
  {
    name: "network orders ↔ inventory: loss, slow, cut, heal",
    at: 0.14,
    afterPreviousS: 1.5,
    action: {
      kind: "network",
      steps: [
        { impairment: { kind: "loss", percent: 15 }, forS: 5 },
        { impairment: slow(256), forS: 5 },
        { impairment: { kind: "cut" }, forS: 7 },
      ],
    },
  },
  // Shortly after the heal the retry workers drain what the partition queued: the kill meets them at it.
  { name: "kill -9 orders replica 1", at: 0.45, afterPreviousS: 1.5, action: { kind: "kill-replica", role: "orders", replica: 0, downS: 4 } },
  { name: "PostgreSQL fast shutdown, restart", at: 0.55, afterPreviousS: 1.5, action: { kind: "postgres-fast-restart", downS: 4 } },
  { name: "PostgreSQL kill -9 of the postmaster, restart", at: 0.65, afterPreviousS: 1.5, action: { kind: "postgres-kill", downS: 4 } },
  { name: "Redis kill -9, restart", at: 0.75, afterPreviousS: 1.5, action: { kind: "redis-kill", downS: 3 } },
];

/** `infra-extreme`: the same kinds, overlapping, longer, with mild inventory chaos on top. */
const INFRA_EXTREME: PlannedFault[] = [
  {
    name: "network orders ↔ inventory: loss, slow, cut, heal",
    at: 0.05,
    action: {
      kind: "network",
      steps: [
        { impairment: { kind: "loss", percent: 25 }, forS: 6 },
        { impairment: slow(96), forS: 6 },
        { impairment: { kind: "cut" }, forS: 12 },
      ],
    },
  },
  { name: "kill -9 inventory replica 1", at: 0.1, action: { kind: "kill-replica", role: "inventory", replica: 0, downS: 6 } },
  // During the slow phase, when the retry workers' calls take longest: the kill takes unacknowledged messages with it.
  { name: "kill -9 orders replica 1", at: 0.2, action: { kind: "kill-replica", role: "orders", replica: 0, downS: 6 } },
  { name: "PostgreSQL fast shutdown, restart", at: 0.32, action: { kind: "postgres-fast-restart", downS: 5 } },
  { name: "Redis kill -9, restart", at: 0.36, action: { kind: "redis-kill", downS: 5 } },
  { name: "kill -9 inventory replica 2", at: 0.55, action: { kind: "kill-replica", role: "inventory", replica: 1, downS: 5 } },
  { name: "PostgreSQL kill -9 of the postmaster, restart", at: 0.57, action: { kind: "postgres-kill", downS: 5 } },
  { name: "kill -9 orders replica 2", at: 0.6, action: { kind: "kill-replica", role: "orders", replica: 1, downS: 5 } },
  {
    name: "network orders ↔ inventory: cut during a Redis kill",
    at: 0.78,
    action: { kind: "network", steps: [{ impairment: { kind: "cut" }, forS: 8 }] },
  },
  { name: "Redis kill -9 during the cut, restart", at: 0.8, action: { kind: "redis-kill", downS: 4 } },
];

/** The schedule for a scenario with `replicas` per role; kills of replicas that do not exist are left out. */
export function faultSchedule(scenario: string, replicas: number): PlannedFault[] {
  const all = scenario === "infra" ? INFRA : scenario === "infra-extreme" ? INFRA_EXTREME : [];
  return all.filter((f) => f.action.kind !== "kill-replica" || f.action.replica < replicas);
}

/** A fault's line in the usage text and docs: `kill -9 orders replica 1 at 45 % of the load`. */
export function describeSchedule(scenario: string, replicas: number): string[] {
  return faultSchedule(scenario, replicas).map(
    (f) => `${f.name} at ${Math.round(f.at * 100)} % of the load${f.afterPreviousS !== undefined ? ` (after the previous one, +${f.afterPreviousS} s)` : ""}`,
  );
}
