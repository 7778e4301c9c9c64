import fc from "fast-check";
import { HTTP_LIMITS } from "../../src/http/limits.ts";
import { INVENTORY_LIMITS } from "../../modules/inventory/index.ts";
import { ORDER_LIMITS } from "../../modules/orders/index.ts";

/**
 * Generators of hostile requests. Each one is invalid by construction (a filter checks it against
 * the rule, not against the code under test), so "never a 2xx" is a fair demand of every answer.
 */

export interface HostileRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** Sent as is; `undefined` sends no body. */
  body?: string;
  /** The one status this request must get, where the rule pins it down. */
  expect?: number;
}

const ITEM_ID = new RegExp(INVENTORY_LIMITS.itemIdPattern);
/** The idempotency key rule of the API: 1–255 printable ASCII, no surrounding blanks (quotes allowed around it). */
const KEY = /^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$/;

export const isValidItemId = (v: unknown) => typeof v === "string" && ITEM_ID.test(v);
export const isValidQuantity = (v: unknown, max: number = ORDER_LIMITS.quantityMax, min = 1) =>
  typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
/** What the server sees after `fetch` and the key parser trim it and drop one pair of quotes. */
export function isValidKey(v: string | undefined): boolean {
  if (v === undefined) return false;
  let k = v.trim();
  if (k.length >= 2 && k.startsWith('"') && k.endsWith('"')) k = k.slice(1, -1);
  return KEY.test(k);
}

const printable = (min: number, max: number) =>
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: min, maxLength: max });

/** Characters `fetch` sends untouched in a header but the key rule forbids: tab, DEL, Latin-1. */
const headerOddChar = fc.oneof(fc.constant("\t"), fc.constant("\x7f"), fc.integer({ min: 0xa0, max: 0xff }).map((c) => String.fromCharCode(c)));

export const validKey = fc
  .tuple(fc.uuid(), printable(0, 40))
  .map(([u, s]) => `${u}${s}`.replaceAll(" ", "-").slice(0, 255))
  .filter(isValidKey);

export const invalidKey: fc.Arbitrary<string | undefined> = fc
  .oneof(
    fc.constant(undefined),
    fc.constantFrom("", " ", "   ", '""', '" "'),
    printable(256, 1100),
    fc.tuple(printable(0, 20), headerOddChar, printable(0, 20)).map(([a, c, b]) => `x${a}${c}${b}x`),
  )
  .filter((k) => !isValidKey(k));

export const validItemId = fc.oneof(fc.constantFrom("ps5", "dualsense"), fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/));

/** Objects whose property names shadow Object.prototype: they break `${value}` and naive merges. */
const trickyObject = fc.oneof(
  fc.constantFrom("toString", "valueOf", "__proto__", "constructor", "hasOwnProperty", "prototype", "toLocaleString").chain((k) =>
    fc.jsonValue({ maxDepth: 1 }).map((v) => JSON.parse(`{${JSON.stringify(k)}:${JSON.stringify(v) ?? "null"}}`) as unknown),
  ),
  fc.constant(JSON.parse('[{"\\u0074oString":0}]') as unknown),
);

/** Any JSON value at all, as a wrong type for a field. */
const anyJson = fc.oneof({ arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 4 }, { arbitrary: trickyObject, weight: 1 });

export const invalidItemId: fc.Arbitrary<unknown> = fc
  .oneof(
    fc.constantFrom("", ".", "..", "../../etc/passwd", "-x", "_x", ".env", "a/b", "a b", "a\u0000b", "ps5\n", "ps5 ", "%2e%2e", "p\u00e95", "ps5;drop table"),
    fc.string({ minLength: 65, maxLength: 400 }),
    fc.tuple(fc.stringMatching(/^[A-Za-z0-9]{1,10}$/), fc.string({ minLength: 1, maxLength: 5 }), fc.stringMatching(/^[a-z0-9]{0,10}$/)).map(([a, b, c]) => a + b + c),
    anyJson,
  )
  .filter((v) => !isValidItemId(v));

