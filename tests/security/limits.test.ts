import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HTTP_LIMITS } from "../../src/http/limits.ts";
import { INVENTORY_LIMITS } from "../../modules/inventory/index.ts";
import { ORDER_LIMITS } from "../../modules/orders/index.ts";
import { DRAIN } from "../../src/http/body-limits.ts";
import { newKey, startSystem, type TestSystem } from "../support/system.ts";
import { CONFIG_BACKEND, expectRefusal, rawRequest, snapshot } from "./support.ts";

/** Each input limit, at its edge and just past it, against a running system (admin open: development, no token). */
let sys: TestSystem;
beforeAll(async () => {
  sys = await startSystem(CONFIG_BACKEND, { RATE_LIMIT_PER_MIN: "0" });
}, 120_000);
afterAll(async () => {
  await sys?.stop();
});

const MiB = HTTP_LIMITS.bodyBytesMax;
const order = (body: unknown, key: string | null = newKey("lim"), headers: Record<string, string> = {}) =>
  sys.post("/api/orders", body, { ...(key === null ? {} : { "idempotency-key": key }), ...headers });
/** A valid order padded with spaces to exactly `size` bytes. */
const paddedOrder = (size: number) => {
  const json = JSON.stringify({ item_id: "ps5", quantity: 1 });
  return json + " ".repeat(size - json.length);
};
const typeOf = async (res: Response, context: string) => String((await expectRefusal(res, context)).type).split("/").pop();

/** A body that arrives as a stream: chunked transfer encoding, no Content-Length. */
function streamed(text: string, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.subarray(at, at + chunk));
      at += chunk;
    },
  });
}
const postStream = (text: string, key = newKey("stream")) =>
  fetch(`${sys.url}/api/orders`, {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": key },
    body: streamed(text),
    duplex: "half",
  } as RequestInit);

describe("body size: 1 MiB", () => {
  test("exactly 1 MiB is accepted, with Content-Length and chunked", async () => {
    expect((await order(paddedOrder(MiB))).status).toBe(201);
    expect((await postStream(paddedOrder(MiB))).status).toBe(201);
  });

  test("one byte more is a 413 problem, with Content-Length", async () => {
    expect(await typeOf(await order(paddedOrder(MiB + 1)), "CL 1 MiB + 1")).toBe("payload-too-large");
  });

  test("one byte more is a 413 problem when chunked, without Content-Length", async () => {
    const res = await postStream(paddedOrder(MiB + 1));
    expect(await typeOf(res, "chunked 1 MiB + 1")).toBe("payload-too-large");
    expect(res.headers.get("connection")).toBe("close");
  });

  test("a 5 MiB body is a 413 problem either way", async () => {
    expect(await typeOf(await order(paddedOrder(5 * MiB)), "CL 5 MiB")).toBe("payload-too-large");
    expect(await typeOf(await postStream(paddedOrder(5 * MiB)), "chunked 5 MiB")).toBe("payload-too-large");
  });

  test("a client announcing 500 MB gets the problem at once and the connection closed, unread", async () => {
    const res = await rawRequest(sys.server.port, `POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nIdempotency-Key: big\r\nContent-Length: 500000000\r\n\r\n`, { body: "{" });
    expect(res.status).toBe(413);
    expect(res.headers["content-type"]).toBe("application/problem+json");
    expect(JSON.parse(res.body).type).toEndWith("/payload-too-large");
    expect(res.closed).toBe(true);
  });

  test(`a chunked stream that never ends is read up to ${DRAIN.bytesMax / MiB} MiB, then cut off with a 413 problem`, async () => {
    const res = await rawRequest(sys.server.port, `POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nIdempotency-Key: endless\r\nTransfer-Encoding: chunked\r\n\r\n`, { streamBytes: 2 * DRAIN.bytesMax, timeoutMs: 30_000 });
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body).type).toEndWith("/payload-too-large");
    expect(res.closed).toBe(true);
  });

  test("the limit holds on every route, not only orders", async () => {
    for (const path of ["/api/inventory/deduct", "/api/admin/inventory", "/api/nothing-here", "/swagger"]) {
      const res = await sys.post(path, " ".repeat(MiB + 1));
      expect(await typeOf(res, path)).toBe("payload-too-large");
    }
  });
});

