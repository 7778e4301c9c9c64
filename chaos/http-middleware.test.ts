import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { createMemoryStore } from "../platform/kv/memory.ts";
import { createChaosInjector } from "./injector.ts";
import { chaosHttp, classifyInventoryRoute } from "./http-middleware.ts";
import { ManualClock } from "../tests/support/manual-clock.ts";
// A test double of our own port (not of anything outside our control): see its comment.
import { createMemoryInventory } from "./testing/memory-inventory.ts";

/**
 * A real Bun server on port 0 with inventory-shaped routes behind the chaos plugin, called with
 * real `fetch`, so a reset is observed exactly as the HTTP client adapter will observe it.
 */
let clock: ManualClock;
let chaos: ReturnType<typeof createChaosInjector>;
let real: ReturnType<typeof createMemoryInventory>;
let app: { stop(force?: boolean): unknown; server: { port?: number } | null };
let base: string;

beforeAll(() => {
  clock = new ManualClock();
  chaos = createChaosInjector({ kv: createMemoryStore({ clock }), clock });
  const inventoryRoutes = new Elysia({ prefix: "/api/inventory" })
    .post("/deduct", async ({ body }) => {
      const req = body as { order_id: string; item_id: string; quantity: number };
      if (req.item_id === "explode") throw new Error("database went away");
      const r = await real.deduct({ order_id: req.order_id, lines: [{ item_id: req.item_id, quantity: req.quantity }] });
      return r.outcome === "applied" ? r : new Response(JSON.stringify(r), { status: 422, headers: { "content-type": "application/json" } });
    })
    .post("/orders/:order_id/release", ({ params }) => real.release(params.order_id))
    .get("/", () => real.list())
    .get("/:item_id", async ({ params }) => (await real.get(params.item_id)) ?? new Response("", { status: 404 }));
  const server = new Elysia()
    .use(chaosHttp(chaos))
    .onError(({ error }) =>
      new Response(JSON.stringify({ status: 500, detail: (error as Error).message }), {
        status: 500,
        headers: { "content-type": "application/problem+json" },
      }),
    )
    .use(inventoryRoutes)
    .get("/api/orders", () => ["untouched"])
    .get("/api/admin/inventory", () => ["untouched"])
    .listen({ port: 0, hostname: "127.0.0.1" });
  app = server as unknown as typeof app;
  base = `http://127.0.0.1:${server.server!.port}`;
});

afterAll(() => {
  app.stop(true);
});

beforeEach(async () => {
  await chaos.disable();
  real = createMemoryInventory({ ps5: 10 });
});

const configure = async (body: unknown) => {
  const r = await chaos.configure(body);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
};

const deduct = (orderId: string, init: RequestInit = {}, itemId = "ps5") =>
  fetch(`${base}/api/inventory/deduct`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-request-id": `req-${orderId}` },
    body: JSON.stringify({ order_id: orderId, item_id: itemId, quantity: 1 }),
    ...init,
  });

async function transportError(p: Promise<Response>): Promise<Error> {
  try {
    const res = await p;
    throw new Error(`expected a transport error, got HTTP ${res.status}`);
  } catch (err) {
    return err as Error;
  }
}

