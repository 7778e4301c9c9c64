import { describe, expect, test } from "bun:test";
import { DatabaseUnavailableError } from "../../platform/db-errors.ts";
import { errorToProblem, statusOf } from "../../platform/problems.ts";
import { errorHeaders } from "./problem.ts";

describe("database unavailability as a problem", () => {
  test("DatabaseUnavailableError is a 503 with Retry-After, and says nothing of the driver", () => {
    const err = new DatabaseUnavailableError("The database is unavailable", "57P01", { cause: new Error("terminating connection due to administrator command") });
    const p = errorToProblem(err);
    expect(p).toMatchObject({ status: 503, type: "https://valerix.dev/problems/database-unavailable", title: "The database is unavailable" });
    expect(JSON.stringify(p)).not.toContain("57P01");
    expect(JSON.stringify(p)).not.toContain("administrator");
    expect(errorHeaders(err)).toEqual({ "retry-after": "2" });
    expect(statusOf("database_unavailable")).toBe(503);
  });

  test("a driver's connection error that arrives unwrapped is mapped the same way", () => {
    const raw = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
    expect(errorToProblem(raw).status).toBe(503);
    expect(errorHeaders(raw)).toEqual({ "retry-after": "2" });
  });

  test("other errors keep their mapping and get no Retry-After", () => {
    const bug = new TypeError("x is undefined");
    expect(errorToProblem(bug).status).toBe(500);
    expect(errorHeaders(bug)).toEqual({});
  });
});
