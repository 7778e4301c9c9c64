import { describe, expect, test } from "bun:test";
import { PRESETS, validateChaosConfig, type ChaosConfig, type ChaosValidation } from "./chaos.config.ts";

const check = (input: unknown) => validateChaosConfig(input, { defaultSeed: 1234 });
const ok = (r: ChaosValidation): ChaosConfig => {
  if (!r.ok) throw new Error(`expected a valid config, got ${JSON.stringify(r.errors)}`);
  if (r.config === null) throw new Error("expected an experiment, got the all-off answer");
  return r.config;
};
const fields = (r: ChaosValidation): string[] => (r.ok ? [] : r.errors.map((e) => e.field));

describe("the seed project's flat body", () => {
  test("still works and means fixed latency on every targeted call", () => {
    const c = ok(check({ latency: true, latency_ms: 5000, crash_rate: 0.3, partial_failure_rate: 0.2 }));
    expect(c).toEqual({
      preset: null,
      pattern: "random",
      seed: 1234,
      n: null,
      routes: "deduct",
      latency_rate: 1,
      latency_min_ms: 5000,
      latency_max_ms: 5000,
      crash_rate: 0.3,
      crash_mode: "mix",
      partial_failure_rate: 0.2,
      hang_rate: 0,
      hang_ms: 30_000,
      ttl_s: 900,
    });
  });

  test("`latency: false` switches latency off even when a duration is sent", () => {
    const c = ok(check({ latency: false, latency_ms: 5000, crash_rate: 0.3 }));
    expect(c.latency_rate).toBe(0);
  });

  test("a latency without any duration is an error", () => {
    expect(fields(check({ latency: true }))).toEqual(["latency_ms"]);
  });

  test("the seed UI's all-off form means: stop the running experiment", () => {
    for (const body of [
      { latency: false, latency_ms: 5000, crash_rate: 0, partial_failure_rate: 0 },
      { latency: false, latency_ms: 5000 },
      { latency: false },
      { latency: false, latency_ms: 5000, crash_rate: 0, partial_failure_rate: 0, hang_rate: 0, ttl_s: 60 },
      { preset: "extreme", latency: false, crash_rate: 0, partial_failure_rate: 0, hang_rate: 0 },
    ]) {
      expect({ body, result: check(body) }).toEqual({ body, result: { ok: true, config: null } });
    }
  });

  test("the all-off form is still checked field by field", () => {
    expect(fields(check({ latency: false, latency_ms: 70_000, crash_rate: 0 }))).toEqual(["latency_ms"]);
    expect(fields(check({ latency: false, crash_rate: 0, crash_probability: 0 }))).toEqual(["crash_probability"]);
  });

  test("sliders whose rates add up past 1 are scaled in proportion to add up to 1", () => {
    const c = ok(check({ latency: true, latency_ms: 5000, crash_rate: 0.8, partial_failure_rate: 0.6 }));
    expect(c.crash_rate).toBeCloseTo(0.8 / 1.4, 12);
    expect(c.partial_failure_rate).toBeCloseTo(0.6 / 1.4, 12);
    expect(c.crash_rate / c.partial_failure_rate).toBeCloseTo(0.8 / 0.6, 12);
    expect(c.crash_rate + c.partial_failure_rate + c.hang_rate).toBeCloseTo(1, 12);
    // Latency is drawn on its own and keeps its rate.
    expect(c.latency_rate).toBe(1);
    const both = ok(check({ latency: false, latency_ms: 5000, crash_rate: 1, partial_failure_rate: 1 }));
    expect([both.crash_rate, both.partial_failure_rate]).toEqual([0.5, 0.5]);
  });
});

