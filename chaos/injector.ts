import type { KeyValueStore } from "../platform/kv/kv.port.ts";
import { systemClock, type Clock, type Random } from "../platform/clock.ts";
import { validateChaosConfig, type ChaosConfig, type ChaosFieldError } from "./chaos.config.ts";
import { drawDecision, type FaultDecision } from "./fault-decision.ts";
import { mixSeed, mulberry32, seedFrom } from "../platform/prng.ts";

export type { CrashKind, FaultDecision } from "./fault-decision.ts";

/**
 * The chaos injector: holds the active experiment in the key-value store (so every replica sees
 * it, and it expires by itself), decides per request which fault to inject, and records what it
 * injected. Transport-specific application lives in `in-process.ts` and `http-middleware.ts`.
 */

export type InventoryRoute = "deduct" | "release" | "pay" | "expire" | "get" | "list" | "health";
export interface DecideContext {
  requestId?: string | undefined;
  orderId?: string | undefined;
}

export type ChaosEventType = "latency" | "crash_500" | "crash_503" | "reset" | "partial_failure" | "hang";
export const CHAOS_EVENT_TYPES: readonly ChaosEventType[] = ["latency", "crash_500", "crash_503", "reset", "partial_failure", "hang"];

/** One injected fault, as kept in the event log and passed to `onEvent` listeners. */
export interface ChaosEvent {
  time: string;
  type: ChaosEventType;
  route: InventoryRoute;
  request_id: string | null;
  order_id: string | null;
  /** e.g. the latency in ms, or how a partial failure lost its answer ("reset", "503"). */
  detail: string | null;
}

export interface ActiveChaos {
  /** Changes with every `configure`, so replicas notice a new experiment even with the same body. */
  id: string;
  config: ChaosConfig;
  set_at: string;
  expires_at: string;
  seconds_left: number;
}

/** `active: null`: the body switched every fault off (the seed UI's all-off form), and chaos is now off. */
export type ConfigureResult = { ok: true; active: ActiveChaos | null } | { ok: false; errors: ChaosFieldError[] };

export interface ChaosInjector {
  readonly clock: Clock;
  /**
   * Validates and stores an experiment for every replica, replacing any running one.
   * `await chaos.configure({ preset: "moderate", seed: 42 })` → `{ ok: true, active: { seconds_left: 900, … } }`;
   * a bad body → `{ ok: false, errors: [{ field: "crash_rate", … }] }` (map to a 400 problem);
   * the seed UI's all-off form `{ latency: false, crash_rate: 0, … }` → disables, `{ ok: true, active: null }`.
   */
  configure(input: unknown): Promise<ConfigureResult>;
  /**
   * The running experiment or null. Cached in-process for at most `cacheMs` so hot paths do not
   * read the store on every call. A store that fails or is slower than `storeTimeoutMs` counts as
   * "no experiment": chaos never outlives the means to switch it off. `{ fresh: true }` reads
   * through and lets store errors surface (admin views).
   * `await chaos.current()` → `{ config: { preset: "mild", … }, seconds_left: 812, … }`.
   */
  current(opts?: { fresh?: boolean }): Promise<ActiveChaos | null>;
  /** Ends the experiment on every replica: `await chaos.disable()`. */
  disable(): Promise<void>;
  /**
   * Which fault to inject into this request, or null; records every injected fault.
   * `await chaos.decide("deduct", { requestId, orderId })` → `{ latencyMs: 250, crash: 503 }`.
   * With `random`, the same seed and request sequence give the same decisions in this process;
   * with `every_nth`, the count is shared by every replica through the store.
   */
  decide(route: InventoryRoute, ctx?: DecideContext): Promise<FaultDecision | null>;
  /** Counts an injected fault, tells listeners, and appends it to the event log. */
  record(event: Omit<ChaosEvent, "time">): Promise<void>;
  /** Subscribe the cockatiel way (metrics live outside): `const sub = chaos.onEvent(e => counter.inc({ type: e.type })); sub.dispose()`. */
  onEvent(listener: (event: ChaosEvent) => void): { dispose(): void };
  /** Faults injected by this process since start, by type. */
  counts(): Record<ChaosEventType, number>;
  /** The newest `limit` events from the shared log, newest first: `await chaos.events(50)`. */
  events(limit?: number): Promise<ChaosEvent[]>;
}