describe("chaosHttp at inventory's inbound edge", () => {
  test("without an experiment requests pass untouched", async () => {
    const res = await deduct("o1");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ outcome: "applied", lines: [{ remaining: 9 }] });
  });

  test.each([500, 503] as const)("a crash answers %i as a problem, before any work", async (status) => {
    await configure({ crash_rate: 1, crash_mode: status });
    const res = await deduct("o1");
    expect(res.status).toBe(status);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    expect(await res.json()).toMatchObject({ status, type: "https://valerix.dev/problems/inventory-failure" });
    expect(real.calls).toEqual([]);
    expect(real.stock("ps5")).toBe(10);
  });

  test("a reset surfaces as a fetch TypeError, not as an HTTP status", async () => {
    await configure({ crash_rate: 1, crash_mode: "reset" });
    const err = await transportError(deduct("o1"));
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error & { code?: string }).code).toBe("ECONNRESET");
    expect(real.stock("ps5")).toBe(10);
    // The server itself is fine afterwards.
    await chaos.disable();
    expect((await deduct("o2")).status).toBe(200);
  });

  test("a partial failure commits, then drops the connection; a retry replays", async () => {
    await configure({ partial_failure_rate: 1, crash_mode: "reset" });
    expect(await transportError(deduct("o1"))).toBeInstanceOf(TypeError);
    expect(real.deductions("o1")).toBe(1);
    expect(real.stock("ps5")).toBe(9);

    await chaos.disable();
    const retry = await deduct("o1");
    expect(await retry.json()).toMatchObject({ outcome: "applied", replayed: true });
    expect(real.deductions("o1")).toBe(1);
    expect(real.stock("ps5")).toBe(9);
  });

  test("a partial failure as 503 looks exactly like a crash before the work", async () => {
    await configure({ partial_failure_rate: 1, crash_mode: 503 });
    const lost = await deduct("o1");
    const lostBody = await lost.text();
    expect(lost.status).toBe(503);
    expect(real.deductions("o1")).toBe(1);

    await configure({ crash_rate: 1, crash_mode: 503 });
    const crashed = await deduct("o2");
    expect(crashed.status).toBe(503);
    expect(await crashed.text()).toBe(lostBody);
    expect(real.deductions("o2")).toBe(0);
  });

  test("a partial failure also loses an answer that went through the error handler", async () => {
    await configure({ partial_failure_rate: 1, crash_mode: "reset" });
    expect(await transportError(deduct("o1", {}, "explode"))).toBeInstanceOf(TypeError);
  });

  test("a partial failure loses a business rejection too (the caller retries and gets it again)", async () => {
    await configure({ partial_failure_rate: 1, crash_mode: 500 });
    const res = await deduct("o1", {}, "no-such-item");
    expect(res.status).toBe(500);
    expect(real.calls).toEqual(["deduct:o1"]);
  });

  test("latency holds the request on the injected clock", async () => {
    await configure({ latency_ms: 3_000 });
    let answered = false;
    const pending = deduct("o1").then((r) => ((answered = true), r));
    await clock.waitForSleepers(1);
    await clock.advance(2_999);
    await new Promise((r) => setTimeout(r, 20));
    expect(answered).toBe(false);
    expect(real.calls).toEqual([]);
    await clock.advance(1);
    expect((await pending).status).toBe(200);
  });

  test("a hang lasts until the client gives up, and then frees the server", async () => {
    await configure({ hang_rate: 1, hang_ms: 600_000 });
    const ctrl = new AbortController();
    const pending = deduct("o1", { signal: ctrl.signal });
    await clock.waitForSleepers(1);
    ctrl.abort();
    const err = await transportError(pending);
    expect(err.name).toBe("AbortError");
    // The server noticed the client leave (request.signal) and stopped waiting.
    for (let i = 0; i < 2_000 && clock.pendingSleeps > 0; i++) await new Promise((r) => setTimeout(r, 1));
    expect(clock.pendingSleeps).toBe(0);
    expect(real.calls).toEqual([]);
  });

  test("a hang past its cap drops the connection", async () => {
    await configure({ hang_rate: 1, hang_ms: 1_000 });
    const pending = transportError(deduct("o1"));
    await clock.waitForSleepers(1);
    await clock.advance(1_000);
    expect(await pending).toBeInstanceOf(TypeError);
  });

  test('"deduct" targeting leaves reads alone; "all" reaches every inventory route and nothing else', async () => {
    await configure({ crash_rate: 1, crash_mode: 503 });
    expect((await fetch(`${base}/api/inventory/ps5`)).status).toBe(200);
    expect((await fetch(`${base}/api/inventory`)).status).toBe(200);

    await configure({ crash_rate: 1, crash_mode: 503, routes: "all" });
    expect((await fetch(`${base}/api/inventory/ps5`)).status).toBe(503);
    expect((await fetch(`${base}/api/inventory`)).status).toBe(503);
    expect((await fetch(`${base}/api/inventory/orders/o1/release`, { method: "POST" })).status).toBe(503);
    expect((await fetch(`${base}/api/orders`)).status).toBe(200);
    expect((await fetch(`${base}/api/admin/inventory`)).status).toBe(200);
    expect(real.calls).toEqual(["get:ps5", "list"]);
  });

  test("events carry the request id header and the order id from the body or path", async () => {
    await configure({ crash_rate: 1, crash_mode: 500, routes: "all" });
    await deduct("o-42");
    await fetch(`${base}/api/inventory/orders/o-43/release`, { method: "POST", headers: { "x-request-id": "req-r" } });
    const [release, deductEvent] = await chaos.events(2);
    expect(deductEvent).toMatchObject({ type: "crash_500", route: "deduct", request_id: "req-o-42", order_id: "o-42" });
    expect(release).toMatchObject({ type: "crash_500", route: "release", request_id: "req-r", order_id: "o-43" });
  });
});

describe("classifyInventoryRoute", () => {
  test.each([
    ["POST", "/api/inventory/deduct", "deduct"],
    ["POST", "/api/inventory/release", "release"],
    ["POST", "/api/inventory/orders/abc/release", "release"],
    ["GET", "/api/inventory", "list"],
    ["GET", "/api/inventory/", "list"],
    ["GET", "/api/inventory/ps5", "get"],
    ["GET", "/api/inventory/health", "health"],
    ["GET", "/api/inventory/deductions/x/y", null],
    ["POST", "/api/inventory", null],
    ["GET", "/api/inventoryx", null],
    ["POST", "/api/admin/inventory/ps5/restock", null],
    ["GET", "/health", null],
  ] as const)("%s %s → %p", (method, path, route) => {
    expect(classifyInventoryRoute(method, path)).toBe(route);
  });
});