describe("presets", () => {
  test.each(["mild", "moderate", "extreme"] as const)("%s applies its values", (name) => {
    const c = ok(check({ preset: name }));
    expect(c.preset).toBe(name);
    const p = PRESETS[name];
    expect(c.latency_min_ms).toBe(p.latency_min_ms as number);
    expect(c.latency_max_ms).toBe(p.latency_max_ms as number);
    expect(c.crash_rate).toBe(p.crash_rate as number);
    expect(c.partial_failure_rate).toBe(p.partial_failure_rate as number);
    expect(c.hang_rate).toBe(p.hang_rate as number);
    expect(c.routes).toBe("deduct");
  });

  test("get harsher from mild to extreme", () => {
    const [m, mo, x] = (["mild", "moderate", "extreme"] as const).map((p) => ok(check({ preset: p })));
    expect(m!.crash_rate).toBeLessThan(mo!.crash_rate);
    expect(mo!.crash_rate).toBeLessThan(x!.crash_rate);
    expect(m!.latency_max_ms).toBeLessThan(x!.latency_max_ms);
  });

  test("take overrides such as the seed, routes and ttl", () => {
    const c = ok(check({ preset: "moderate", seed: 42, routes: "all", ttl_s: 60, crash_rate: 0.5 }));
    expect(c).toMatchObject({ preset: "moderate", seed: 42, routes: "all", ttl_s: 60, crash_rate: 0.5 });
    expect(c.partial_failure_rate).toBe(PRESETS.moderate.partial_failure_rate as number);
  });

  test("a fixed latency override replaces the preset's range", () => {
    const c = ok(check({ preset: "extreme", latency_ms: 10 }));
    expect([c.latency_min_ms, c.latency_max_ms]).toEqual([10, 10]);
  });

  test("`latency: false` removes the preset's latency", () => {
    expect(ok(check({ preset: "mild", latency: false })).latency_rate).toBe(0);
  });

  test("an unknown preset is an error", () => {
    expect(fields(check({ preset: "apocalypse" }))).toEqual(["preset"]);
  });
});

describe("latency shapes", () => {
  test("a range with its own probability", () => {
    const c = ok(check({ latency_min_ms: 100, latency_max_ms: 900, latency_rate: 0.25 }));
    expect(c).toMatchObject({ latency_rate: 0.25, latency_min_ms: 100, latency_max_ms: 900 });
  });

  test("fixed and range together are ambiguous", () => {
    expect(fields(check({ latency_ms: 5, latency_min_ms: 1, latency_max_ms: 9 }))).toEqual(["latency_ms"]);
  });

  test("a half range or an inverted one is an error", () => {
    expect(fields(check({ latency_min_ms: 100 }))).toEqual(["latency_max_ms"]);
    expect(fields(check({ latency_min_ms: 900, latency_max_ms: 100 }))).toEqual(["latency_max_ms"]);
  });
});

describe("patterns", () => {
  test("every_nth needs n", () => {
    expect(fields(check({ pattern: "every_nth", crash_rate: 1 }))).toEqual(["n"]);
    expect(ok(check({ pattern: "every_nth", n: 3, crash_rate: 1 })).n).toBe(3);
  });

  test("n without every_nth is a mistake worth reporting", () => {
    expect(fields(check({ n: 3, crash_rate: 1 }))).toEqual(["n"]);
  });

  test("a given seed wins over the default", () => {
    expect(ok(check({ crash_rate: 0.1, seed: 0 })).seed).toBe(0);
    expect(ok(check({ crash_rate: 0.1, seed: 0xffffffff })).seed).toBe(0xffffffff);
  });
});

describe("crash_mode", () => {
  test.each([
    [500, 500],
    ["500", 500],
    [503, 503],
    ["503", 503],
    ["reset", "reset"],
    ["mix", "mix"],
  ] as const)("%p → %p", (input, expected) => {
    expect(ok(check({ crash_rate: 0.1, crash_mode: input })).crash_mode).toBe(expected);
  });

  test("anything else is an error", () => {
    expect(fields(check({ crash_rate: 0.1, crash_mode: 502 }))).toEqual(["crash_mode"]);
  });
});