export interface ChaosInjectorOptions {
  kv: KeyValueStore;
  clock?: Clock;
  /** Draws seeds for experiments that name none, and experiment ids. */
  random?: Random;
  /** Key prefix in the store; default `chaos:`. */
  prefix?: string;
  /** How long `current()` may serve a cached answer; default 1000 ms. */
  cacheMs?: number;
  /**
   * Longest wait for the store on a request's path (a reconnecting Redis client may queue
   * commands for seconds); default 250 ms. Measured on real timers: it guards infrastructure.
   */
  storeTimeoutMs?: number;
  /** Size of the shared event log; default 200. */
  eventLogSize?: number;
}

interface StoredExperiment {
  v: 1;
  id: string;
  config: ChaosConfig;
  set_at: number;
}

export function createChaosInjector(opts: ChaosInjectorOptions): ChaosInjector {
  const { kv } = opts;
  const clock = opts.clock ?? systemClock;
  const random = opts.random ?? Math.random;
  const prefix = opts.prefix ?? "chaos:";
  const cacheMs = opts.cacheMs ?? 1_000;
  const storeTimeoutMs = opts.storeTimeoutMs ?? 250;
  const logSize = opts.eventLogSize ?? 200;
  const configKey = `${prefix}config`;
  const eventsKey = `${prefix}events`;
  const nthKey = (id: string) => `${prefix}nth:${id}`;

  const listeners = new Set<(e: ChaosEvent) => void>();
  const counters = Object.fromEntries(CHAOS_EVENT_TYPES.map((t) => [t, 0])) as Record<ChaosEventType, number>;

  // What `current()` last saw, with the local instant it expires; `readAt` bounds the cache age.
  let cache: { stored: StoredExperiment | null; expiresAt: number; readAt: number } | null = null;
  let inflight: Promise<void> | null = null;
  // The per-process stream of the `random` pattern, reseeded whenever the experiment changes.
  let stream: { id: string; next: Random } | null = null;
  // Decisions draw in call order even when some wait on the store and others hit the cache.
  let tail: Promise<unknown> = Promise.resolve();
  let configured = 0;

  const view = (s: StoredExperiment, expiresAt: number): ActiveChaos => ({
    id: s.id,
    config: s.config,
    set_at: new Date(s.set_at).toISOString(),
    expires_at: new Date(expiresAt).toISOString(),
    seconds_left: Math.max(0, Math.ceil((expiresAt - clock.now()) / 1000)),
  });

  const bounded = <T>(p: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`key-value store slower than ${storeTimeoutMs} ms`)), storeTimeoutMs);
      p.then(
        (v) => (clearTimeout(timer), resolve(v)),
        (e) => (clearTimeout(timer), reject(e)),
      );
    });

  const read = async (): Promise<{ stored: StoredExperiment | null; expiresAt: number; readAt: number }> => {
    const readAt = clock.now();
    const raw = await kv.get(configKey);
    let stored: StoredExperiment | null = null;
    if (raw) {
      try {
        const parsed = JSON.parse(raw) as StoredExperiment;
        if (parsed?.v === 1 && parsed.config) stored = parsed;
      } catch {
        stored = null; // a foreign or corrupt value means no experiment, never a crash of the caller
      }
    }
    if (!stored) return { stored: null, expiresAt: 0, readAt };
    const left = await kv.ttlMs(configKey);
    return { stored, expiresAt: readAt + (left ?? stored.config.ttl_s * 1000), readAt };
  };

  const refresh = async (): Promise<void> => {
    try {
      cache = await bounded(read());
    } catch {
      cache = { stored: null, expiresAt: 0, readAt: clock.now() };
    }
  };

  const current = async (o: { fresh?: boolean } = {}): Promise<ActiveChaos | null> => {
    if (o.fresh) cache = await read();
    else if (!cache || clock.now() - cache.readAt >= cacheMs) {
      inflight ??= refresh().finally(() => {
        inflight = null;
      });
      await inflight;
    }
    const c = cache;
    if (!c?.stored || c.expiresAt <= clock.now()) return null;
    return view(c.stored, c.expiresAt);
  };

  const emit = async (event: Omit<ChaosEvent, "time">): Promise<void> => {
    const full: ChaosEvent = { time: new Date(clock.now()).toISOString(), ...event };
    counters[full.type]++;
    for (const l of listeners) {
      try {
        l(full);
      } catch {
        // a broken listener (metrics) must not turn an injected fault into a different one
      }
    }
    try {
      await bounded(kv.pushCapped(eventsKey, JSON.stringify(full), logSize));
    } catch {
      // the log is best effort; the counters above already saw the event
    }
  };

  const recordDecision = async (route: InventoryRoute, ctx: DecideContext, d: FaultDecision) => {
    const base = { route, request_id: ctx.requestId ?? null, order_id: ctx.orderId ?? null };
    if (d.latencyMs > 0) await emit({ ...base, type: "latency", detail: `${d.latencyMs} ms` });
    if (d.hang) await emit({ ...base, type: "hang", detail: `up to ${d.hangMs} ms` });
    if (d.crash !== undefined) {
      await emit({ ...base, type: d.crash === "reset" ? "reset" : d.crash === 500 ? "crash_500" : "crash_503", detail: null });
    }
    if (d.partial !== undefined) await emit({ ...base, type: "partial_failure", detail: `answer lost as ${d.partial}` });
  };

  const decide = async (route: InventoryRoute, ctx: DecideContext = {}): Promise<FaultDecision | null> => {
    const lookup = current();
    const step = tail.then(async () => {
      const active = await lookup;
      if (!active) return { active: null, decision: null };
      const { config, id } = active;
      if (config.routes === "deduct" && route !== "deduct") return { active: null, decision: null };
      if (config.pattern === "every_nth") return { active, decision: null };
      if (stream?.id !== id) stream = { id, next: mulberry32(config.seed) };
      return { active, decision: drawDecision(config, stream.next, false) };
    });
    tail = step.catch(() => undefined);
    const { active, decision: randomDecision } = await step;
    if (!active) return null;

    let decision = randomDecision;
    if (active.config.pattern === "every_nth") {
      let count: number;
      try {
        count = await bounded(kv.incr(nthKey(active.id), active.seconds_left * 1000));
      } catch {
        return null; // without the shared counter the pattern cannot hold; inject nothing rather than guess
      }
      const n = active.config.n ?? 1;
      if (count % n !== 0) return null;
      decision = drawDecision(active.config, mulberry32(mixSeed(active.config.seed, count / n)), true);
    }
    if (decision) await recordDecision(route, ctx, decision);
    return decision;
  };

  const disable = async () => {
    await kv.del(configKey);
    cache = { stored: null, expiresAt: 0, readAt: clock.now() };
    stream = null;
  };

  return {
    clock,
    async configure(input) {
      const result = validateChaosConfig(input, { defaultSeed: seedFrom(random) });
      if (!result.ok) return result;
      if (result.config === null) {
        await disable();
        return { ok: true, active: null };
      }
      const now = clock.now();
      const stored: StoredExperiment = {
        v: 1,
        // Unique per experiment so a replica reseeds and recounts even for an identical body.
        id: `${now.toString(36)}-${seedFrom(random).toString(36)}-${++configured}`,
        config: result.config,
        set_at: now,
      };
      const ttlMs = result.config.ttl_s * 1000;
      await kv.set(configKey, JSON.stringify(stored), { ttlMs });
      cache = { stored, expiresAt: now + ttlMs, readAt: now };
      return { ok: true, active: view(stored, now + ttlMs) };
    },
    current,
    disable,
    decide,
    record: emit,
    onEvent(listener) {
      listeners.add(listener);
      return { dispose: () => void listeners.delete(listener) };
    },
    counts: () => ({ ...counters }),
    async events(limit = 50) {
      const raw = await kv.listRecent(eventsKey, Math.max(0, Math.min(limit, logSize)));
      const out: ChaosEvent[] = [];
      for (const r of raw) {
        try {
          out.push(JSON.parse(r) as ChaosEvent);
        } catch {
          // skip an entry someone else wrote under our key
        }
      }
      return out;
    },
  };
}
