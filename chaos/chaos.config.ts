/**
 * The chaos experiment model: what a client may POST to `/api/admin/chaos`, how it is checked,
 * and the normalized form every replica reads back from the key-value store.
 *
 * Accepted bodies:
 * - a preset, optionally with overrides: `{"preset": "moderate", "seed": 42}`;
 * - the seed project's flat body: `{"latency": true, "latency_ms": 5000, "crash_rate": 0.3, "partial_failure_rate": 0.2}`;
 * - the seed UI's all-off form, `{"latency": false, "latency_ms": 5000, "crash_rate": 0, "partial_failure_rate": 0}`:
 *   a body with `"latency": false` and no fault rate above 0 stops the running experiment, as
 *   `DELETE` does (`config: null`). Without `"latency": false`, a body that injects nothing is
 *   refused as before: it is more likely a mistake than a request to stop;
 * - anything in between, field by field (see `FIELDS`).
 *
 * Fault semantics:
 * - latency is drawn on its own (`latency_rate`), fixed (`latency_ms`) or uniform in
 *   `latency_min_ms..latency_max_ms` (the range is the jitter);
 * - hang, crash and partial failure exclude each other: one draw picks at most one of them, so each
 *   happens with exactly its configured rate while the rates add up to 1 or less. Rates that add up
 *   past 1 (the seed UI's sliders move independently: crash 0.8 + partial failure 0.6) are scaled
 *   down in proportion until they add up to 1: every targeted request then meets exactly one of
 *   those faults, in the ratio of the rates sent (0.8 : 0.6 → 0.571 : 0.429). The stored config
 *   holds the scaled rates, so what is in force is what `GET` shows. This is the weighting
 *   `every_nth` applies to the requests it hits;
 * - `every_nth`: every n-th targeted request (counted across replicas) is hit; on a hit the rates
 *   act as relative weights between hang, crash and partial failure, and latency applies with
 *   `latency_rate`.
 */

export type PresetName = "mild" | "moderate" | "extreme";
export type CrashMode = 500 | 503 | "reset" | "mix";
export type ChaosPattern = "random" | "every_nth";
export type ChaosRoutes = "deduct" | "all";

/** The normalized experiment. Its JSON can be POSTed back unchanged. */
export interface ChaosConfig {
  preset: PresetName | null;
  pattern: ChaosPattern;
  /** Unsigned 32-bit; drawn at random when the body names none, and reported so the run can be replayed. */
  seed: number;
  /** Only with `every_nth`. */
  n: number | null;
  routes: ChaosRoutes;
  /** 0 when latency is off. */
  latency_rate: number;
  latency_min_ms: number;
  latency_max_ms: number;
  crash_rate: number;
  crash_mode: CrashMode;
  partial_failure_rate: number;
  hang_rate: number;
  /** How long a hang lasts if the caller never gives up. */
  hang_ms: number;
  ttl_s: number;
}

export interface ChaosFieldError {
  /** The body field at fault, as sent (`""` for the body as a whole). */
  field: string;
  /** JSON Pointer (RFC 6901) into the request body, as RFC 9457 examples use. */
  pointer: string;
  detail: string;
}

/** `config: null`: the body switches every fault off (the seed UI's all-off form), so stop the running experiment. */
export type ChaosValidation = { ok: true; config: ChaosConfig | null } | { ok: false; errors: ChaosFieldError[] };

export const LIMITS = {
  latencyMaxMs: 60_000,
  hangMinMs: 100,
  hangMaxMs: 600_000,
  ttlDefaultS: 900,
  ttlMaxS: 86_400,
  nMax: 1_000_000,
} as const;

const DEFAULT_HANG_MS = 30_000;

/**
 * Presets, written as request bodies so overrides merge field by field. They aim at `deduct`, the
 * call whose lost answer the whole system exists to survive; add `"routes": "all"` to widen them.
 */
