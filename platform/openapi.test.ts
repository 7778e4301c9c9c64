import { describe, expect, test } from "bun:test";
import { jsonResponse, problemCodesOf, problemResponses, withProblems } from "./openapi.ts";
import { problemFor } from "./problems.ts";

const typesOf = (response: unknown) =>
  (response as { content: Record<string, { schema: { allOf: [unknown, { properties: { type: { enum: string[] } } }] } }> }).content[
    "application/problem+json"
  ]!.schema.allOf[1].properties.type.enum;

describe("problem answers in the OpenAPI document", () => {
  test("group codes by status, narrow `type` to the catalog's URIs and give an example per code", () => {
    const responses = problemResponses("not_found", "invalid_request", "malformed_json");
    expect(Object.keys(responses).sort()).toEqual(["400", "404"]);
    expect(typesOf(responses["400"])).toEqual([problemFor("invalid_request").type, problemFor("malformed_json").type]);
    expect(problemCodesOf(responses["400"])).toEqual(["invalid_request", "malformed_json"]);
    expect(responses["404"]!.description).toBe(problemFor("not_found").title);
  });

  test("merging adds codes to a status once, and keeps another body documented beside the problem", () => {
    const merged = withProblems(problemResponses("invalid_request"), ["invalid_request", "json_too_deep", "shutting_down"]);
    expect(problemCodesOf(merged["400"])).toEqual(["invalid_request", "json_too_deep"]);
    const health = withProblems({ 503: jsonResponse("Degraded", { type: "object" }) }, ["shutting_down"]);
    expect(Object.keys(health["503"]!.content).sort()).toEqual(["application/json", "application/problem+json"]);
    expect(health["503"]!.description).toStartWith("Degraded; ");
  });
});
