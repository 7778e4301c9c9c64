import { describe, expect, test } from "bun:test";
import { createMemoryStore } from "../platform/kv/memory.ts";
import type { KeyValueStore } from "../platform/kv/kv.port.ts";
import { createChaosInjector, type ChaosEvent, type FaultDecision, type InventoryRoute } from "./injector.ts";
import { ManualClock } from "../tests/support/manual-clock.ts";

const mixed = { latency_min_ms: 10, latency_max_ms: 500, latency_rate: 0.4, crash_rate: 0.3, partial_failure_rate: 0.2, hang_rate: 0.05 };

async function started(body: unknown, opts: { kv?: KeyValueStore; clock?: ManualClock } = {}) {
  const clock = opts.clock ?? new ManualClock();
  const kv = opts.kv ?? createMemoryStore({ clock });
  const chaos = createChaosInjector({ kv, clock });
  const r = await chaos.configure(body);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  if (!r.active) throw new Error("the body switched chaos off");
  return { chaos, kv, clock, active: r.active };
}

async function sequence(chaos: ReturnType<typeof createChaosInjector>, count: number, route: InventoryRoute = "deduct") {
  const out: (FaultDecision | null)[] = [];
  for (let i = 0; i < count; i++) out.push(await chaos.decide(route, { requestId: `r${i}` }));
  return out;
}

const kindOf = (d: FaultDecision | null) => (d === null ? "none" : d.hang ? "hang" : d.crash !== undefined ? `crash:${d.crash}` : d.partial !== undefined ? `partial:${d.partial}` : "latency");

