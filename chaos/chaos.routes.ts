import { Elysia } from "elysia";
import type { ChaosFieldError } from "./chaos.config.ts";
import type { ChaosInjector } from "./injector.ts";
import { jsonResponse, problemResponses } from "../platform/openapi.ts";
import { problemFor } from "../platform/problems.ts";

/**
 * The chaos admin API. Authentication is not done here: mount this under the admin guard.
 *
 * - `POST /api/admin/chaos` — start (or replace) an experiment; 200 with the active state, 400 problem
 *   with `errors[]` for a bad body; a body with `"latency": false` and no rate above 0 (the seed
 *   UI's all-off form) stops it, `{ active: false }`.
 * - `GET /api/admin/chaos` — `{ active: false }` or the active state with `seconds_left`.
 * - `DELETE /api/admin/chaos` — stop it on every replica.
 * - `GET /api/admin/chaos/events?limit=50` — the newest injected faults and this process's counts.
 */

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/** A 400 from the problem catalog, so its `type` and title are the ones the API document lists. */
function invalid(code: "invalid_chaos_config" | "invalid_query", detail: string, errors: ChaosFieldError[]): Response {
  return new Response(JSON.stringify(problemFor(code, detail, { errors })), {
    status: 400,
    headers: { "content-type": "application/problem+json" },
  });
}

const STATE = {
  type: "object",
  required: ["active"],
  properties: { active: { type: "boolean" }, seconds_left: { type: "number" } },
  additionalProperties: true,
  description: "`{active: false}`, or the running experiment's settings with `seconds_left`",
};
const state = (description: string) => ({ 200: jsonResponse(description, STATE, { active: false }) });

export function chaosAdminRoutes(injector: ChaosInjector) {
  return new Elysia({ prefix: "/api/admin/chaos" })
    .post(
      "",
      async ({ body }) => {
        const result = await injector.configure(body ?? {});
        if (!result.ok) {
          const detail = result.errors.map((e) => (e.field ? `${e.field}: ${e.detail}` : e.detail)).join("; ");
          return invalid("invalid_chaos_config", detail, result.errors);
        }
        // The seed UI's all-off form stops chaos, and answers as DELETE does.
        return json(result.active ? { active: true, ...result.active } : { active: false });
      },
      {
        detail: {
          operationId: "startChaos",
          summary: "Start or replace a chaos experiment",
          requestBody: {
            required: true,
            content: { "application/json": { schema: { type: "object" as const, additionalProperties: true }, example: { preset: "moderate", seed: 42 } } },
          },
          responses: { ...state("The experiment now running, or `{active: false}` for the all-off form"), ...problemResponses("invalid_chaos_config") },
          description:
            'Body: `{"preset": "moderate"}` (with optional overrides such as `seed`), or fields such as ' +
            '`{"latency": true, "latency_ms": 5000, "crash_rate": 0.3, "partial_failure_rate": 0.2}`. ' +
            "The experiment expires after `ttl_s` seconds (default 900). Hang, crash and partial-failure rates " +
            "that add up past 1 are scaled in proportion to add up to 1. A body with `\"latency\": false` and no " +
            "rate above 0 (the seed UI's all-off form) stops chaos and answers `{\"active\": false}`.",
          tags: ["chaos"],
        },
      },
    )
    .get(
      "",
      async () => {
        const active = await injector.current({ fresh: true });
        return json(active ? { active: true, ...active } : { active: false });
      },
      { detail: { operationId: "getChaos", summary: "The running chaos experiment", tags: ["chaos"], responses: state("The running experiment, or `{active: false}`") } },
    )
    .delete(
      "",
      async () => {
        await injector.disable();
        return json({ active: false });
      },
      { detail: { operationId: "stopChaos", summary: "Stop chaos on every replica", tags: ["chaos"], responses: state("Stopped") } },
    )
    .get(
      "/events",
      async ({ query }) => {
        const raw = (query as Record<string, string | undefined>).limit;
        let limit = 50;
        if (raw !== undefined) {
          limit = Number(raw);
          if (!Number.isInteger(limit) || limit < 1 || limit > 200) {
            return invalid("invalid_query", "limit must be an integer from 1 to 200", [
              { field: "limit", pointer: "", detail: `must be an integer from 1 to 200, got ${JSON.stringify(raw)}` },
            ]);
          }
        }
        return json({ events: await injector.events(limit), counts: injector.counts() });
      },
      {
        detail: {
          operationId: "chaosEvents",
          summary: "Recently injected faults",
          tags: ["chaos"],
          parameters: [{ name: "limit", in: "query", required: false, schema: { type: "integer", minimum: 1, maximum: 200, default: 50 } }],
          responses: {
            200: jsonResponse("The newest faults and this process's counts", {
              type: "object",
              required: ["events", "counts"],
              properties: { events: { type: "array", items: { type: "object" } }, counts: { type: "object" } },
            }),
            ...problemResponses("invalid_query"),
          },
        },
      },
    );
}