export const invalidQuantity = (max: number = ORDER_LIMITS.quantityMax, min = 1): fc.Arbitrary<unknown> =>
  fc
    .oneof(
      fc.integer({ min: -1_000_000, max: min - 1 }),
      fc.integer({ min: max + 1, max: Number.MAX_SAFE_INTEGER }),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.integer({ min: 1, max: 100 }).map((n) => n + 0.5),
      fc.integer({ min: 1, max: 100 }).map(String),
      fc.constantFrom("3", "1e2", "0x10", "", " 1", "Infinity", "NaN", true, false, null, [1], { value: 1 }),
      anyJson,
    )
    .filter((v) => !isValidQuantity(v, max, min));

/** Text that is certainly not JSON, or JSON that certainly breaks a rule before any schema runs. */
export const brokenJsonText = (valid: string) =>
  fc.oneof(
    fc.string({ maxLength: 200 }).filter((s) => {
      try {
        JSON.parse(s);
        return false;
      } catch {
        return true;
      }
    }),
    fc.integer({ min: 1, max: Math.max(1, valid.length - 1) }).map((n) => valid.slice(0, n)),
    fc.integer({ min: HTTP_LIMITS.jsonDepthMax + 1, max: 5_000 }).map((d) => `${valid.slice(0, -1)},"x":${"[".repeat(d)}${"]".repeat(d)}}`),
    fc.integer({ min: HTTP_LIMITS.jsonDepthMax + 1, max: 5_000 }).map((d) => `${'{"a":'.repeat(d)}1${"}".repeat(d)}`),
  );

/** Escapes PostgreSQL cannot store (NUL, a surrogate half), in one of the string values or a new field. */
export const unstorableEscape = (valid: string) =>
  fc.tuple(fc.constantFrom("\\u0000", "\\ud800", "\\udc00", "\\ud83d\\u0041"), fc.nat()).map(([esc, n]) => {
    const values = [...valid.matchAll(/"([^"]*)"(?=\s*[,}])/g)];
    if (!values.length) return `${valid.slice(0, -1)},"note":"a${esc}"}`;
    const m = values[n % values.length]!;
    const end = m.index + m[0].length - 1;
    return valid.slice(0, end) + esc + valid.slice(end);
  });

