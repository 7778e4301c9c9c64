import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { BACKENDS, newKey, startSystem, type TestSystem } from "./support/system.ts";

const PROBLEM = "application/problem+json";

async function stockOf(sys: TestSystem, itemId: string): Promise<number> {
  const res = await sys.get(`/api/inventory/${itemId}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { quantity: number }).quantity;
}

async function createItem(sys: TestSystem, quantity: number): Promise<string> {
  const itemId = `it-${randomUUID().slice(0, 8)}`;
  const res = await sys.post("/api/admin/inventory", { item_id: itemId, item_name: `Item ${itemId}`, quantity });
  expect(res.status).toBe(201);
  return itemId;
}

for (const backend of BACKENDS) {
  describe(`API on ${backend}`, () => {
    let sys: TestSystem;
    beforeAll(async () => {
      sys = await startSystem(backend);
    });
    afterAll(async () => {
      await sys?.stop();
    });

    test("the demo catalog is seeded: at least five items, ps5 among them, each with stock ≥ 1000", async () => {
      const res = await sys.get("/api/inventory");
      expect(res.status).toBe(200);
      const items = (await res.json()) as Array<{ item_id: string; quantity: number }>;
      expect(items.length).toBeGreaterThanOrEqual(5);
      expect(items.map((i) => i.item_id)).toContain("ps5");
      for (const i of items) expect(i.quantity).toBeGreaterThanOrEqual(1000);
    });

    test("POST /api/orders confirms with 201, deducts stock, and the order can be read back", async () => {
      const itemId = await createItem(sys, 10);
      const res = await sys.post("/api/orders", { item_id: itemId, quantity: 3 }, { "Idempotency-Key": newKey() });
      expect(res.status).toBe(201);
      const body = (await res.json()) as { order_id: string; item_id: string; quantity: number; status: string };
      expect(body).toMatchObject({ item_id: itemId, quantity: 3, status: "confirmed" });
      expect(res.headers.get("location")).toBe(`/api/orders/${body.order_id}`);
      expect(await stockOf(sys, itemId)).toBe(7);

      const one = await sys.get(`/api/orders/${body.order_id}`);
      expect(one.status).toBe(200);
      const detail = (await one.json()) as { status: string; history: Array<{ status: string }> };
      expect(detail.status).toBe("confirmed");
      expect(detail.history.map((h) => h.status)).toEqual(["pending", "confirmed"]);

      const list = (await (await sys.get("/api/orders?status=confirmed")).json()) as Array<{ order_id: string; status: string }>;
      expect(list[0]!.order_id).toBe(body.order_id);
      expect(list.every((o) => o.status === "confirmed")).toBe(true);
    });

    test("GET /api/orders lists newest first, at most 100; unknown ids are 404 problems", async () => {
      const res = await sys.get("/api/orders");
      expect(res.status).toBe(200);
      const list = (await res.json()) as Array<{ created_at: string }>;
      expect(list.length).toBeLessThanOrEqual(100);
      for (let i = 1; i < list.length; i++) expect(list[i - 1]!.created_at >= list[i]!.created_at).toBe(true);
      const missing = await sys.get(`/api/orders/${randomUUID()}`);
      expect(missing.status).toBe(404);
      expect(missing.headers.get("content-type")).toContain(PROBLEM);
      expect(((await missing.json()) as { type: string }).type).toEndWith("/not-found");
      expect((await sys.get("/api/orders/not-a-uuid")).status).toBe(400);
      expect((await sys.get("/api/orders?status=bogus")).status).toBe(400);
    });

    test("the documented paths have no trailing slash, and the slashed spelling still answers", async () => {
      for (const path of ["/api/orders", "/api/inventory", "/api/admin/chaos"]) {
        const bare = await sys.get(path);
        const slashed = await sys.get(`${path}/`);
        expect(bare.status).toBe(200);
        expect(slashed.status).toBe(200);
      }
      const res = await sys.post("/api/orders/", { item_id: "ps5", quantity: 1 }, { "Idempotency-Key": newKey() });
      expect(res.status).toBe(201);
      expect(((await res.json()) as { message: string }).message).toBe("Order confirmed.");
    });

    test("a finished request is replayed byte for byte with Idempotent-Replayed: true", async () => {
      const key = newKey();
      const first = await sys.post("/api/orders", { item_id: "ps5", quantity: 1 }, { "Idempotency-Key": key });
      const firstBody = await first.text();
      const before = await stockOf(sys, "ps5");
      for (let i = 0; i < 2; i++) {
        const again = await sys.post("/api/orders", { item_id: "ps5", quantity: 1 }, { "Idempotency-Key": key });
        expect(again.status).toBe(first.status);
        expect(again.headers.get("idempotent-replayed")).toBe("true");
        expect(await again.text()).toBe(firstBody);
      }
      expect(await stockOf(sys, "ps5")).toBe(before);
    });

    test("the same key with a different body is 422; a missing or malformed key is 400", async () => {
      const key = newKey();
      expect((await sys.post("/api/orders", { item_id: "ps5", quantity: 1 }, { "Idempotency-Key": key })).status).toBe(201);
      const reused = await sys.post("/api/orders", { item_id: "ps5", quantity: 2 }, { "Idempotency-Key": key });
      expect(reused.status).toBe(422);
      expect(((await reused.json()) as { type: string }).type).toEndWith("/idempotency-key-reused");

      const none = await sys.post("/api/orders", { item_id: "ps5", quantity: 1 });
      expect(none.status).toBe(400);
      expect(((await none.json()) as { type: string }).type).toEndWith("/missing-idempotency-key");
      for (const bad of ["x".repeat(256), "tab\there", "ünïcode"]) {
        const res = await sys.post("/api/orders", { item_id: "ps5", quantity: 1 }, { "Idempotency-Key": bad });
        expect(res.status).toBe(400);
      }
      // The IETF draft's structured-field form is accepted and means the same key.
      const quoted = newKey();
      const a = await sys.post("/api/orders", { item_id: "ps5", quantity: 1 }, { "Idempotency-Key": `"${quoted}"` });
      const b = await sys.post("/api/orders", { item_id: "ps5", quantity: 1 }, { "Idempotency-Key": quoted });
      expect(a.status).toBe(201);
      expect(b.headers.get("idempotent-replayed")).toBe("true");
    });

    test("unknown item and insufficient stock are 422 with distinct problem types; stock unchanged", async () => {
      const unknown = await sys.post("/api/orders", { item_id: "no-such-item", quantity: 1 }, { "Idempotency-Key": newKey() });
      expect(unknown.status).toBe(422);
      const u = (await unknown.json()) as { type: string; status: number; order_status: string; reason: string };
      expect(u.type).toEndWith("/unknown-item");
      expect(u).toMatchObject({ status: 422, order_status: "rejected", reason: "unknown_item" });

      const itemId = await createItem(sys, 2);
      const short = await sys.post("/api/orders", { item_id: itemId, quantity: 3 }, { "Idempotency-Key": newKey() });
      expect(short.status).toBe(422);
      expect(((await short.json()) as { type: string }).type).toEndWith("/insufficient-stock");
      expect(await stockOf(sys, itemId)).toBe(2);
    });

    test("30 concurrent requests with one key make one order and one deduction", async () => {
      const itemId = await createItem(sys, 100);
      const key = newKey();
      const responses = await Promise.all(
        Array.from({ length: 30 }, () => sys.post("/api/orders", { item_id: itemId, quantity: 2 }, { "Idempotency-Key": key })),
      );
      const statuses = responses.map((r) => r.status);
      // Exactly one request did the work; the rest were replays (201) or told it was in flight (409).
      expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
      const ids = new Set<string>();
      for (const r of responses) if (r.status === 201) ids.add(((await r.json()) as { order_id: string }).order_id);
      expect(ids.size).toBe(1);
      expect(await stockOf(sys, itemId)).toBe(98);
      const orders = (await (await sys.get("/api/orders")).json()) as Array<{ item_id: string }>;
      expect(orders.filter((o) => o.item_id === itemId).length).toBe(1);
    });

    test("a flash sale of 80 buyers for 47 units confirms exactly 47, rejects 33, ends at 0", async () => {
      const itemId = await createItem(sys, 47);
      const responses = await Promise.all(
        Array.from({ length: 80 }, () => sys.post("/api/orders", { item_id: itemId, quantity: 1 }, { "Idempotency-Key": newKey("flash") })),
      );
      const statuses = responses.map((r) => r.status);
      expect(statuses.filter((s) => s === 201).length).toBe(47);
      expect(statuses.filter((s) => s === 422).length).toBe(33);
      expect(await stockOf(sys, itemId)).toBe(0);
    });

    test("an order of several lines: 201 with its lines in the order sent; one short line is a 422 naming it, nothing taken", async () => {
      const [a, b, c] = [await createItem(sys, 10), await createItem(sys, 2), await createItem(sys, 10)];
      const lines = [{ item_id: c, quantity: 1 }, { item_id: a, quantity: 2 }, { item_id: b, quantity: 2 }];
      const ok = await sys.post("/api/orders", { lines }, { "Idempotency-Key": newKey() });
      expect(ok.status).toBe(201);
      const body = (await ok.json()) as Record<string, unknown>;
      expect(body).toMatchObject({ status: "confirmed", lines });
      expect(body.item_id).toBeUndefined();
      expect([await stockOf(sys, a), await stockOf(sys, b), await stockOf(sys, c)]).toEqual([8, 0, 9]);

      const short = await sys.post("/api/orders", { lines }, { "Idempotency-Key": newKey() });
      expect(short.status).toBe(422);
      expect(short.headers.get("content-type")).toStartWith(PROBLEM);
      expect(await short.json()).toMatchObject({ type: "https://valerix.dev/problems/insufficient-stock", order_status: "rejected", rejected_lines: [{ item_id: b, reason: "insufficient_stock" }] });
      expect([await stockOf(sys, a), await stockOf(sys, b), await stockOf(sys, c)]).toEqual([8, 0, 9]);
    });

    test("line rules: both body forms, neither, an item twice, 51 lines or a bad line are 400s naming what is wrong", async () => {
      const a = await createItem(sys, 10);
      const send = (body: unknown) => sys.post("/api/orders", body, { "Idempotency-Key": newKey() });
      const both = await send({ lines: [{ item_id: a, quantity: 1 }], item_id: a, quantity: 1 });
      expect(both.status).toBe(400);
      expect(((await both.json()) as { detail: string }).detail).toContain("not both");
      expect((await send({ item_id: a })).status).toBe(400);
      const twice = await send({ lines: [{ item_id: a, quantity: 1 }, { item_id: a, quantity: 2 }] });
      expect(twice.status).toBe(400);
      expect(await twice.json()).toMatchObject({ type: "https://valerix.dev/problems/duplicate-line-item", item_id: a });
      const many = Array.from({ length: 51 }, (_, i) => ({ item_id: `x${i}`, quantity: 1 }));
      expect((await send({ lines: many })).status).toBe(400);
      expect((await send({ lines: [] })).status).toBe(400);
      const bad = await send({ lines: [{ item_id: a, quantity: 1 }, { item_id: "ps5", quantity: 0 }] });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(await bad.json())).toContain("lines.1.quantity");
      expect(await stockOf(sys, a)).toBe(10);
    });

    test("cancel: 200 and stock back once; the key replays; a second cancel is 200 and moves nothing; rejected is 409; unknown 404", async () => {
      const [a, b] = [await createItem(sys, 10), await createItem(sys, 10)];
      const placed = (await (await sys.post("/api/orders", { lines: [{ item_id: a, quantity: 3 }, { item_id: b, quantity: 1 }] }, { "Idempotency-Key": newKey() })).json()) as { order_id: string };
      const key = newKey();
      const cancel = (k: string, body: unknown = { reason: "changed my mind" }) => sys.post(`/api/orders/${placed.order_id}/cancel`, body, { "Idempotency-Key": k });
      const first = await cancel(key);
      expect(first.status).toBe(200);
      const firstBody = await first.text();
      expect(JSON.parse(firstBody)).toMatchObject({ status: "cancelled" });
      expect([await stockOf(sys, a), await stockOf(sys, b)]).toEqual([10, 10]);
      const replay = await cancel(key);
      expect(replay.status).toBe(200);
      expect(replay.headers.get("idempotent-replayed")).toBe("true");
      expect(await replay.text()).toBe(firstBody);
      expect((await cancel(key, { reason: "something else" })).status).toBe(422);
      expect((await cancel(newKey(), {})).status).toBe(200);
      expect([await stockOf(sys, a), await stockOf(sys, b)]).toEqual([10, 10]);
      const detail = (await (await sys.get(`/api/orders/${placed.order_id}`)).json()) as { history: Array<{ status: string; note?: string; actor?: string }> };
      expect(detail.history.map((h) => h.status)).toEqual(["pending", "confirmed", "cancelling", "cancelled"]);
      expect(detail.history[2]).toMatchObject({ note: "changed my mind" });
      expect(detail.history[2]!.actor).toStartWith("api");

      const rejected = (await (await sys.post("/api/orders", { item_id: a, quantity: 500 }, { "Idempotency-Key": newKey() })).json()) as { order_id: string };
      const no = await sys.post(`/api/orders/${rejected.order_id}/cancel`, {}, { "Idempotency-Key": newKey() });
      expect(no.status).toBe(409);
      expect(await no.json()).toMatchObject({ type: "https://valerix.dev/problems/order-not-cancellable" });
      expect((await sys.post(`/api/orders/${randomUUID()}/cancel`, {}, { "Idempotency-Key": newKey() })).status).toBe(404);
      expect((await sys.post(`/api/orders/${placed.order_id}/cancel`, {})).status).toBe(400);
      expect((await sys.post(`/api/orders/${placed.order_id}/cancel`, { reason: "x".repeat(201) }, { "Idempotency-Key": newKey() })).status).toBe(400);
      // No body at all is a cancel without a reason.
      const bare = await fetch(`${sys.url}/api/orders/${placed.order_id}/cancel`, { method: "POST", headers: { "Idempotency-Key": newKey() } });
      expect(bare.status).toBe(200);
    });

    test("a repeated deduct for one order_id deducts once and returns the first outcome", async () => {
      const itemId = await createItem(sys, 10);
      const orderId = randomUUID();
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          sys.post("/api/inventory/deduct", i % 2 ? { order_id: orderId, item_id: itemId, quantity: 4 } : { order_id: orderId, lines: [{ item_id: itemId, quantity: 4 }] }),
        ),
      );
      const bodies = (await Promise.all(results.map((r) => r.json()))) as Array<{ outcome: string; replayed: boolean }>;
      expect(results.every((r) => r.status === 200)).toBe(true);
      expect(bodies.every((b) => b.outcome === "applied")).toBe(true);
      expect(bodies.filter((b) => !b.replayed).length).toBe(1);
      expect(await stockOf(sys, itemId)).toBe(6);

      // A refusal is also a first outcome: restocking afterwards does not turn it into a deduction.
      const refused = randomUUID();
      const r1 = await sys.post("/api/inventory/deduct", { order_id: refused, item_id: itemId, quantity: 7 });
      expect(r1.status).toBe(422);
      expect((await sys.post(`/api/admin/inventory/${itemId}/restock`, { quantity: 10 })).status).toBe(200);
      const r2 = await sys.post("/api/inventory/deduct", { order_id: refused, item_id: itemId, quantity: 7 });
      expect(r2.status).toBe(422);
      expect(((await r2.json()) as { replayed: boolean }).replayed).toBe(true);
      expect(await stockOf(sys, itemId)).toBe(16);
    });

    test("release restores a standing deduction once and blocks any later deduct", async () => {
      const itemId = await createItem(sys, 10);
      const orderId = randomUUID();
      await sys.post("/api/inventory/deduct", { order_id: orderId, item_id: itemId, quantity: 4 });
      const rel = await Promise.all([1, 2, 3].map(() => sys.post("/api/inventory/release", { order_id: orderId })));
      expect(rel.every((r) => r.status === 200)).toBe(true);
      expect(await stockOf(sys, itemId)).toBe(10);
      // Release is final: the earlier "applied" is never replayed for a released order.
      const late = await sys.post("/api/inventory/deduct", { order_id: orderId, item_id: itemId, quantity: 4 });
      expect(late.status).toBe(422);
      expect(await late.json()).toMatchObject({ outcome: "rejected", reason: "released", replayed: true });
      expect(await stockOf(sys, itemId)).toBe(10);

      const never = randomUUID();
      expect((await sys.post("/api/inventory/release", { order_id: never })).status).toBe(200);
      const blocked = await sys.post("/api/inventory/deduct", { order_id: never, item_id: itemId, quantity: 1 });
      expect(blocked.status).toBe(422);
      expect(((await blocked.json()) as { type: string }).type).toEndWith("/order-released");
      expect(await stockOf(sys, itemId)).toBe(10);
    });

    test("admin catalog: create is 201 then 409; restock is 200 and recorded; unknown item 404", async () => {
      const itemId = `adm-${randomUUID().slice(0, 8)}`;
      expect((await sys.post("/api/admin/inventory", { item_id: itemId, item_name: "Admin item", quantity: 5 })).status).toBe(201);
      const dup = await sys.post("/api/admin/inventory", { item_id: itemId, item_name: "Again", quantity: 5 });
      expect(dup.status).toBe(409);
      expect(((await dup.json()) as { type: string }).type).toEndWith("/item-exists");
      const re = await sys.post(`/api/admin/inventory/${itemId}/restock`, { quantity: 7 });
      expect(re.status).toBe(200);
      expect(((await re.json()) as { quantity: number }).quantity).toBe(12);
      expect((await sys.post("/api/admin/inventory/nope-404/restock", { quantity: 1 })).status).toBe(404);
      expect((await sys.get("/api/inventory/nope-404")).status).toBe(404);
      const metrics = await (await sys.get("/metrics")).text();
      expect(metrics).toMatch(/inventory_transactions_total\{type="restock"\} [1-9]/);
    });

    test("junk bodies get 4xx problems and change nothing", async () => {
      const before = await (await sys.get("/api/inventory")).text();
      const ordersBefore = await (await sys.get("/api/orders")).text();
      const junk: Array<string> = [
        "",
        "{",
        "null",
        "[]",
        '"ps5"',
        '{"item_id":"ps5"}',
        '{"item_id":"ps5","quantity":0}',
        '{"item_id":"ps5","quantity":-1}',
        '{"item_id":"ps5","quantity":1.5}',
        '{"item_id":"ps5","quantity":"3"}',
        '{"item_id":"ps5","quantity":1e9}',
        '{"item_id":"","quantity":1}',
        '{"item_id":"../etc","quantity":1}',
        `{"item_id":"${"a".repeat(65)}","quantity":1}`,
        '{"item_id":"ps5","quantity":1,"extra":true}',
        '{"item_id":{"$ne":1},"quantity":1}',
      ];
      for (const body of junk) {
        const res = await sys.post("/api/orders", body, { "Idempotency-Key": newKey("junk") });
        expect([400, 413, 415, 422]).toContain(res.status);
        expect(res.status).toBeLessThan(500);
        expect(res.headers.get("content-type")).toContain(PROBLEM);
        const p = (await res.json()) as { type: string; title: string; status: number };
        expect(p.status).toBe(res.status);
        expect(JSON.stringify(p)).not.toContain("    at ");
      }
      for (const body of junk) {
        const res = await sys.post("/api/inventory/deduct", body);
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
      }
      expect(await (await sys.get("/api/inventory")).text()).toBe(before);
      expect(await (await sys.get("/api/orders")).text()).toBe(ordersBefore);
    });

    test("bodies over 1 MiB get 413", async () => {
      const big = JSON.stringify({ item_id: "ps5", quantity: 1, pad: "x".repeat(1024 * 1024) });
      const res = await sys.post("/api/orders", big, { "Idempotency-Key": newKey() });
      expect(res.status).toBe(413);
      expect(res.headers.get("content-type")).toContain(PROBLEM);
    });

    test("/health, /metrics, /swagger and /swagger/json answer", async () => {
      const h = await sys.get("/health");
      expect(h.status).toBe(200);
      const hb = (await h.json()) as { status: string; checks: Record<string, { ok: boolean }> };
      expect(hb.status).toBe("ok");
      expect(Object.keys(hb.checks)).toEqual(expect.arrayContaining(["database", "inventory_schema", "orders_schema"]));
      expect((await sys.get("/health/live")).status).toBe(200);
      expect((await sys.get("/health/ready")).status).toBe(200);

      const m = await (await sys.get("/metrics")).text();
      for (const name of [
        "http_request_duration_seconds",
        "order_processing_duration_seconds",
        "orders_total",
        "idempotency_cache_hits_total",
        "inventory_stock_level",
        "inventory_transactions_total",
        "process_cpu_seconds_total",
      ]) {
        expect(m).toContain(`# TYPE ${name}`);
      }
      expect(m).toContain('inventory_stock_level{item_id="ps5"}');

      const page = await sys.get("/swagger");
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).not.toMatch(/https?:\/\/(?!localhost)/);
      for (const src of html.match(/(?:src|href)="([^"]+)"/g) ?? []) {
        const path = src.replace(/^(?:src|href)="/, "").replace(/"$/, "");
        expect((await sys.get(path)).status).toBe(200);
      }
      const spec = (await (await sys.get("/swagger/json")).json()) as { paths: Record<string, unknown> };
      expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(["/api/orders", "/api/orders/{id}", "/api/inventory/deduct"]));
    });
  });
}
