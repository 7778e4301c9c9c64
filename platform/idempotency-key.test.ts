import { describe, expect, test } from "bun:test";
import { InvalidIdempotencyKeyError, MissingIdempotencyKeyError, optionalIdempotencyKey, parseIdempotencyKey } from "./idempotency-key.ts";

describe("Idempotency-Key header", () => {
  test("a bare token and the draft's quoted string read the same; surrounding spaces are dropped", () => {
    expect(parseIdempotencyKey("abc-1")).toBe("abc-1");
    expect(parseIdempotencyKey('"abc-1"')).toBe("abc-1");
    expect(parseIdempotencyKey("  abc-1 ")).toBe("abc-1");
  });

  test("missing or blank is a missing key; control characters, non-ASCII or 256 characters are malformed", () => {
    expect(() => parseIdempotencyKey(null)).toThrow(MissingIdempotencyKeyError);
    expect(() => parseIdempotencyKey("   ")).toThrow(MissingIdempotencyKeyError);
    expect(() => parseIdempotencyKey("a\u0001b")).toThrow(InvalidIdempotencyKeyError);
    expect(() => parseIdempotencyKey("clé")).toThrow(InvalidIdempotencyKeyError);
    expect(parseIdempotencyKey("k".repeat(255))).toBe("k".repeat(255));
    expect(() => parseIdempotencyKey("k".repeat(256))).toThrow(InvalidIdempotencyKeyError);
  });

  test("optional: absent is null, present follows the same rules", () => {
    expect(optionalIdempotencyKey(null)).toBeNull();
    expect(optionalIdempotencyKey("k1")).toBe("k1");
    expect(() => optionalIdempotencyKey("")).toThrow(MissingIdempotencyKeyError);
    expect(() => optionalIdempotencyKey("a b\u007f")).toThrow(InvalidIdempotencyKeyError);
  });
});
