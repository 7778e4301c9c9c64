import { toOpenAPISchema } from "@elysiajs/openapi";
import type { AnyElysia } from "elysia";
import { PROBLEM_SCHEMA, withProblems, type ApiResponse, type JsonObject } from "../../platform/openapi.ts";
import type { ProblemCode } from "../../platform/problems.ts";
import { VERSION } from "../version.ts";

/**
 * The OpenAPI document at `/swagger/json`. `@elysiajs/openapi` reads the routes' schemas; this
 * file makes the result exact: what the outer layer (`createFetch`, the guards) answers before a
 * route runs is added to every operation it can happen to, bodies are JSON only (anything else
 * is a 415), admin and service-token routes carry `security`, and the shared schemas are
 * registered. What a route itself answers it declares in its `detail.responses`.
 */

export const DOCUMENT_TAGS = [
  { name: "orders", description: "Idempotent order creation and lookup" },
  { name: "inventory", description: "Stock levels and at-most-once deductions" },
  { name: "admin", description: "Catalog administration (Bearer ADMIN_TOKEN)" },
  { name: "chaos", description: "Fault injection at inventory's edge (Bearer ADMIN_TOKEN)" },
  { name: "ops", description: "Health and metrics" },
];

const METHODS = ["get", "put", "post", "delete", "patch", "head", "options", "trace"] as const;
const UNSAFE = new Set(["post", "put", "patch", "delete"]);

type Operation = JsonObject & { responses?: Record<string, ApiResponse>; parameters?: JsonObject[]; security?: unknown; requestBody?: JsonObject };
type Document = JsonObject & { paths: Record<string, Record<string, Operation>>; components: JsonObject };

const toOpenApiPath = (path: string) => {
  const p = path.replace(/:([^/]+)/g, "{$1}");
  return p.length > 1 && p.endsWith("/") ? p.slice(0, -1) : p;
};

/**
 * The problems the outer layer (`createFetch`) and the guards can answer on an operation before
 * its route runs. They screen the request, not the route: a GET to `/api/` that carries a form
 * body is a 415 like a POST, so the body refusals apply to every `/api/` operation.
 */
function outerProblems(path: string, method: string, op: Operation): ProblemCode[] {
  // Any path: a request target no URL can hold (400), a Content-Length over the cap (413), an error (500).
  const codes: ProblemCode[] = ["invalid_request", "payload_too_large", "internal_error"];
  if (path !== "/health/live") codes.push("shutting_down");
  if (path.startsWith("/api/")) codes.push("malformed_json", "json_too_deep", "invalid_characters", "unsupported_media_type");
  if (path.startsWith("/api/") && UNSAFE.has(method)) codes.push("cross_site_request");
  if (path === "/api/admin" || path.startsWith("/api/admin/")) codes.push("unauthorized", "admin_closed");
  else if (Array.isArray(op.security) && op.security.length > 0) codes.push("unauthorized", "inventory_writes_closed");
  if (path === "/api/orders" && method === "post") codes.push("rate_limited");
  // Every route that reads or writes PostgreSQL answers 503 with Retry-After while it is away.
  if (path.startsWith("/api/") && !path.startsWith("/api/admin/chaos")) codes.push("database_unavailable");
  return codes;
}

/** Builds the document for `app`, from the routes as registered; `servers` is added per request. */
export function buildDocument(app: AnyElysia, opts: { schemas: Record<string, JsonObject> }): Document {
  const generated = toOpenAPISchema(app, { staticFile: true }) as unknown as { paths: Record<string, Record<string, Operation>> };
  const paths: Document["paths"] = {};
  for (const [rawPath, item] of Object.entries(generated.paths)) {
    const path = toOpenApiPath(rawPath);
    paths[path] = { ...paths[path], ...item };
  }
  // The generator replaces a route's declared responses and parameters with the ones its schemas
  // imply; the route's own declaration is the fuller one, so it is laid back on top.
  type Route = { method: string; path: string; hooks?: { detail?: Operation & { hide?: boolean } } };
  // The same list the generator reads (protected in Elysia's types, public at run time).
  const routes = (app as unknown as { getGlobalRoutes(): Route[] }).getGlobalRoutes();
  for (const route of routes) {
    const detail = route.hooks?.detail;
    const op = paths[toOpenApiPath(route.path)]?.[route.method.toLowerCase()];
    if (!op || !detail || detail.hide) continue;
    if (detail.responses) op.responses = { ...op.responses, ...detail.responses };
    if (detail.parameters) {
      const key = (p: JsonObject) => `${p.in as string}:${String(p.name).toLowerCase()}`;
      const declared = new Set(detail.parameters.map(key));
      op.parameters = [...(op.parameters ?? []).filter((p) => !declared.has(key(p))), ...detail.parameters];
    }
    // A declared body adds what the schema cannot say (an example) to the generated one.
    if (detail.requestBody && op.requestBody) {
      const generatedJson = ((op.requestBody.content ?? {}) as Record<string, JsonObject>)["application/json"] ?? {};
      const declaredJson = ((detail.requestBody.content ?? {}) as Record<string, JsonObject>)["application/json"] ?? {};
      op.requestBody = { ...op.requestBody, content: { "application/json": { ...generatedJson, ...declaredJson } } };
    }
  }
  for (const [path, item] of Object.entries(paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      // The API reads JSON only: the outer layer answers 415 to anything else.
      if (op.requestBody) {
        const content = (op.requestBody.content ?? {}) as Record<string, JsonObject>;
        op.requestBody = { ...op.requestBody, content: { "application/json": content["application/json"] ?? Object.values(content)[0] ?? {} } };
        if (op.requestBody.description === undefined) delete op.requestBody.description;
      }
      if (path === "/api/admin" || path.startsWith("/api/admin/")) op.security = [{ bearer: [] }];
      op.responses = withProblems(op.responses ?? {}, outerProblems(path, method, op));
      // Public: said outright, so a reader (and a linter) can tell it from a forgotten one.
      op.security ??= [];
    }
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Valerix API",
      version: VERSION,
      description:
        "Orders and inventory that stay correct when things break. Every error is an RFC 9457 problem (`application/problem+json`) with a stable `type`; the `type`s each operation can answer are listed with it.",
      license: { name: "MIT", identifier: "MIT" },
    },
    tags: DOCUMENT_TAGS,
    paths,
    components: {
      schemas: { Problem: PROBLEM_SCHEMA, ...opts.schemas },
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "`ADMIN_TOKEN` for `/api/admin/…`; `INVENTORY_TOKEN` (or `ADMIN_TOKEN`) for inventory's service routes" },
      },
    },
  };
}

/**
 * `GET /swagger/json`: the document, built once, with `servers` naming the origin it was asked
 * for (so Swagger UI's "Try it out" and generated clients call the host the reader sees).
 */
export function openapiDocumentRoute(app: AnyElysia, opts: { schemas: Record<string, JsonObject>; publicUrl?: string }) {
  let cached: Document | undefined;
  return (request: Request) => {
    cached ??= buildDocument(app, opts);
    const url = opts.publicUrl ?? new URL(request.url).origin;
    return Response.json({ ...cached, servers: [{ url, description: "This Valerix instance" }] });
  };
}