describe("configure and current", () => {
  test("stores the experiment for every replica, with the time it has left", async () => {
    const { chaos, kv, clock, active } = await started({ preset: "mild", seed: 5 });
    expect(active.config.seed).toBe(5);
    expect(active.seconds_left).toBe(900);
    expect(await kv.ttlMs("chaos:config")).toBe(900_000);

    const replica = createChaosInjector({ kv, clock });
    const seen = await replica.current();
    expect(seen?.id).toBe(active.id);
    expect(seen?.config).toEqual(active.config);
    expect(await chaos.current()).toEqual(seen);
  });

  test("a bad body stores nothing and reports the fields", async () => {
    const clock = new ManualClock();
    const kv = createMemoryStore({ clock });
    const chaos = createChaosInjector({ kv, clock });
    const r = await chaos.configure({ crash_rate: 3 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]!.field).toBe("crash_rate");
    expect(await kv.get("chaos:config")).toBeNull();
    expect(await chaos.current()).toBeNull();
  });

  test("a seed is drawn from the injected random source when the body names none", async () => {
    const clock = new ManualClock();
    const chaos = createChaosInjector({ kv: createMemoryStore({ clock }), clock, random: () => 0.25 });
    const r = await chaos.configure({ crash_rate: 0.1 });
    expect(r.ok && r.active?.config.seed).toBe(2 ** 30);
  });

  test("the seed UI's all-off form stops the running experiment on every replica", async () => {
    const { chaos, kv, clock } = await started({ crash_rate: 1, crash_mode: 503 });
    const replica = createChaosInjector({ kv, clock });
    expect(await replica.current()).not.toBeNull();
    const r = await chaos.configure({ latency: false, latency_ms: 5000, crash_rate: 0, partial_failure_rate: 0 });
    expect(r).toEqual({ ok: true, active: null });
    expect(await kv.get("chaos:config")).toBeNull();
    expect(await chaos.current()).toBeNull();
    expect(await chaos.decide("deduct", { requestId: "after-off" })).toBeNull();
    await clock.advance(5_000); // past the replica's cache
    expect(await replica.current()).toBeNull();
  });

  test("expires by itself after ttl_s, on every replica", async () => {
    const { chaos, kv, clock } = await started({ crash_rate: 1, crash_mode: 503, ttl_s: 10 });
    const replica = createChaosInjector({ kv, clock });
    await clock.advance(9_500);
    expect((await replica.current())?.seconds_left).toBe(1);
    expect((await chaos.current())?.seconds_left).toBe(1);
    expect(await chaos.decide("deduct")).toEqual({ latencyMs: 0, crash: 503 });
    await clock.advance(500);
    // Within the cache window too: a cached experiment never outlives its expiry.
    expect(await replica.current()).toBeNull();
    expect(await chaos.current()).toBeNull();
    expect(await chaos.decide("deduct")).toBeNull();
    expect(await kv.get("chaos:config")).toBeNull();
  });

  test("the in-process cache is at most cacheMs old", async () => {
    const clock = new ManualClock();
    const kv = createMemoryStore({ clock });
    const a = createChaosInjector({ kv, clock });
    const b = createChaosInjector({ kv, clock });
    expect(await b.current()).toBeNull();
    await a.configure({ crash_rate: 1 });
    expect(await b.current()).toBeNull(); // still cached
    expect(await b.current({ fresh: true })).not.toBeNull(); // admin reads go through
    await a.disable();
    expect(await a.current()).toBeNull(); // the writer knows at once
    expect(await b.current()).not.toBeNull();
    await clock.advance(1_000);
    expect(await b.current()).toBeNull();
  });

  test("the hot path does not read the store on every call", async () => {
    const clock = new ManualClock();
    const inner = createMemoryStore({ clock });
    let gets = 0;
    const kv: KeyValueStore = { ...inner, get: (k) => (gets++, inner.get(k)) };
    const chaos = createChaosInjector({ kv, clock });
    await createChaosInjector({ kv: inner, clock }).configure({ crash_rate: 0.5 });
    await Promise.all(Array.from({ length: 50 }, () => chaos.decide("deduct")));
    for (let i = 0; i < 50; i++) await chaos.decide("deduct");
    expect(gets).toBe(1);
    await clock.advance(1_000);
    await chaos.decide("deduct");
    expect(gets).toBe(2);
  });

  test("a store that fails or stalls turns chaos off instead of failing or stalling requests", async () => {
    const clock = new ManualClock();
    const inner = createMemoryStore({ clock });
    let mode: "up" | "failing" | "stalled" = "up";
    const guard = <T>(f: () => Promise<T>): Promise<T> =>
      mode === "up" ? f() : mode === "failing" ? Promise.reject(new Error("store down")) : new Promise<T>(() => {});
    const kv: KeyValueStore = {
      ...inner,
      get: (k) => guard(() => inner.get(k)),
      ttlMs: (k) => guard(() => inner.ttlMs(k)),
      incr: (k, t) => guard(() => inner.incr(k, t)),
      pushCapped: (k, v, m) => guard(() => inner.pushCapped(k, v, m)),
    };
    // A real 20 ms bound: this guards infrastructure, and the stalled store never answers at all.
    const chaos = createChaosInjector({ kv, clock, storeTimeoutMs: 20 });
    await createChaosInjector({ kv: inner, clock }).configure({ crash_rate: 1, crash_mode: 500 });
    expect(await chaos.decide("deduct")).toEqual({ latencyMs: 0, crash: 500 });

    mode = "failing";
    await clock.advance(1_000);
    expect(await chaos.decide("deduct")).toBeNull();
    await expect(chaos.current({ fresh: true })).rejects.toThrow("store down");

    mode = "stalled";
    await clock.advance(1_000);
    expect(await chaos.decide("deduct")).toBeNull();

    mode = "up";
    await clock.advance(1_000);
    expect(await chaos.decide("deduct")).toEqual({ latencyMs: 0, crash: 500 });
  });

  test("every_nth injects nothing while the shared counter cannot be reached", async () => {
    const clock = new ManualClock();
    const inner = createMemoryStore({ clock });
    let down = false;
    const kv: KeyValueStore = { ...inner, incr: (k, t) => (down ? Promise.reject(new Error("down")) : inner.incr(k, t)) };
    const chaos = createChaosInjector({ kv, clock });
    await chaos.configure({ pattern: "every_nth", n: 1, crash_rate: 1, crash_mode: 503 });
    expect(await chaos.decide("deduct")).toEqual({ latencyMs: 0, crash: 503 });
    down = true;
    expect(await chaos.decide("deduct")).toBeNull();
  });
});