describe("idempotency keys: 1–255 printable characters", () => {
  test("1 and 255 characters are accepted", async () => {
    expect((await order({ item_id: "ps5", quantity: 1 }, "k")).status).toBe(201); // a fresh database: "k" is unused
    expect((await order({ item_id: "ps5", quantity: 1 }, newKey().padEnd(255, "k"))).status).toBe(201);
  });

  test("missing, empty, blank, 256+ characters or non-printable characters are 400 problems", async () => {
    const body = { item_id: "ps5", quantity: 1 };
    expect(await typeOf(await order(body, null), "no key")).toBe("missing-idempotency-key");
    expect(await typeOf(await order(body, ""), "empty key")).toBe("missing-idempotency-key");
    expect(await typeOf(await order(body, '""'), "quoted empty key")).toBe("invalid-idempotency-key");
    expect(await typeOf(await order(body, newKey().padEnd(256, "k")), "256")).toBe("invalid-idempotency-key");
    expect((await order(body, "k".repeat(5000))).status).toBe(400);
    for (const bad of ["a\tb", "caf\u00e9", "a\x7fb"]) expect(await typeOf(await order(body, bad), JSON.stringify(bad))).toBe("invalid-idempotency-key");
  });
});

describe("item ids and names", () => {
  test("an item id of 64 allowed characters is a valid request; 65, or a character outside the set, is a 400", async () => {
    expect((await order({ item_id: "a".repeat(64), quantity: 1 })).status).toBe(422); // unknown item: a valid question
    for (const id of ["a".repeat(65), "", "../etc/passwd", "-ps5", "ps5 ", "ps5\n", "ps\u00e95", "ps5/x"]) {
      expect(await typeOf(await order({ item_id: id, quantity: 1 }), JSON.stringify(id))).toBe("invalid-request");
      expect(await typeOf(await sys.post("/api/admin/inventory", { item_id: id, item_name: "x", quantity: 1 }), JSON.stringify(id))).toBe("invalid-request");
    }
    expect((await sys.get(`/api/inventory/${"a".repeat(65)}`)).status).toBe(400);
  });

  test(`item names: ${INVENTORY_LIMITS.itemNameMax} characters accepted, ${INVENTORY_LIMITS.itemNameMax + 1} or empty refused`, async () => {
    const id = `name-${Date.now()}`;
    expect((await sys.post("/api/admin/inventory", { item_id: id, item_name: "n".repeat(INVENTORY_LIMITS.itemNameMax), quantity: 1 })).status).toBe(201);
    for (const name of ["n".repeat(INVENTORY_LIMITS.itemNameMax + 1), "", 42, null]) {
      expect(await typeOf(await sys.post("/api/admin/inventory", { item_id: `${id}-2`, item_name: name, quantity: 1 }), JSON.stringify(name))).toBe("invalid-request");
    }
  });

  test("NUL and surrogate halves in any string are a 400 problem, never a database error", async () => {
    for (const esc of ["\\u0000", "\\ud800", "\\udfff"]) {
      const body = `{"item_id":"nul-${Date.now()}","item_name":"a${esc}b","quantity":1}`;
      expect(await typeOf(await sys.post("/api/admin/inventory", body), body)).toBe("invalid-characters");
    }
  });
});

describe("quantities: positive whole JSON numbers under a bound", () => {
  test(`1 and ${ORDER_LIMITS.quantityMax} are valid requests`, async () => {
    expect((await order({ item_id: "ps5", quantity: 1 })).status).toBe(201);
    const res = await order({ item_id: "ps5", quantity: ORDER_LIMITS.quantityMax });
    expect(res.status).toBe(422); // more than the stock: refused by inventory, not by validation
    expect((await res.json()).type).toEndWith("/insufficient-stock");
  });

  test("the string \"3\", fractions, zero, negatives, over the bound, and other types are 400 problems", async () => {
    for (const q of ["3", "1", 1.5, 0, -1, -0, ORDER_LIMITS.quantityMax + 1, 1e300, null, true, [1], { n: 1 }]) {
      expect(await typeOf(await order({ item_id: "ps5", quantity: q }), JSON.stringify(q))).toBe("invalid-request");
    }
    expect(await typeOf(await order('{"item_id":"ps5","quantity":1e400}'), "1e400")).toBe("invalid-request");
  });

  test("stock and restock bounds hold on the admin API", async () => {
    for (const q of [-1, 1.5, "5", INVENTORY_LIMITS.stockMax + 1]) {
      expect(await typeOf(await sys.post("/api/admin/inventory", { item_id: `q-${Date.now()}`, item_name: "q", quantity: q }), JSON.stringify(q))).toBe("invalid-request");
    }
    for (const q of [0, -1, 1.5, "5", INVENTORY_LIMITS.restockMax + 1]) {
      expect(await typeOf(await sys.post("/api/admin/inventory/ps5/restock", { quantity: q }), JSON.stringify(q))).toBe("invalid-request");
    }
  });
});