export const PRESETS: Readonly<Record<PresetName, Readonly<Record<string, unknown>>>> = {
  mild: {
    latency_rate: 0.3,
    latency_min_ms: 50,
    latency_max_ms: 300,
    crash_rate: 0.05,
    crash_mode: "mix",
    partial_failure_rate: 0.02,
    hang_rate: 0,
  },
  moderate: {
    latency_rate: 0.3,
    latency_min_ms: 100,
    latency_max_ms: 1_000,
    crash_rate: 0.15,
    crash_mode: "mix",
    partial_failure_rate: 0.1,
    hang_rate: 0.02,
  },
  extreme: {
    latency_rate: 0.5,
    latency_min_ms: 500,
    latency_max_ms: 4_000,
    crash_rate: 0.3,
    crash_mode: "mix",
    partial_failure_rate: 0.2,
    hang_rate: 0.05,
  },
};

const FIELDS = new Set([
  "preset",
  "pattern",
  "seed",
  "n",
  "routes",
  "latency",
  "latency_ms",
  "latency_min_ms",
  "latency_max_ms",
  "latency_rate",
  "crash_rate",
  "crash_mode",
  "partial_failure_rate",
  "hang_rate",
  "hang_ms",
  "ttl_s",
]);

/** Rates that exclude each other, scaled in proportion to add up to 1: `scaleToOne([0, 0.8, 0.6])` → `[0, 0.571…, 0.428…]`. */
const scaleToOne = (rates: [number, number, number]): [number, number, number] => {
  const total = rates[0] + rates[1] + rates[2];
  return [rates[0] / total, rates[1] / total, rates[2] / total];
};

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Checks a request body and returns the normalized experiment, or every field error at once.
 * `validateChaosConfig({ preset: "mild", seed: 7 })` → `{ ok: true, config: { seed: 7, crash_rate: 0.05, … } }`;
 * `validateChaosConfig({ crash_rate: 2 })` → `{ ok: false, errors: [{ field: "crash_rate", … }] }`;
 * `validateChaosConfig({ latency: false, crash_rate: 0 })` → `{ ok: true, config: null }` (stop).
 * `defaultSeed` fills `seed` when the body names none (the caller draws it, keeping this pure).
 */
