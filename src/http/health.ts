import { Elysia } from "elysia";
import { jsonResponse } from "../../platform/openapi.ts";

const REPORT = {
  type: "object",
  required: ["status", "role"],
  properties: {
    status: { type: "string", enum: ["ok", "degraded"] },
    role: { type: "string", enum: ["all", "orders", "inventory"] },
    checks: { type: "object", additionalProperties: { type: "object", required: ["ok"], properties: { ok: { type: "boolean" }, detail: { type: "string" }, duration_ms: { type: "integer" } } } },
  },
};
const report = (ok: string) => ({
  200: jsonResponse(ok, REPORT, { status: "ok", role: "all", checks: { database: { ok: true, duration_ms: 1 } } }),
  503: jsonResponse("A check failed; each check says why", REPORT),
});

export interface CheckResult {
  ok: boolean;
  detail?: string;
  [extra: string]: unknown;
}
export type HealthCheck = () => Promise<CheckResult>;

/**
 * Health in Kubernetes' terms: `live` says the process runs (never touches a dependency, so a
 * database outage does not get every pod restarted); `ready` says this instance can serve
 * (dependencies and migrations); `deep` adds what this instance depends on further away
 * (inventory's own health and the breaker, on the orders role).
 */
export interface HealthRegistry {
  ready: Record<string, HealthCheck>;
  deep: Record<string, HealthCheck>;
  role: string;
}

export async function runChecks(checks: Record<string, HealthCheck>, timeoutMs = 2_000): Promise<{ ok: boolean; checks: Record<string, CheckResult> }> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, CheckResult]> => {
      const started = performance.now();
      try {
        const r = await Promise.race([
          check(),
          new Promise<CheckResult>((resolve) => setTimeout(() => resolve({ ok: false, detail: `no answer within ${timeoutMs} ms` }), timeoutMs)),
        ]);
        return [name, { ...r, duration_ms: Math.round(performance.now() - started) }];
      } catch (err) {
        return [name, { ok: false, detail: (err as Error).message, duration_ms: Math.round(performance.now() - started) }];
      }
    }),
  );
  const out = Object.fromEntries(entries);
  return { ok: entries.every(([, r]) => r.ok), checks: out };
}

function answer(role: string, result: { ok: boolean; checks: Record<string, CheckResult> }) {
  return new Response(JSON.stringify({ status: result.ok ? "ok" : "degraded", role, checks: result.checks }), {
    status: result.ok ? 200 : 503,
    headers: { "content-type": "application/json", "cache-control": "no-store" },
  });
}

export function healthRoutes(registry: HealthRegistry) {
  return new Elysia({ name: "health", detail: { tags: ["ops"] } })
    .get("/health/live", () => new Response(JSON.stringify({ status: "ok", role: registry.role }), { headers: { "content-type": "application/json", "cache-control": "no-store" } }), {
      detail: { operationId: "live", summary: "Liveness: the process runs", responses: { 200: jsonResponse("The process runs", REPORT, { status: "ok", role: "all" }) } },
    })
    .get("/health/ready", async () => answer(registry.role, await runChecks(registry.ready)), {
      detail: { operationId: "ready", summary: "Readiness: dependencies answer and migrations are applied", responses: report("Ready") },
    })
    .get("/health", async () => answer(registry.role, await runChecks(registry.ready)), {
      detail: { operationId: "health", summary: "Health with per-check detail; 503 when any check fails", responses: report("Healthy") },
    })
    .get("/health/deep", async () => answer(registry.role, await runChecks({ ...registry.ready, ...registry.deep })), {
      detail: { operationId: "deepHealth", summary: "Health plus what this role depends on further away (inventory, breaker)", responses: report("Healthy, and so is what it depends on") },
    });
}