describe("rejections (the route turns them into 400 problems)", () => {
  test("every out-of-range value is reported at once, by field", () => {
    const r = check({
      crash_rate: 1.5,
      partial_failure_rate: -0.1,
      latency_ms: 70_000,
      ttl_s: 86_401,
      seed: -1,
      hang_ms: 5,
    });
    expect(fields(r).sort()).toEqual(["crash_rate", "hang_ms", "latency_ms", "partial_failure_rate", "seed", "ttl_s"]);
    if (!r.ok) {
      const crash = r.errors.find((e) => e.field === "crash_rate")!;
      expect(crash.pointer).toBe("/crash_rate");
      expect(crash.detail).toContain("from 0 to 1");
      expect(crash.detail).toContain("1.5");
    }
  });

  test("ttl_s must be at least a second and at most a day", () => {
    expect(fields(check({ crash_rate: 0.1, ttl_s: 0 }))).toEqual(["ttl_s"]);
    expect(fields(check({ crash_rate: 0.1, ttl_s: 1.5 }))).toEqual(["ttl_s"]);
    expect(ok(check({ crash_rate: 0.1, ttl_s: 86_400 })).ttl_s).toBe(86_400);
  });

  test("wrong types are errors, not coercions", () => {
    expect(fields(check({ crash_rate: "0.3" }))).toEqual(["crash_rate"]);
    expect(fields(check({ latency: "yes", latency_ms: 5 }))).toEqual(["latency"]);
  });

  test("unknown fields are rejected by name", () => {
    const r = check({ crash_rate: 0.1, crash_probability: 0.5, rm_rf: true });
    expect(fields(r).sort()).toEqual(["crash_probability", "rm_rf"]);
  });

  test("exclusive faults up to 1 keep their rates; past 1, hang counts in the scaling too", () => {
    expect(ok(check({ crash_rate: 0.5, partial_failure_rate: 0.3, hang_rate: 0.2 }))).toMatchObject({ crash_rate: 0.5, partial_failure_rate: 0.3, hang_rate: 0.2 });
    const c = ok(check({ crash_rate: 0.6, partial_failure_rate: 0.3, hang_rate: 0.2 }));
    expect([c.crash_rate, c.partial_failure_rate, c.hang_rate].map((r) => r * 1.1)).toEqual([
      expect.closeTo(0.6, 12),
      expect.closeTo(0.3, 12),
      expect.closeTo(0.2, 12),
    ]);
  });

  test("a preset's rates plus an override past 1 are scaled the same way", () => {
    const c = ok(check({ preset: "extreme", crash_rate: 1 }));
    const sum = 0.05 + 1 + 0.2;
    expect(c).toMatchObject({ hang_rate: expect.closeTo(0.05 / sum, 12), crash_rate: expect.closeTo(1 / sum, 12), partial_failure_rate: expect.closeTo(0.2 / sum, 12) });
  });

  test("an experiment that injects nothing is refused, unless it says latency: false (the all-off form)", () => {
    expect(fields(check({}))).toEqual([""]);
    expect(fields(check({ crash_rate: 0, routes: "all" }))).toEqual([""]);
    expect(fields(check({ latency_rate: 0, latency_ms: 5 }))).toEqual([""]);
  });

  test("a body that is not an object is refused", () => {
    for (const body of [null, 3, "moderate", [1, 2]]) expect(fields(check(body))).toEqual([""]);
  });
});

test("a normalized config posted back gives the same config", () => {
  for (const body of [
    { preset: "extreme", seed: 9, routes: "all" },
    { latency: true, latency_ms: 5000, crash_rate: 0.3, partial_failure_rate: 0.2 },
    { pattern: "every_nth", n: 4, crash_rate: 1, crash_mode: "reset" },
    { crash_rate: 0.2 },
    { crash_rate: 0.7, partial_failure_rate: 0.7, hang_rate: 0.3 },
    { crash_rate: 0.9, partial_failure_rate: 0.8 },
  ]) {
    const first = ok(check(body));
    expect(ok(check(JSON.parse(JSON.stringify(first))))).toEqual(first);
  }
});
