import { problemFor, type Problem, type ProblemCode } from "../../platform/problems.ts";
import { databaseError } from "../../platform/db-errors.ts";

/**
 * Problems as HTTP responses: the catalog (codes, titles, statuses) is `platform/problems.ts`;
 * this file only writes one out as `application/problem+json`.
 */
export function problemResponse(problem: Problem, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(problem), {
    status: problem.status,
    headers: { "content-type": "application/problem+json", ...headers },
  });
}

export function problem(code: ProblemCode, detail?: string, extensions: Record<string, unknown> = {}, headers: Record<string, string> = {}): Response {
  return problemResponse(problemFor(code, detail, extensions), headers);
}

/** Response headers an error asks for: `Retry-After` when it says when to come back. */
export function errorHeaders(err: unknown): Record<string, string> {
  const after = (databaseError(err) as { retryAfterS?: unknown } | null)?.retryAfterS;
  return typeof after === "number" && after > 0 ? { "retry-after": String(Math.ceil(after)) } : {};
}
