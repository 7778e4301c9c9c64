import { describe, expect, test } from "bun:test";
import { databaseError, DatabaseUnavailableError, unavailabilityReason } from "./db-errors.ts";

describe("database unavailability", () => {
  test.each([
    [{ code: "57P01", message: "terminating connection due to administrator command" }, "57P01"],
    [{ code: "57P03", message: "the database system is shutting down" }, "57P03"],
    [{ code: "08006", message: "connection failure" }, "08006"],
    [{ code: "ECONNREFUSED", message: "connect ECONNREFUSED 127.0.0.1:5432" }, "ECONNREFUSED"],
    [{ code: "ERR_POSTGRES_CONNECTION_REFUSED", message: "Failed to connect" }, "ERR_POSTGRES_CONNECTION_REFUSED"],
    [{ code: "ERR_POSTGRES_SERVER_ERROR", errno: "57P01", message: "terminating connection" }, "57P01"],
    [new Error("Connection terminated unexpectedly"), "connection_lost"],
    [new Error("Client has encountered a connection error and is not queryable"), "connection_lost"],
    [new Error("timeout exceeded when trying to connect"), "connection_lost"],
  ])("%o is an unavailability (%s)", (err, reason) => {
    expect(unavailabilityReason(err)).toBe(reason);
    const mapped = databaseError(err);
    expect(mapped).toBeInstanceOf(DatabaseUnavailableError);
    expect(mapped).toMatchObject({ code: "database_unavailable", reason, retryAfterS: 2 });
    expect((mapped as Error).cause).toBe(err);
  });

  test.each([
    [{ code: "23505", message: "duplicate key value violates unique constraint" }],
    [{ code: "23514", message: "new row violates check constraint" }],
    [{ code: "ERR_POSTGRES_SERVER_ERROR", errno: "42P01", message: "relation does not exist" }],
    [new Error("something else")],
    ["a string"],
    [null],
  ])("%o is not: it is returned as it was", (err) => {
    expect(unavailabilityReason(err)).toBeNull();
    expect(databaseError(err)).toBe(err);
  });
});