describe("unknown fields are refused everywhere", () => {
  test("on every body the API takes", async () => {
    const before = await snapshot(sys);
    const cases: Array<[string, Record<string, unknown>, Record<string, string>?]> = [
      ["/api/orders", { item_id: "ps5", quantity: 1, price: 0 }, { "idempotency-key": newKey() }],
      ["/api/inventory/deduct", { order_id: crypto.randomUUID(), item_id: "ps5", quantity: 1, force: true }],
      ["/api/inventory/release", { order_id: crypto.randomUUID(), all: true }],
      ["/api/admin/inventory", { item_id: "extra", item_name: "x", quantity: 1, reserved_quantity: 5 }],
      ["/api/admin/inventory/ps5/restock", { quantity: 1, item_id: "dualsense" }],
    ];
    for (const [path, body, headers] of cases) {
      const problem = await expectRefusal(await sys.post(path, body, headers), path);
      expect(problem.type).toEndWith("/invalid-request");
    }
    expect(await snapshot(sys)).toEqual(before);
  });
});

describe("property names that shadow Object.prototype", () => {
  test("are a 400 problem on every body, at any depth, never a crash", async () => {
    for (const body of [
      '{"item_id":{"toString":0},"quantity":1}',
      '{"item_id":"ps5","quantity":{"valueOf":1}}',
      '{"item_id":"ps5","quantity":1,"__proto__":{"admin":true}}',
      '{"item_id":[{"\\u0074oString":0}],"quantity":1}',
    ]) {
      expect(await typeOf(await order(body), body)).toBe("invalid-request");
    }
    expect(await typeOf(await sys.post("/api/inventory/deduct", '{"order_id":{"toString":0},"item_id":"ps5","quantity":1}'), "deduct")).toBe("invalid-request");
  });
});

describe(`JSON depth: at most ${HTTP_LIMITS.jsonDepthMax} levels`, () => {
  const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;
  test("at the limit the body reaches the schema; one level more is refused before parsing", async () => {
    // The object is level 1, so the array inside may nest depth - 1 more.
    const at = await order(`{"item_id":"ps5","quantity":1,"x":${nested(HTTP_LIMITS.jsonDepthMax - 1)}}`);
    expect(await typeOf(at, "at the limit")).toBe("invalid-request");
    const past = await order(`{"item_id":"ps5","quantity":1,"x":${nested(HTTP_LIMITS.jsonDepthMax)}}`);
    expect(await typeOf(past, "past the limit")).toBe("json-too-deep");
  });

  test("half a million levels neither crash nor hang the server", async () => {
    const started = performance.now();
    for (const body of [nested(500_000), `${'{"a":'.repeat(150_000)}1${"}".repeat(150_000)}`]) {
      expect(await typeOf(await order(body), "deep")).toBe("json-too-deep");
    }
    expect(performance.now() - started).toBeLessThan(10_000);
    expect((await sys.get("/health/live")).status).toBe(200);
  });
});

describe("content types: the API speaks JSON", () => {
  test("JSON in any spelling is accepted", async () => {
    for (const ct of ["application/json; charset=utf-8", "Application/JSON", "application/vnd.valerix+json"]) {
      expect((await order({ item_id: "ps5", quantity: 1 }, newKey(), { "content-type": ct })).status).toBe(201);
    }
  });

  test("anything else with a body is a 415 problem, on every API route", async () => {
    const body = JSON.stringify({ item_id: "ps5", quantity: 1 });
    for (const ct of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "text/json"]) {
      const res = await fetch(`${sys.url}/api/orders`, { method: "POST", headers: { "content-type": ct, "idempotency-key": newKey() }, body });
      expect(await typeOf(res, ct)).toBe("unsupported-media-type");
    }
    // No Content-Type at all (fetch would add text/plain for a string, so send bytes).
    const none = await fetch(`${sys.url}/api/orders`, { method: "POST", headers: { "idempotency-key": newKey() }, body: new TextEncoder().encode(body) });
    expect(await typeOf(none, "no content type")).toBe("unsupported-media-type");
    const form = await fetch(`${sys.url}/api/inventory/release`, { method: "POST", body: new URLSearchParams({ order_id: crypto.randomUUID() }) });
    expect(await typeOf(form, "form to release")).toBe("unsupported-media-type");
  });

  test("malformed JSON is a 400 problem", async () => {
    for (const text of ["{", "{'item_id':'ps5'}", '{"item_id":"ps5","quantity":1,}', "\u00ff\u00fe"]) {
      expect(await typeOf(await order(text), text)).toBe("malformed-json");
    }
  });
});

test("no X-Powered-By, and no Server header naming the runtime", async () => {
  for (const res of [await sys.get("/api/inventory"), await sys.get("/nothing"), await order("{")]) {
    expect(res.headers.get("x-powered-by")).toBeNull();
    expect(res.headers.get("server") ?? "").not.toMatch(/bun|elysia|node/i);
  }
});
