import { PROBLEM_BASE, problemFor, isProblemCode, type ProblemCode } from "./problems.ts";

/**
 * The pieces of the OpenAPI document every floor writes alike: references to the shared schemas,
 * JSON answers, and problem answers built from the catalog, so the `type`s a route documents are
 * the ones `problemFor` writes. The HTTP layer assembles the document (`src/http/openapi.ts`).
 */

export type JsonObject = Record<string, unknown>;
/** A response object; loose where the OpenAPI typings of Elysia and of this file would disagree. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ApiResponse = { description: string; content?: any; headers?: any };

/** `{ $ref: "#/components/schemas/Order" }`. */
export const schemaRef = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** The RFC 9457 body every error is, as a JSON Schema; routes narrow its `type` per status. */
export const PROBLEM_SCHEMA: JsonObject = {
  type: "object",
  description: "RFC 9457 problem details. Some problems carry extensions (a refused order's fields, `errors[]` for validation).",
  required: ["type", "title", "status"],
  properties: {
    type: { type: "string", format: "uri", description: "Stable identifier of the problem", example: `${PROBLEM_BASE}not-found` },
    title: { type: "string", description: "Short, stable summary of the problem type" },
    status: { type: "integer", minimum: 400, maximum: 599, description: "The HTTP status" },
    detail: { type: "string", description: "What went wrong this time, for people" },
    instance: { type: "string" },
    errors: {
      type: "array",
      description: "Validation problems: one entry per field and rule",
      items: { type: "object", properties: { field: { type: "string" }, message: { type: "string" } } },
    },
  },
  additionalProperties: true,
};

const PROBLEM_MEDIA = "application/problem+json";

/** One status's problem answer: the `Problem` schema with `type` narrowed to `codes`, an example for each. */
function problemResponse(codes: ProblemCode[]): ApiResponse {
  const problems = codes.map((code) => problemFor(code));
  return {
    description: [...new Set(problems.map((p) => p.title))].join("; "),
    content: {
      [PROBLEM_MEDIA]: {
        schema: { allOf: [schemaRef("Problem"), { type: "object", properties: { type: { type: "string", enum: problems.map((p) => p.type) } } }] },
        examples: Object.fromEntries(problems.map((p, i) => [codes[i]!, { summary: p.title, value: p }])),
      },
    },
  };
}

/**
 * Problem answers for the codes a route can refuse with, grouped by status:
 * `problemResponses("not_found")` → `{ 404: { description, content: { "application/problem+json": … } } }`.
 */
export function problemResponses(...codes: ProblemCode[]): Record<string, ApiResponse> {
  const byStatus = new Map<number, ProblemCode[]>();
  for (const code of codes) {
    const status = problemFor(code).status;
    const list = byStatus.get(status) ?? [];
    if (!list.includes(code)) list.push(code);
    byStatus.set(status, list);
  }
  return Object.fromEntries([...byStatus].map(([status, list]) => [String(status), problemResponse(list)]));
}

/** The problem codes a response documents (its examples are keyed by code). */
export function problemCodesOf(response: unknown): ProblemCode[] {
  const media = (response as { content?: Record<string, { examples?: Record<string, unknown> }> } | undefined)?.content?.[PROBLEM_MEDIA];
  return Object.keys(media?.examples ?? {}).filter(isProblemCode);
}

/**
 * Adds problem codes to a responses object. A status that already documents problems gets the
 * union; one that documents another body (a health report's 503) keeps it, and gains the problem
 * media type beside it.
 */
export function withProblems(responses: Record<string, ApiResponse>, codes: ProblemCode[]): Record<string, ApiResponse> {
  const out = { ...responses };
  for (const [status, added] of Object.entries(problemResponses(...codes))) {
    const existing = out[status];
    if (!existing) {
      out[status] = added;
      continue;
    }
    const merged = problemResponse([...new Set([...problemCodesOf(existing), ...problemCodesOf(added)])]);
    const content = { ...((existing.content as JsonObject | undefined) ?? {}), ...(merged.content as JsonObject) };
    const description = problemCodesOf(existing).length > 0 ? merged.description : `${existing.description}; ${merged.description}`;
    out[status] = { ...existing, description, content };
  }
  return out;
}

/** A JSON answer with a schema and, when given, one example. */
export function jsonResponse(description: string, schema: JsonObject, example?: unknown, headers?: JsonObject): ApiResponse {
  return {
    description,
    ...(headers ? { headers } : {}),
    content: { "application/json": { schema, ...(example === undefined ? {} : { example }) } },
  };
}