const oddContentType = fc.oneof(
  fc.constantFrom(
    "text/plain",
    "text/plain;charset=UTF-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "text/html",
    "application/octet-stream",
    "text/json",
    "application/jsonp",
    "application/json-seq",
    "json",
    "*/*",
  ),
  fc.tuple(fc.stringMatching(/^[a-z]{1,12}$/), fc.stringMatching(/^[a-z0-9.-]{1,20}$/)).map(([a, b]) => `${a}/${b}`),
).filter((t) => !/^application\/([a-z0-9.!#$&^_-]+\+)?json(;|$)/i.test(t));

/** A JSON object with one field replaced, dropped, or joined by a stranger. */
function corruptObject(valid: Record<string, unknown>, fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<string> {
  const names = Object.keys(valid);
  return fc.oneof(
    ...Object.entries(fields).map(([name, bad]) => bad.map((v) => JSON.stringify({ ...valid, [name]: v }))),
    fc.subarray(names, { maxLength: names.length - 1 }).map((keep) => JSON.stringify(Object.fromEntries(keep.map((k) => [k, valid[k]])))),
    fc
      .tuple(fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !names.includes(k)), anyJson)
      .map(([k, v]) => `${JSON.stringify(valid).slice(0, -1)},${JSON.stringify(k)}:${JSON.stringify(v)}}`),
    fc.constantFrom("__proto__", "constructor", "prototype").map((k) => `${JSON.stringify(valid).slice(0, -1)},"${k}":{"polluted":true}}`),
    fc.jsonValue({ maxDepth: 2 }).filter((v) => v === null || typeof v !== "object" || Array.isArray(v)).map((v) => JSON.stringify(v)),
    fc.constant(""),
    { arbitrary: brokenJsonText(JSON.stringify(valid)), weight: 2 },
    { arbitrary: unstorableEscape(JSON.stringify(valid)), weight: 2 },
  );
}

const jsonHeaders = (extra: Record<string, string> = {}) => ({ "content-type": "application/json", ...extra });

/** POST /api/orders with at least one defect: the key, the body, or the content type. */
export function hostileOrder(): fc.Arbitrary<HostileRequest> {
  const validBody = fc.record({ item_id: validItemId, quantity: fc.integer({ min: 1, max: 5 }) });
  const badBody = validBody.chain((v) => corruptObject(v, { item_id: invalidItemId, quantity: invalidQuantity() }));
  const withKey = (k: string | undefined, ct = "application/json"): Record<string, string> => ({ "content-type": ct, ...(k === undefined ? {} : { "idempotency-key": k }) });
  const path = fc.constantFrom("/api/orders", "/api/orders/", "/api/orders?x=1");
  return fc.oneof(
    // A bad key with any body, good or bad.
    fc.record({ method: fc.constant("POST"), path, k: invalidKey, body: fc.oneof(validBody.map((b) => JSON.stringify(b)), badBody) }).map(({ k, ...r }) => ({ ...r, headers: withKey(k) })),
    // A bad body with a good key.
    fc.record({ method: fc.constant("POST"), path, k: validKey, body: badBody }).map(({ k, ...r }) => ({ ...r, headers: withKey(k) })),
    // A good body and key in something that is not JSON.
    fc.record({ method: fc.constant("POST"), path, k: validKey, ct: oddContentType, body: validBody.map((b) => JSON.stringify(b)) }).map(({ k, ct, ...r }) => ({ ...r, headers: withKey(k, ct) })),
    // Reads with garbage parameters.
    fc.oneof(
      fc.string({ minLength: 1, maxLength: 60 }).filter((s) => !/^[0-9a-f-]{36}$/i.test(s) && s !== "." && s !== "..").map((id) => `/api/orders/${encodeURIComponent(id)}`),
      fc.constantFrom("bogus", "CONFIRMED", "", "pending,rejected").map((s) => `/api/orders?status=${encodeURIComponent(s)}`),
      fc.constantFrom("0", "101", "-1", "abc", "1e400", "1.5", "").map((l) => `/api/orders?limit=${l}`),
      fc.string({ minLength: 1, maxLength: 10 }).map((k) => `/api/orders?${encodeURIComponent(k)}=1&limit=x`),
    ).map((p) => ({ method: "GET", path: p, headers: {} })),
    // Methods the order API does not have.
    fc.record({ method: fc.constantFrom("PUT", "PATCH", "DELETE"), path: fc.constantFrom("/api/orders", "/api/orders/00000000-0000-4000-8000-000000000000"), body: validBody.map((b) => JSON.stringify(b)) }).map((r) => ({ ...r, headers: jsonHeaders() })),
  );
}

/** Inventory's own endpoints: the internal deduct/release with bad bodies, reads with bad ids, missing methods. */
export function hostileInventory(): fc.Arbitrary<HostileRequest> {
  const deduct = fc.record({ order_id: fc.uuid(), item_id: validItemId, quantity: fc.integer({ min: 1, max: 5 }) });
  const badOrderId = fc.oneof(fc.string({ maxLength: 50 }), fc.uuid().map((u) => u.toUpperCase() + "0"), fc.uuid().map((u) => u.slice(1)), anyJson).filter((v) => !(typeof v === "string" && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v)));
  return fc.oneof(
    deduct.chain((v) => corruptObject(v, { order_id: badOrderId, item_id: invalidItemId, quantity: invalidQuantity() })).map((body) => ({ method: "POST", path: "/api/inventory/deduct", headers: jsonHeaders(), body })),
    fc.uuid().chain((id) => corruptObject({ order_id: id }, { order_id: badOrderId })).map((body) => ({ method: "POST", path: "/api/inventory/release", headers: jsonHeaders(), body })),
    fc.record({ ct: oddContentType, b: deduct }).map(({ ct, b }) => ({ method: "POST", path: "/api/inventory/deduct", headers: { "content-type": ct }, body: JSON.stringify(b) })),
    fc.uuid().map((id) => ({ method: "POST", path: "/api/inventory/release", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `order_id=${id}` })),
    invalidItemId.filter((v): v is string => typeof v === "string" && v.length > 0 && v !== "." && v !== "..").map((id) => ({ method: "GET", path: `/api/inventory/${encodeURIComponent(id)}`, headers: {} })),
    fc.record({ method: fc.constantFrom("PUT", "PATCH", "DELETE"), path: fc.constantFrom("/api/inventory", "/api/inventory/ps5", "/api/inventory/deduct") }).map((r) => ({ ...r, headers: jsonHeaders(), body: '{"quantity":1}' })),
  );
}

/** Credentials that are not the admin token, in every shape a client might try. */
export function wrongCredentials(token: string): fc.Arbitrary<Record<string, string>> {
  const nearMiss = fc.oneof(
    fc.constant(token.slice(0, -1)),
    fc.constant(`${token}x`),
    fc.constant(token.toUpperCase()),
    fc.integer({ min: 0, max: token.length - 1 }).map((i) => token.slice(0, i) + (token[i] === "a" ? "b" : "a") + token.slice(i + 1)),
    printable(1, 80),
  ).filter((t) => t.trim() !== token);
  return fc.oneof(
    fc.constant({}),
    nearMiss.map((t) => ({ authorization: `Bearer ${t}` })),
    fc.constant({ authorization: `Basic ${btoa(`admin:${token}`)}` }),
    fc.constant({ authorization: token }),
    fc.constant({ authorization: `Token ${token}` }),
    fc.constant({ authorization: "Bearer" }),
    fc.constant({ authorization: "Bearer " }),
    nearMiss.map((t) => ({ cookie: `valerix_admin=${encodeURIComponent(t)}` })),
    fc.constant({ "x-admin-token": token }),
  );
}

/**
 * The admin API without the right token (any body, valid or not: 401 all the same), or with it
 * and a body that breaks a rule.
 */
export function hostileAdmin(token: string, adminPaths: string[]): fc.Arbitrary<HostileRequest> {
  const create = fc.record({ item_id: validItemId, item_name: fc.constantFrom("Widget", "Valid name"), quantity: fc.integer({ min: 0, max: 100 }) });
  const goodBody = fc.oneof(create.map((b) => JSON.stringify(b)), fc.constant('{"quantity":5}'), fc.constant("{}"));
  const badName = fc.oneof(fc.constant(""), fc.string({ minLength: INVENTORY_LIMITS.itemNameMax + 1, maxLength: 600 }), anyJson.filter((v) => typeof v !== "string"));
  const auth = { authorization: `Bearer ${token}` };
  return fc.oneof(
    fc
      .record({ creds: wrongCredentials(token), path: fc.constantFrom(...adminPaths), method: fc.constantFrom("POST", "PUT", "PATCH", "DELETE", "GET"), body: goodBody, query: fc.boolean() })
      .map(({ creds, path, method, body, query }) => ({
        method,
        path: query ? `${path}?token=${encodeURIComponent(token)}` : path,
        headers: { "content-type": "application/json", ...creds },
        body: method === "GET" ? undefined : body,
        expect: 401,
      })),
    create
      .chain((v) => corruptObject(v, { item_id: invalidItemId, item_name: badName, quantity: invalidQuantity(INVENTORY_LIMITS.stockMax, 0) }))
      .map((body) => ({ method: "POST", path: "/api/admin/inventory", headers: jsonHeaders(auth), body })),
    fc
      .tuple(validItemId, corruptObject({ quantity: 1 }, { quantity: invalidQuantity(INVENTORY_LIMITS.restockMax) }))
      .map(([id, body]) => ({ method: "POST", path: `/api/admin/inventory/${id}/restock`, headers: jsonHeaders(auth), body })),
    invalidItemId
      .filter((v): v is string => typeof v === "string" && v.length > 0 && !v.includes("/") && v !== "." && v !== "..")
      .map((id) => ({ method: "POST", path: `/api/admin/inventory/${encodeURIComponent(id)}/restock`, headers: jsonHeaders(auth), body: '{"quantity":1}' })),
    fc.record({ ct: oddContentType, b: create }).map(({ ct, b }) => ({ method: "POST", path: "/api/admin/inventory", headers: { ...auth, "content-type": ct }, body: JSON.stringify(b) })),
  );
}
