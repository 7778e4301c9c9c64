import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { discard, inspectJson, isJsonMediaType, jsonHazard, readBounded } from "./body-limits.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

/** The hazard by a slow, obvious route: parse, then walk the value. */
function reference(value: unknown, maxDepth: number): string | undefined {
  let worst: string | undefined;
  const strings = (s: string) => {
    if (s.includes("\u0000")) return "nul_character";
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff) {
        const next = s.charCodeAt(i + 1);
        if (next >= 0xdc00 && next <= 0xdfff) i++;
        else return "unpaired_surrogate";
      } else if (c >= 0xdc00 && c <= 0xdfff) return "unpaired_surrogate";
    }
    return undefined;
  };
  const walk = (v: unknown, depth: number): void => {
    if (worst) return;
    if (typeof v === "string") {
      worst = strings(v);
      return;
    }
    if (v === null || typeof v !== "object") return;
    if (depth + 1 > maxDepth) {
      worst = "too_deep";
      return;
    }
    for (const [k, child] of Object.entries(v)) {
      if (worst) return;
      if (!Array.isArray(v)) worst = strings(k);
      walk(child, depth + 1);
    }
  };
  walk(value, 0);
  return worst;
}

describe("jsonHazard", () => {
  test("agrees with parsing and walking, on any JSON text (escaped or not)", () => {
    const text = fc.oneof(
      fc.json({ maxDepth: 8 }),
      fc.json({ maxDepth: 8, noUnicodeString: false }),
      fc.jsonValue({ maxDepth: 8 }).map((v) => JSON.stringify(v, null, 1)),
      // Lone surrogates and NUL, which JSON.stringify writes as escapes.
      fc.array(fc.oneof(fc.string(), fc.constantFrom("\u0000", "\ud800", "\udfff", "\ud83d\ude00", 'a"b\\')), { maxLength: 5 }).map((a) => JSON.stringify(a)),
    );
    fc.assert(
      fc.property(text, fc.integer({ min: 1, max: 6 }), (json, max) => {
        // Kinds can differ when a body has several hazards; whether it has one must not.
        const expected = reference(JSON.parse(json), max);
        const got = jsonHazard(bytes(json), max);
        expect(got === undefined).toBe(expected === undefined);
        if (expected === "too_deep" && !/\\u(?:0000|d[89a-f])/i.test(json)) expect(got).toBe("too_deep");
      }),
      { numRuns: 1500 },
    );
  });

  test("counts brackets inside strings as text, and escaped quotes as part of the string", () => {
    expect(jsonHazard(bytes(JSON.stringify({ a: "[[[[[[[[[[" })), 2)).toBeUndefined();
    expect(jsonHazard(bytes(JSON.stringify({ a: 'x\\"[[[[[["' })), 2)).toBeUndefined();
    expect(jsonHazard(bytes('{"a":[[1]]}'), 3)).toBeUndefined();
    expect(jsonHazard(bytes('{"a":[[[1]]]}'), 3)).toBe("too_deep");
  });

  test("finds NUL and surrogate halves only as escapes in strings", () => {
    expect(jsonHazard(bytes('{"a":"x\\u0000"}'), 5)).toBe("nul_character");
    expect(jsonHazard(bytes('{"x\\u0000":1}'), 5)).toBe("nul_character");
    expect(jsonHazard(bytes('{"a":"\\ud800"}'), 5)).toBe("unpaired_surrogate");
    expect(jsonHazard(bytes('{"a":"\\uDC00x"}'), 5)).toBe("unpaired_surrogate");
    expect(jsonHazard(bytes('{"a":"\\ud83d\\ude00"}'), 5)).toBeUndefined();
    expect(jsonHazard(bytes('{"a":"\\\\u0000"}'), 5)).toBeUndefined(); // an escaped backslash, then text
    expect(jsonHazard(bytes('{"a":"\\u00e9"}'), 5)).toBeUndefined();
  });

  test("is linear: a megabyte of brackets or escapes takes milliseconds", () => {
    const deep = bytes("[".repeat(1 << 20));
    const escapes = bytes(`"${"\\u00e9".repeat(170_000)}"`);
    const started = performance.now();
    expect(jsonHazard(deep, 32)).toBe("too_deep");
    expect(jsonHazard(escapes, 32)).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe("readBounded", () => {
  const stream = (sizes: number[]) =>
    new ReadableStream<Uint8Array<ArrayBuffer>>({
      start(c) {
        for (const n of sizes) c.enqueue(new Uint8Array(n).fill(65));
        c.close();
      },
    });

  test("returns every byte up to the limit, joined", async () => {
    expect((await readBounded(stream([3, 4, 3]), 10))?.byteLength).toBe(10);
    expect(await readBounded(stream([]), 10)).toEqual(new Uint8Array(0));
  });

  test("gives up one byte past the limit and leaves the rest unread for the caller to discard", async () => {
    let pulled = 0;
    let cancelled = false;
    const endless = new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull(c) {
        pulled++;
        c.enqueue(new Uint8Array(1000));
      },
      cancel() {
        cancelled = true;
      },
    });
    expect(await readBounded(endless, 10_000)).toBeNull();
    expect(cancelled).toBe(false);
    expect(endless.locked).toBe(false);
    expect(pulled).toBeLessThan(20);
    expect(await discard(endless, { maxBytes: 5_000, timeoutMs: 5_000 })).toBe(false);
    expect(cancelled).toBe(true);
    expect(await readBounded(stream([10, 1]), 10)).toBeNull();
  });
});

describe("discard", () => {
  const chunks = (n: number, size: number) => {
    let sent = 0;
    return new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent++ === n) return c.close();
        c.enqueue(new Uint8Array(size));
      },
    });
  };

  test("reads a body to its end within the bounds", async () => {
    expect(await discard(chunks(64, 1024), { maxBytes: 64 * 1024, timeoutMs: 5_000 })).toBe(true);
    expect(await discard(chunks(0, 1024), { maxBytes: 0, timeoutMs: 5_000 })).toBe(true);
  });

  test("stops past maxBytes and cancels the stream", async () => {
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      pull: (c) => c.enqueue(new Uint8Array(1024)),
      cancel: () => void (cancelled = true),
    });
    expect(await discard(body, { maxBytes: 10 * 1024, timeoutMs: 5_000 })).toBe(false);
    expect(cancelled).toBe(true);
  });

  test("stops at the deadline when the client stalls mid-body, and cancels the stream", async () => {
    let cancelled = false;
    const stalled = new ReadableStream<Uint8Array>({
      start: (c) => c.enqueue(new Uint8Array(10)),
      cancel: () => void (cancelled = true),
    });
    const started = performance.now();
    expect(await discard(stalled, { maxBytes: 1024, timeoutMs: 50 })).toBe(false);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(cancelled).toBe(true);
  });

  test("a client that goes away mid-body is not an error", async () => {
    const broken = new ReadableStream<Uint8Array>({
      start: (c) => c.enqueue(new Uint8Array(10)),
      pull: (c) => c.error(new Error("connection reset")),
    });
    expect(await discard(broken, { maxBytes: 1024, timeoutMs: 5_000 })).toBe(false);
  });
});