describe("pattern random with a seed", () => {
  test("the same seed and request sequence give the same faults", async () => {
    const a = await started({ ...mixed, seed: 42 });
    const b = await started({ ...mixed, seed: 42 });
    const sa = await sequence(a.chaos, 300);
    const sb = await sequence(b.chaos, 300);
    expect(sa).toEqual(sb);
    // The sequence is worth comparing: it holds every kind of fault.
    const kinds = new Set(sa.map(kindOf));
    for (const k of ["none", "latency", "hang", "partial:500", "partial:503", "partial:reset", "crash:500", "crash:503", "crash:reset"]) {
      expect(kinds.has(k)).toBe(true);
    }
  });

  test("concurrent decisions draw in call order", async () => {
    const a = await started({ ...mixed, seed: 42 });
    const b = await started({ ...mixed, seed: 42 });
    await a.clock.advance(1_000); // force a store read in the middle of the burst
    const burst = await Promise.all(Array.from({ length: 100 }, (_, i) => a.chaos.decide("deduct", { requestId: `r${i}` })));
    expect(burst).toEqual(await sequence(b.chaos, 100));
  });

  test("different seeds give different faults", async () => {
    const a = await started({ ...mixed, seed: 1 });
    const b = await started({ ...mixed, seed: 2 });
    expect((await sequence(a.chaos, 100)).map(kindOf)).not.toEqual((await sequence(b.chaos, 100)).map(kindOf));
  });

  test("configuring again restarts the sequence", async () => {
    const { chaos } = await started({ ...mixed, seed: 42 });
    const first = await sequence(chaos, 50);
    await chaos.configure({ ...mixed, seed: 42 });
    expect(await sequence(chaos, 50)).toEqual(first);
  });

  test("a replica that reads the experiment from the store follows the same sequence", async () => {
    const { kv, clock } = await started({ ...mixed, seed: 42 });
    const writerTwin = await started({ ...mixed, seed: 42 });
    const replica = createChaosInjector({ kv, clock });
    expect(await sequence(replica, 100)).toEqual(await sequence(writerTwin.chaos, 100));
  });

  test("each fault happens at about its configured rate", async () => {
    const { chaos } = await started({ latency_ms: 100, latency_rate: 0.5, crash_rate: 0.3, partial_failure_rate: 0.2, hang_rate: 0.1, seed: 99 });
    const s = await sequence(chaos, 4000);
    const share = (f: (d: FaultDecision) => boolean) => s.filter((d) => d !== null && f(d)).length / s.length;
    expect(share((d) => d.latencyMs === 100)).toBeCloseTo(0.5, 1);
    expect(share((d) => d.crash !== undefined)).toBeCloseTo(0.3, 1);
    expect(share((d) => d.partial !== undefined)).toBeCloseTo(0.2, 1);
    expect(share((d) => d.hang === true)).toBeCloseTo(0.1, 1);
    // Exclusive faults never stack.
    expect(s.some((d) => d !== null && [d.crash !== undefined, d.partial !== undefined, !!d.hang].filter(Boolean).length > 1)).toBe(false);
  });

  test("latency ranges stay inside their bounds and use the whole range", async () => {
    const { chaos } = await started({ latency_min_ms: 100, latency_max_ms: 200, seed: 3 });
    const ms = (await sequence(chaos, 1000)).map((d) => d!.latencyMs);
    expect(Math.min(...ms)).toBe(100);
    expect(Math.max(...ms)).toBe(200);
  });
});

describe("pattern every_nth", () => {
  test("holds across two replicas sharing one store", async () => {
    const clock = new ManualClock();
    const kv = createMemoryStore({ clock });
    const a = createChaosInjector({ kv, clock });
    const b = createChaosInjector({ kv, clock });
    await a.configure({ pattern: "every_nth", n: 3, crash_rate: 1, crash_mode: 503 });
    const hits: number[] = [];
    for (let i = 1; i <= 30; i++) {
      // An uneven interleaving: the count is global, not per replica.
      const replica = i % 4 === 0 || i % 7 === 0 ? b : a;
      if (await replica.decide("deduct")) hits.push(i);
    }
    expect(hits).toEqual([3, 6, 9, 12, 15, 18, 21, 24, 27, 30]);
  });

  test("the k-th hit gets the same fault whichever replica serves it", async () => {
    const body = { pattern: "every_nth", n: 2, seed: 11, crash_rate: 0.4, partial_failure_rate: 0.4, hang_rate: 0.2, latency_min_ms: 1, latency_max_ms: 900, latency_rate: 0.5 };
    const run = async (pick: (i: number) => 0 | 1) => {
      const clock = new ManualClock();
      const kv = createMemoryStore({ clock });
      const replicas = [createChaosInjector({ kv, clock }), createChaosInjector({ kv, clock })];
      await replicas[0]!.configure(body);
      const out: (FaultDecision | null)[] = [];
      for (let i = 0; i < 60; i++) out.push(await replicas[pick(i)]!.decide("deduct"));
      return out;
    };
    const one = await run(() => 0);
    const alternating = await run((i) => (i % 2) as 0 | 1);
    const random = await run((i) => ((i * 7919) % 3 === 0 ? 1 : 0));
    expect(alternating).toEqual(one);
    expect(random).toEqual(one);
    expect(one.filter((d, i) => (i % 2 === 0 ? d !== null : d === null)).length).toBe(0);
    // On a hit, the rates are weights: every hit carries one of the exclusive faults.
    expect(one.filter((d) => d !== null).every((d) => d!.hang || d!.crash !== undefined || d!.partial !== undefined)).toBe(true);
  });

  test("a new experiment starts counting from zero", async () => {
    const { chaos } = await started({ pattern: "every_nth", n: 2, crash_rate: 1 });
    await chaos.decide("deduct");
    await chaos.configure({ pattern: "every_nth", n: 2, crash_rate: 1 });
    expect(await chaos.decide("deduct")).toBeNull();
    expect(await chaos.decide("deduct")).not.toBeNull();
  });
});

