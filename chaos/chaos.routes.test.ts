import { beforeEach, describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { createMemoryStore } from "../platform/kv/memory.ts";
import { createChaosInjector, type ChaosInjector } from "./injector.ts";
import { chaosAdminRoutes } from "./chaos.routes.ts";
import { ManualClock } from "../tests/support/manual-clock.ts";

let clock: ManualClock;
let chaos: ChaosInjector;
let app: Elysia;

beforeEach(() => {
  clock = new ManualClock();
  chaos = createChaosInjector({ kv: createMemoryStore({ clock }), clock, random: () => 0.5 });
  app = new Elysia().use(chaosAdminRoutes(chaos)) as unknown as Elysia;
});

const call = (method: string, path: string, body?: unknown) =>
  app.handle(
    new Request(`http://localhost${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );

describe("POST /api/admin/chaos", () => {
  test("accepts the seed's flat body and reports the running experiment", async () => {
    const res = await call("POST", "/api/admin/chaos", { latency: true, latency_ms: 5000, crash_rate: 0.3, partial_failure_rate: 0.2 });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({
      active: true,
      seconds_left: 900,
      config: { latency_min_ms: 5000, latency_max_ms: 5000, crash_rate: 0.3, partial_failure_rate: 0.2, seed: 2 ** 31 },
    });
    expect(typeof body.id).toBe("string");
    expect(Date.parse(body.expires_at) - Date.parse(body.set_at)).toBe(900_000);
  });

  test("the seed UI's all-off form stops the running experiment, as DELETE does", async () => {
    await call("POST", "/api/admin/chaos", { preset: "moderate" });
    expect(await chaos.current({ fresh: true })).not.toBeNull();
    const res = await call("POST", "/api/admin/chaos", { latency: false, latency_ms: 5000, crash_rate: 0, partial_failure_rate: 0 });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ active: false });
    expect(await chaos.current({ fresh: true })).toBeNull();
    expect(await (await call("GET", "/api/admin/chaos")).json()).toEqual({ active: false });
    // With nothing running it answers the same.
    expect(await (await call("POST", "/api/admin/chaos", { latency: false })).json()).toEqual({ active: false });
  });

  test("slider rates adding up past 1 are accepted, scaled in proportion, and shown as in force", async () => {
    const res = await call("POST", "/api/admin/chaos", { latency: true, latency_ms: 5000, crash_rate: 0.9, partial_failure_rate: 0.6 });
    expect(res.status).toBe(200);
    const { config } = await res.json();
    expect(config.crash_rate).toBeCloseTo(0.6, 12);
    expect(config.partial_failure_rate).toBeCloseTo(0.4, 12);
    expect((await (await call("GET", "/api/admin/chaos")).json()).config).toEqual(config);
  });

  test("applies a preset with overrides", async () => {
    const res = await call("POST", "/api/admin/chaos", { preset: "moderate", seed: 42, ttl_s: 120 });
    expect(await res.json()).toMatchObject({ config: { preset: "moderate", seed: 42, ttl_s: 120 }, seconds_left: 120 });
  });

  test("answers 400 with a problem body listing each bad field", async () => {
    const res = await call("POST", "/api/admin/chaos", { crash_rate: 1.5, ttl_s: 999_999, latency_ms: -5 });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    const problem = await res.json();
    expect(problem).toMatchObject({
      type: "https://valerix.dev/problems/invalid-chaos-config",
      title: "Invalid chaos experiment",
      status: 400,
    });
    expect(problem.errors.map((e: { field: string }) => e.field).sort()).toEqual(["crash_rate", "latency_ms", "ttl_s"]);
    expect(problem.detail).toContain("crash_rate: must be a number from 0 to 1");
    expect(await chaos.current({ fresh: true })).toBeNull();
  });

  test("answers 400 for unknown fields, an empty body and a non-object", async () => {
    for (const body of [{ crash_rate: 0.1, explode: true }, {}, [1], undefined]) {
      const res = await call("POST", "/api/admin/chaos", body);
      expect(res.status).toBe(400);
      expect((await res.json()).type).toBe("https://valerix.dev/problems/invalid-chaos-config");
    }
  });
});

describe("GET and DELETE /api/admin/chaos", () => {
  test("show the experiment with its time left, and end it", async () => {
    expect(await (await call("GET", "/api/admin/chaos")).json()).toEqual({ active: false });
    await call("POST", "/api/admin/chaos", { preset: "mild", ttl_s: 60 });
    await clock.advance(15_000);
    expect(await (await call("GET", "/api/admin/chaos")).json()).toMatchObject({ active: true, seconds_left: 45, config: { preset: "mild" } });
    const del = await call("DELETE", "/api/admin/chaos");
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ active: false });
    expect(await (await call("GET", "/api/admin/chaos")).json()).toEqual({ active: false });
  });

  test("GET shows the experiment another replica started, without waiting for a cache", async () => {
    const shared = createMemoryStore({ clock });
    chaos = createChaosInjector({ kv: shared, clock });
    app = new Elysia().use(chaosAdminRoutes(chaos)) as unknown as Elysia;
    await chaos.decide("deduct"); // the hot path has now cached "nothing running"
    await createChaosInjector({ kv: shared, clock }).configure({ crash_rate: 0.2 });
    expect(await chaos.current()).toBeNull();
    expect((await (await call("GET", "/api/admin/chaos")).json()).active).toBe(true);
  });

  test("the experiment is gone once its ttl has passed", async () => {
    await call("POST", "/api/admin/chaos", { crash_rate: 0.2, ttl_s: 5 });
    await clock.advance(5_000);
    expect(await (await call("GET", "/api/admin/chaos")).json()).toEqual({ active: false });
  });
});

describe("GET /api/admin/chaos/events", () => {
  test("lists the newest injected faults with their counts", async () => {
    await call("POST", "/api/admin/chaos", { crash_rate: 1, crash_mode: 503 });
    for (let i = 0; i < 3; i++) await chaos.decide("deduct", { requestId: `r${i}`, orderId: `o${i}` });
    const res = await call("GET", "/api/admin/chaos/events?limit=2");
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.events.map((e: { order_id: string }) => e.order_id)).toEqual(["o2", "o1"]);
    expect(body.events[0]).toMatchObject({ type: "crash_503", route: "deduct", request_id: "r2" });
    expect(typeof body.events[0].time).toBe("string");
    expect(body.counts.crash_503).toBe(3);
  });

  test("rejects a silly limit with a problem", async () => {
    for (const q of ["0", "500", "abc", "1.5"]) {
      const res = await call("GET", `/api/admin/chaos/events?limit=${q}`);
      expect(res.status).toBe(400);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
    }
  });
});
