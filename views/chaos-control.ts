import type { ChaosInjector } from "../chaos/injector.ts";
import type { ChaosConfig } from "../chaos/chaos.config.ts";
import type { ChaosActive, ChaosControl, ChaosExperiment, ChaosRequest } from "./view-deps.ts";

/** A refusal from the injector, in the shape the chaos page shows (422 with the message). */
export class ChaosRefusedError extends Error {
  readonly code = "invalid_chaos_config";
}

/** The page's experiment form, in the injector's own body format (what `POST /api/admin/chaos` takes). */
export function experimentToBody(e: ChaosExperiment): Record<string, unknown> {
  const body: Record<string, unknown> = { ttl_s: e.durationS, routes: "deduct" };
  if (e.pattern.kind === "every-nth") {
    body.pattern = "every_nth";
    body.n = e.pattern.n;
  } else {
    body.pattern = "random";
    if (e.pattern.seed !== undefined) body.seed = e.pattern.seed;
  }
  body.latency_rate = e.latency?.probability ?? 0;
  body.latency_min_ms = e.latency?.minMs ?? 0;
  body.latency_max_ms = e.latency?.maxMs ?? 0;
  body.crash_rate = e.crash?.probability ?? 0;
  if (e.crash) body.crash_mode = e.crash.mode === "reset" ? "reset" : Number(e.crash.mode);
  body.partial_failure_rate = e.partial?.probability ?? 0;
  return body;
}

/** The injector's normalised config, read back as the page's experiment (the inverse of the above). */
export function configToExperiment(c: ChaosConfig): ChaosExperiment {
  const e: ChaosExperiment = {
    pattern: c.pattern === "every_nth" ? { kind: "every-nth", n: c.n ?? 1 } : { kind: "random", seed: c.seed },
    durationS: c.ttl_s,
  };
  if (c.latency_rate > 0) e.latency = { minMs: c.latency_min_ms, maxMs: c.latency_max_ms, probability: c.latency_rate };
  if (c.crash_rate > 0) e.crash = { probability: c.crash_rate, mode: c.crash_mode === "mix" ? "500" : (String(c.crash_mode) as "500" | "503" | "reset") };
  if (c.partial_failure_rate > 0) e.partial = { probability: c.partial_failure_rate };
  return e;
}

/**
 * The chaos page's control over the real injector, the same one the admin API drives: presets
 * pass through as `{"preset": …}`, the custom form becomes the injector's body, and what the page
 * shows is read back from the injector (so the page and `GET /api/admin/chaos` never disagree).
 */
export function createChaosControl(injector: ChaosInjector): ChaosControl {
  const view = (a: { config: ChaosConfig; seconds_left: number }): ChaosActive => ({
    label: a.config.preset ?? "custom",
    config: a.config.preset ? { ...a.config } : (configToExperiment(a.config) as unknown as Record<string, unknown>),
    secondsLeft: a.seconds_left,
  });
  return {
    async current() {
      const a = await injector.current({ fresh: true });
      return a ? view(a) : null;
    },
    async configure(request: ChaosRequest) {
      const body = "preset" in request ? { preset: request.preset } : experimentToBody(request.experiment);
      const r = await injector.configure(body);
      if (!r.ok) throw new ChaosRefusedError(r.errors.map((e) => (e.field ? `${e.field}: ${e.detail}` : e.detail)).join("; "));
      return r.active ? view(r.active) : null;
    },
    disable: () => injector.disable(),
    async events(limit: number) {
      const events = await injector.events(limit);
      return events.map((e) => ({
        at: e.time,
        fault: e.type,
        detail: [e.route, e.detail, e.order_id ? `order ${e.order_id.slice(0, 8)}` : null].filter(Boolean).join(" · "),
      }));
    },
  };
}
