import { describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { createLogger } from "../../platform/logging.ts";
import { noteOrderId } from "../../platform/log-context.ts";
import { createMetrics } from "../../platform/metrics.ts";
import { createApp, createFetch, routeLabel } from "./app.ts";

describe("the request's outer layer: route labels and log lines", () => {
  function system() {
    const lines: string[] = [];
    const logger = createLogger("info", { role: "all" }, { write: (s: string) => (lines.push(s.trim()), true) });
    const metrics = createMetrics();
    const reportLater = (msg: string) => logger.warn({ context: "callback" }, msg);
    const plugin = new Elysia({ prefix: "/api/orders" })
      .post("/", async () => {
        noteOrderId("order-1");
        await Bun.sleep(1);
        reportLater("recovered error");
        return new Response("{}", { status: 201 });
      })
      .get("/boom", () => {
        throw new Error("boom");
      });
    const app = createApp({ logger, metrics, health: { role: "all", ready: {}, deep: {} }, plugins: [plugin], role: "all" });
    return { lines, metrics, fetch: createFetch(app, { logger, metrics }, { isDraining: () => false }) };
  }

  test("a prefixed plugin's root route is labelled without its trailing slash", async () => {
    expect(routeLabel("/api/orders/")).toBe("/api/orders");
    expect(routeLabel("/")).toBe("/");
    expect(routeLabel(undefined)).toBe("unmatched");
    const s = system();
    const res = await s.fetch(new Request("http://localhost/api/orders", { method: "POST" }));
    expect(res.status).toBe(201);
    expect(await s.metrics.scrape()).toContain('http_request_duration_seconds_count{route="/api/orders",method="POST",status="201"} 1');
  });

  test("lines written while serving a request, errors and callbacks included, carry its request_id (and order_id) once", async () => {
    const s = system();
    await s.fetch(new Request("http://localhost/api/orders", { method: "POST", headers: { "x-request-id": "req-a" } }));
    const boom = await s.fetch(new Request("http://localhost/api/orders/boom", { headers: { "x-request-id": "req-b" } }));
    expect(boom.status).toBe(500);
    const parsed = s.lines.map((l) => JSON.parse(l));
    expect(parsed.map((l) => [l.msg, l.request_id, l.order_id])).toEqual([
      ["recovered error", "req-a", "order-1"],
      ["request", "req-a", "order-1"],
      ["unhandled error", "req-b", undefined],
      ["request", "req-b", undefined],
    ]);
    for (const l of s.lines) expect(l.match(/"request_id"/g)).toHaveLength(1);
  });
});