describe("isJsonMediaType", () => {
  test("takes application/json and +json types with any parameters, in any case", () => {
    for (const t of ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/problem+json", "application/vnd.api+json;x=y"]) {
      expect(isJsonMediaType(t)).toBe(true);
    }
  });
  test("refuses everything else", () => {
    for (const t of [null, "", "text/plain", "text/json", "application/jsonp", "application/json-seq", "application/x-www-form-urlencoded", "multipart/form-data; boundary=a", "json", "application/+json"]) {
      expect(isJsonMediaType(t)).toBe(false);
    }
  });
});

describe("inspectJson", () => {
  test("finds a property named after an Object.prototype member at any depth, however it is spelled", () => {
    for (const [text, key] of [
      ['{"toString":0}', "toString"],
      ['{"a":[{"valueOf":{}}]}', "valueOf"],
      ['{"__proto__":{"admin":true}}', "__proto__"],
      ['{"\\u0074oString":1}', "toString"],
      ['[{"constructor":{"prototype":1}}]', "prototype"],
    ] as const) {
      expect(inspectJson(text)).toEqual({ ok: false, reason: "reserved_key", key });
    }
  });

  test("passes ordinary bodies, including such words as values", () => {
    for (const text of ['{"item_id":"ps5","quantity":1}', '["toString"]', '{"note":"__proto__"}', "null", '"x"', "[]"]) {
      expect(inspectJson(text)).toEqual({ ok: true });
    }
  });

  test("calls malformed text malformed", () => {
    for (const text of ["{", "", "  ", "{'a':1}", "[1,]"]) expect(inspectJson(text)).toEqual({ ok: false, reason: "malformed" });
  });
});
