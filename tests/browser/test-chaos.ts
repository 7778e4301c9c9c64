import { systemClock, type Clock } from "../../src/platform/clock.ts";
import { InventoryUnavailableError, type InventoryPort } from "../../modules/inventory/index.ts";
import type { ChaosActive, ChaosControl, ChaosEventView, ChaosExperiment, ChaosPresetName, ChaosRequest } from "../../views/index.ts";

/**
 * A small, real fault injector for the page tests, standing in for the project's chaos module
 * until the two are composed together. It wraps the inventory port the order service calls (the
 * in-process edge), so the faults are real: an order under latency chaos really takes that long,
 * and lands in the latency window like any other.
 *
 * Only `deduct` is affected, so the catalog pages stay fast while orders slow down.
 * Presets here are fixed latencies (no crashes) to keep order outcomes predictable in tests.
 */
export const TEST_PRESETS: Record<ChaosPresetName, ChaosExperiment> = {
  mild: { latency: { minMs: 150, maxMs: 250, probability: 1 }, pattern: { kind: "random", seed: 1 }, durationS: 300 },
  moderate: { latency: { minMs: 700, maxMs: 800, probability: 1 }, pattern: { kind: "random", seed: 1 }, durationS: 300 },
  extreme: { latency: { minMs: 1500, maxMs: 1500, probability: 1 }, pattern: { kind: "random", seed: 1 }, durationS: 300 },
};

export class TestChaosError extends Error {
  readonly code = "invalid_chaos_config";
}

/** mulberry32: small, seeded, good enough to pick faults reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TestChaos {
  port: InventoryPort;
  control: ChaosControl;
}

export function createTestChaos(inner: InventoryPort, clock: Clock = systemClock): TestChaos {
  let active: { label: string; exp: ChaosExperiment; expiresAt: number; random: () => number; calls: number } | null = null;
  const events: ChaosEventView[] = [];

  const live = () => {
    if (active && clock.now() >= active.expiresAt) active = null;
    return active;
  };
  const log = (fault: string, detail: string) => {
    events.unshift({ at: new Date(clock.now()).toISOString(), fault, detail });
    events.length = Math.min(events.length, 200);
  };
  const view = (a: NonNullable<typeof active>): ChaosActive => ({
    label: a.label,
    config: a.exp as unknown as Record<string, unknown>,
    secondsLeft: Math.max(0, Math.ceil((a.expiresAt - clock.now()) / 1000)),
  });
  /** Whether a fault with this probability hits the current call. */
  const hits = (a: NonNullable<typeof active>, probability: number) =>
    a.exp.pattern.kind === "every-nth" ? probability > 0 && a.calls % a.exp.pattern.n === 0 : a.random() < probability;

  const validate = (exp: ChaosExperiment) => {
    const p = [exp.latency?.probability, exp.crash?.probability, exp.partial?.probability];
    if (p.some((x) => x !== undefined && !(x >= 0 && x <= 1))) throw new TestChaosError("probabilities must be between 0 and 1");
    if (!(exp.durationS >= 1 && exp.durationS <= 86_400)) throw new TestChaosError("duration must be 1 s to 24 h");
    if (exp.latency && !(exp.latency.minMs >= 0 && exp.latency.maxMs >= exp.latency.minMs)) throw new TestChaosError("latency range is invalid");
  };

  const control: ChaosControl = {
    async current() {
      const a = live();
      return a ? view(a) : null;
    },
    async configure(req: ChaosRequest) {
      const [label, exp] = "preset" in req ? [req.preset, TEST_PRESETS[req.preset]] : ["custom", req.experiment];
      if (!exp) throw new TestChaosError(`unknown preset`);
      validate(exp);
      const seed = exp.pattern.kind === "random" ? (exp.pattern.seed ?? Math.floor(Math.random() * 2 ** 32)) : 0;
      active = { label, exp, expiresAt: clock.now() + exp.durationS * 1000, random: prng(seed), calls: 0 };
      return view(active);
    },
    async disable() {
      active = null;
    },
    async events(limit: number) {
      return events.slice(0, limit);
    },
  };

  const port: InventoryPort = {
    ...inner,
    async deduct(req, ctx) {
      const a = live();
      if (!a) return inner.deduct(req, ctx);
      a.calls++;
      const { latency, crash, partial } = a.exp;
      if (latency && hits(a, latency.probability)) {
        const delay = Math.round(latency.minMs + (latency.maxMs - latency.minMs) * a.random());
        log("latency", `+${delay} ms · order ${req.order_id.slice(0, 8)}`);
        await clock.sleep(delay, ctx?.signal);
      }
      if (crash && hits(a, crash.probability)) {
        log("crash", `${crash.mode} · order ${req.order_id.slice(0, 8)}`);
        throw new InventoryUnavailableError(`chaos: ${crash.mode}`, undefined, crash.mode === "reset" ? "transport" : "server_error");
      }
      if (partial && hits(a, partial.probability)) {
        await inner.deduct(req, ctx);
        log("partial", `committed, answer lost · order ${req.order_id.slice(0, 8)}`);
        throw new InventoryUnavailableError("chaos: response lost after commit", undefined, "transport");
      }
      return inner.deduct(req, ctx);
    },
  };
  return { port, control };
}