export function validateChaosConfig(input: unknown, opts: { defaultSeed: number }): ChaosValidation {
  const errors: ChaosFieldError[] = [];
  const fail = (field: string, detail: string) => {
    errors.push({ field, pointer: field ? `/${field}` : "", detail });
  };

  if (!isPlainObject(input)) {
    fail("", "the body must be a JSON object");
    return { ok: false, errors };
  }
  for (const key of Object.keys(input)) {
    if (!FIELDS.has(key)) fail(key, `unknown field; allowed: ${[...FIELDS].join(", ")}`);
  }
  if (errors.length) return { ok: false, errors };

  // null means "not given", so a normalized config (with `n: null`, `preset: null`) can be posted back.
  const own: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) if (v !== null && v !== undefined) own[k] = v;

  let preset: PresetName | null = null;
  let body = own;
  if (own.preset !== undefined) {
    if (own.preset === "mild" || own.preset === "moderate" || own.preset === "extreme") {
      preset = own.preset;
      const base: Record<string, unknown> = { ...PRESETS[preset] };
      // An override of the latency shape replaces the preset's shape rather than mixing with it.
      if (own.latency_ms !== undefined) {
        delete base.latency_min_ms;
        delete base.latency_max_ms;
      }
      if (own.latency === false) delete base.latency_rate;
      body = { ...base, ...own };
    } else {
      fail("preset", "must be one of mild, moderate, extreme");
    }
  }

  const rate = (field: string, fallback: number): number => {
    const v = body[field];
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > 1) {
      fail(field, `must be a number from 0 to 1, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return v;
  };
  const int = (field: string, min: number, max: number, fallback: number): number => {
    const v = body[field];
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      fail(field, `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return v;
  };
  const oneOf = <T>(field: string, allowed: readonly T[], fallback: T): T => {
    const v = body[field];
    if (v === undefined) return fallback;
    if (!allowed.includes(v as T)) {
      fail(field, `must be one of ${allowed.join(", ")}, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return v as T;
  };

  const pattern = oneOf<ChaosPattern>("pattern", ["random", "every_nth"], "random");
  const seed = int("seed", 0, 0xffff_ffff, opts.defaultSeed);
  let n: number | null = null;
  if (pattern === "every_nth") {
    if (body.n === undefined) fail("n", "is required with pattern every_nth");
    else n = int("n", 1, LIMITS.nMax, 1);
  } else if (body.n !== undefined) {
    fail("n", "only applies to pattern every_nth");
  }
  const routes = oneOf<ChaosRoutes>("routes", ["deduct", "all"], "deduct");

  // Latency: the seed's `latency` switch, a fixed `latency_ms`, or a range.
  let latencyOn: boolean;
  if (body.latency === undefined) {
    latencyOn = body.latency_ms !== undefined || body.latency_min_ms !== undefined || body.latency_max_ms !== undefined;
  } else if (typeof body.latency === "boolean") {
    latencyOn = body.latency;
  } else {
    fail("latency", `must be true or false, got ${JSON.stringify(body.latency)}`);
    latencyOn = false;
  }
  let latency_rate = 0;
  let latency_min_ms = 0;
  let latency_max_ms = 0;
  if (latencyOn) {
    const hasFixed = body.latency_ms !== undefined;
    const hasRange = body.latency_min_ms !== undefined || body.latency_max_ms !== undefined;
    if (hasFixed && hasRange) {
      fail("latency_ms", "give either latency_ms or latency_min_ms and latency_max_ms, not both");
    } else if (hasFixed) {
      latency_min_ms = latency_max_ms = int("latency_ms", 0, LIMITS.latencyMaxMs, 0);
    } else if (hasRange) {
      if (body.latency_min_ms === undefined) fail("latency_min_ms", "is required with latency_max_ms");
      else if (body.latency_max_ms === undefined) fail("latency_max_ms", "is required with latency_min_ms");
      else {
        latency_min_ms = int("latency_min_ms", 0, LIMITS.latencyMaxMs, 0);
        latency_max_ms = int("latency_max_ms", 0, LIMITS.latencyMaxMs, 0);
        if (latency_min_ms > latency_max_ms) fail("latency_max_ms", "must not be below latency_min_ms");
      }
    } else {
      fail("latency_ms", "latency needs latency_ms, or latency_min_ms and latency_max_ms");
    }
    latency_rate = rate("latency_rate", 1);
  } else {
    // Even a switched-off latency must not carry nonsense: check what was sent.
    for (const f of ["latency_ms", "latency_min_ms", "latency_max_ms"]) int(f, 0, LIMITS.latencyMaxMs, 0);
    rate("latency_rate", 0);
  }

  let crash_rate = rate("crash_rate", 0);
  let partial_failure_rate = rate("partial_failure_rate", 0);
  let hang_rate = rate("hang_rate", 0);
  let crash_mode: CrashMode = "mix";
  if (body.crash_mode !== undefined) {
    const m = body.crash_mode;
    if (m === 500 || m === "500") crash_mode = 500;
    else if (m === 503 || m === "503") crash_mode = 503;
    else if (m === "reset" || m === "mix") crash_mode = m;
    else fail("crash_mode", `must be one of 500, 503, reset, mix, got ${JSON.stringify(m)}`);
  }
  const hang_ms = int("hang_ms", LIMITS.hangMinMs, LIMITS.hangMaxMs, DEFAULT_HANG_MS);
  const ttl_s = int("ttl_s", 1, LIMITS.ttlMaxS, LIMITS.ttlDefaultS);

  const exclusive = hang_rate + crash_rate + partial_failure_rate;
  // The tolerance lets scaled rates, whose sum may round a hair past 1, post back unchanged.
  if (exclusive > 1 + 1e-9) {
    // They exclude each other, so past 1 they cannot all hold: keep their ratio (see the header).
    [hang_rate, crash_rate, partial_failure_rate] = scaleToOne([hang_rate, crash_rate, partial_failure_rate]);
  }
  const injectsNothing = latency_rate === 0 && exclusive === 0;
  if (errors.length === 0 && injectsNothing) {
    if (own.latency === false) return { ok: true, config: null };
    fail("", "the experiment injects nothing: set a fault rate or a preset (DELETE, or a body with \"latency\": false and no rate above 0, turns chaos off)");
  }

  if (errors.length) return { ok: false, errors };
  return {
    ok: true,
    config: {
      preset,
      pattern,
      seed,
      n,
      routes,
      latency_rate,
      latency_min_ms,
      latency_max_ms,
      crash_rate,
      crash_mode,
      partial_failure_rate,
      hang_rate,
      hang_ms,
      ttl_s,
    },
  };
}