describe("targeting", () => {
  test('"deduct" leaves every other call alone, and does not count them', async () => {
    const { chaos } = await started({ pattern: "every_nth", n: 2, crash_rate: 1 });
    for (const r of ["get", "list", "release", "health", "get"] as const) expect(await chaos.decide(r)).toBeNull();
    expect(await chaos.decide("deduct")).toBeNull();
    expect(await chaos.decide("deduct")).not.toBeNull();
  });

  test('"all" reaches every inventory call', async () => {
    const { chaos } = await started({ crash_rate: 1, crash_mode: 500, routes: "all" });
    for (const r of ["deduct", "release", "get", "list", "health"] as const) {
      expect(await chaos.decide(r)).toEqual({ latencyMs: 0, crash: 500 });
    }
  });

  test("without an experiment nothing is injected or recorded", async () => {
    const clock = new ManualClock();
    const chaos = createChaosInjector({ kv: createMemoryStore({ clock }), clock });
    expect(await chaos.decide("deduct")).toBeNull();
    expect(await chaos.events()).toEqual([]);
  });
});

describe("recording", () => {
  test("every injected fault is counted, announced and logged with its request", async () => {
    const { chaos, kv, clock } = await started({ latency_ms: 250, crash_rate: 1, crash_mode: "reset" });
    const heard: ChaosEvent[] = [];
    const sub = chaos.onEvent((e) => heard.push(e));
    const d = await chaos.decide("deduct", { requestId: "req-1", orderId: "order-1" });
    expect(d).toEqual({ latencyMs: 250, crash: "reset" });
    expect(heard.map((e) => e.type)).toEqual(["latency", "reset"]);
    expect(heard[0]).toEqual({
      time: new Date(clock.now()).toISOString(),
      type: "latency",
      route: "deduct",
      request_id: "req-1",
      order_id: "order-1",
      detail: "250 ms",
    });
    expect(chaos.counts()).toMatchObject({ latency: 1, reset: 1, crash_500: 0 });

    // The log lives in the store, so another replica (the admin API on any pod) reads it.
    const replica = createChaosInjector({ kv, clock });
    expect((await replica.events(10)).map((e) => e.type)).toEqual(["reset", "latency"]);

    sub.dispose();
    await chaos.decide("deduct");
    expect(heard.length).toBe(2);
    expect(chaos.counts().reset).toBe(2);
  });

  test("each fault kind has its own type", async () => {
    const { chaos } = await started({ crash_rate: 0.3, partial_failure_rate: 0.3, hang_rate: 0.3, seed: 8 });
    await sequence(chaos, 200);
    const c = chaos.counts();
    for (const t of ["crash_500", "crash_503", "reset", "partial_failure", "hang"] as const) expect(c[t]).toBeGreaterThan(0);
    expect(c.latency).toBe(0);
  });

  test("the log keeps only its newest entries", async () => {
    const clock = new ManualClock();
    const kv = createMemoryStore({ clock });
    const chaos = createChaosInjector({ kv, clock, eventLogSize: 5 });
    await chaos.configure({ crash_rate: 1 });
    for (let i = 0; i < 12; i++) await chaos.decide("deduct", { requestId: `r${i}` });
    const events = await chaos.events(100);
    expect(events.map((e) => e.request_id)).toEqual(["r11", "r10", "r9", "r8", "r7"]);
    expect((await chaos.events(2)).length).toBe(2);
  });

  test("a throwing listener changes nothing for the request", async () => {
    const { chaos } = await started({ crash_rate: 1, crash_mode: 503 });
    chaos.onEvent(() => {
      throw new Error("metrics broke");
    });
    expect(await chaos.decide("deduct")).toEqual({ latencyMs: 0, crash: 503 });
    expect(chaos.counts().crash_503).toBe(1);
  });

  test("record() can be called directly", async () => {
    const { chaos } = await started({ crash_rate: 0.1 });
    await chaos.record({ type: "partial_failure", route: "release", request_id: null, order_id: "o-9", detail: null });
    expect((await chaos.events(1))[0]).toMatchObject({ type: "partial_failure", route: "release", order_id: "o-9" });
  });
});
