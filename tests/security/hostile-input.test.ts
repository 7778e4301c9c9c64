import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { randomUUID } from "node:crypto";
import { BACKENDS, newKey, startSystem, type TestSystem } from "../support/system.ts";
import { hostileAdmin, hostileInventory, hostileOrder, type HostileRequest } from "./arbitraries.ts";
import { expectRefusal, snapshot } from "./support.ts";

/**
 * Thousands of generated hostile requests against a running system, per backend: every answer a
 * 4xx problem (never a 5xx, never a 2xx), and afterwards not one row anywhere has changed.
 * A failure prints fast-check's seed and the shrunk request; rerun with `{ seed, path }` to replay.
 */
const RUNS = { orders: 1000, inventory: 800, admin: 800 };
const TOKEN = `admin-${randomUUID()}`;

/** Every admin route the API documents, with path parameters filled in: chaos routes join by themselves. */
async function adminPaths(sys: TestSystem): Promise<string[]> {
  const spec = (await (await sys.get("/swagger/json")).json()) as { paths: Record<string, unknown> };
  const paths = Object.keys(spec.paths)
    .filter((p) => p.startsWith("/api/admin"))
    .map((p) => p.replace(/\{[^}]+\}|:[A-Za-z_]+/g, "ps5"));
  expect(paths).toContain("/api/admin/inventory");
  return [...new Set(paths)];
}

const describeRequest = (r: HostileRequest) =>
  `${r.method} ${r.path} ${JSON.stringify(r.headers)} ${r.body === undefined ? "(no body)" : JSON.stringify(r.body.length > 200 ? `${r.body.slice(0, 200)}…(${r.body.length})` : r.body)}`;

for (const backend of BACKENDS) {
  describe(`hostile requests against a running system (${backend})`, () => {
    let sys: TestSystem;
    let before: Record<string, unknown>;
    let admin: string[];

    beforeAll(async () => {
      // Production with a token: the admin API is guarded as it would be on the internet.
      // Rate limiting off, so every request reaches validation rather than stopping at 429.
      sys = await startSystem(backend, { NODE_ENV: "production", ADMIN_TOKEN: TOKEN, RATE_LIMIT_PER_MIN: "0" });
      admin = await adminPaths(sys);
      before = await snapshot(sys);
    }, 120_000);
    afterAll(async () => {
      await sys?.stop();
    });

    /** Problem types seen per family: a generator that only ever trips one check would show here. */
    const seen = new Map<string, number>();
    const fire = async (r: HostileRequest) => {
      const res = await fetch(sys.url + r.path, { method: r.method, headers: r.headers, body: r.body });
      const problem = await expectRefusal(res, describeRequest(r));
      if (r.expect) expect(res.status, describeRequest(r)).toBe(r.expect);
      if (res.status === 401) expect(res.headers.get("www-authenticate")).toStartWith("Bearer");
      const kind = `${res.status} ${String(problem.type).split("/").pop()}`;
      seen.set(kind, (seen.get(kind) ?? 0) + 1);
    };
    const variety = () => {
      const kinds = [...seen.keys()].sort();
      seen.clear();
      return kinds;
    };

    test(`order endpoints: ${RUNS.orders} hostile requests, all refused, nothing written`, async () => {
      await fc.assert(fc.asyncProperty(hostileOrder(), fire), { numRuns: RUNS.orders });
      expect(await snapshot(sys)).toEqual(before);
      expect(variety()).toEqual(expect.arrayContaining(["400 invalid-request", "400 malformed-json", "400 json-too-deep", "400 invalid-characters", "400 missing-idempotency-key", "400 invalid-idempotency-key", "415 unsupported-media-type", "404 not-found"]));
    });

    test(`inventory endpoints: ${RUNS.inventory} hostile requests, all refused, nothing written`, async () => {
      await fc.assert(fc.asyncProperty(hostileInventory(), fire), { numRuns: RUNS.inventory });
      expect(await snapshot(sys)).toEqual(before);
      expect(variety()).toEqual(expect.arrayContaining(["400 invalid-request", "400 malformed-json", "415 unsupported-media-type", "404 not-found"]));
    });

    test(`admin endpoints: ${RUNS.admin} hostile requests, all refused, nothing written`, async () => {
      await fc.assert(fc.asyncProperty(hostileAdmin(TOKEN, admin), fire), { numRuns: RUNS.admin });
      expect(await snapshot(sys)).toEqual(before);
      expect(variety()).toEqual(expect.arrayContaining(["401 unauthorized", "400 invalid-request", "415 unsupported-media-type"]));
    });

    test("the system still takes a valid order afterwards, and the snapshot notices it", async () => {
      const res = await sys.post("/api/orders", { item_id: "ps5", quantity: 2 }, { "idempotency-key": newKey("after-fuzz") });
      expect(res.status).toBe(201);
      const after = await snapshot(sys);
      expect(after).not.toEqual(before);
      const stock = (s: Record<string, unknown>) => (s.inventory as Array<{ item_id: string; quantity: number }>).find((i) => i.item_id === "ps5")!.quantity;
      expect(stock(after)).toBe(stock(before) - 2);
    });
  });
}
