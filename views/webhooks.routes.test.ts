import { describe, expect, test } from "bun:test";
import { createViews, type WebhookAttemptView, type WebhookBreakers, type WebhookEndpointView, type WebhooksAccess } from "./index.ts";
import { CSRF_COOKIE, UiSecurity, parseCookies } from "./ui-security.ts";

const SECRET = "whsec_c2VjcmV0LW5ldmVyLXNob3du";
const TOKEN = "admin-token-for-tests";
const NOW = Date.parse("2026-12-02T12:00:00.000Z");

/** The webhook service as the page sees it: endpoints (one carrying a secret it must not show), attempts, keyed redeliveries. */
class FakeWebhooks implements WebhooksAccess {
  readonly endpoints: Array<WebhookEndpointView & { secret: string }> = [];
  readonly attempts = new Map<string, WebhookAttemptView[]>();
  readonly keys = new Map<string, { status: number; body: string }>();
  redeliveries: string[] = [];
  enabled: string[] = [];

  async list() {
    return this.endpoints.map((e) => ({ ...e }));
  }
  async deliveries(id: string, limit: number) {
    return { webhook_id: id, attempts: (this.attempts.get(id) ?? []).slice(0, limit) };
  }
  async redeliver(eventId: string, key: string) {
    const stored = this.keys.get(key);
    if (stored) return { ...stored, replayed: true };
    if (![...this.attempts.values()].flat().some((a) => a.event_id === eventId)) throw Object.assign(new Error(`No event with id "${eventId}"`), { code: "not_found" });
    this.redeliveries.push(eventId);
    const answer = { status: 202, body: JSON.stringify({ event_id: eventId, deliveries: 1 }) };
    this.keys.set(key, answer);
    return { ...answer, replayed: false };
  }
  async enable(id: string, key: string) {
    const stored = this.keys.get(key);
    if (stored) return { ...stored, replayed: true };
    const e = this.endpoints.find((x) => x.id === id);
    if (!e) throw Object.assign(new Error(`No webhook with id "${id}"`), { code: "not_found" });
    Object.assign(e, { disabled_at: null, disabled_reason: null, failing_since: null });
    this.enabled.push(id);
    const answer = { status: 200, body: JSON.stringify(e) };
    this.keys.set(key, answer);
    return { ...answer, replayed: false };
  }
}

function endpoint(over: Partial<WebhookEndpointView> = {}): WebhookEndpointView & { secret: string } {
  return {
    id: "wh_1",
    url: "https://shop.example/hooks",
    events: ["*"],
    description: "ERP",
    created_at: new Date(NOW - 3_600_000).toISOString(),
    failing_since: null,
    disabled_at: null,
    disabled_reason: null,
    pending_deliveries: 0,
    oldest_pending_at: null,
    secret: SECRET,
    ...over,
  };
}

function pages(
  webhooks: WebhooksAccess | undefined,
  config = { adminToken: TOKEN, nodeEnv: "production", csrfSecret: "unit-test-secret" },
  webhookBreakers?: WebhookBreakers,
) {
  const app = createViews({
    webhookBreakers,
    window: { snapshot: () => ({ averageMs: null, count: 0, status: "optimal" }), record: () => {} },
    inventory: { list: async () => [], get: async () => null, movements: async () => null },
    health: { ready: {}, deep: {}, role: "all" },
    webhooks,
    config,
    clock: { now: () => NOW, sleep: async () => {} },
  });
  const security = new UiSecurity(config);
  const session = security.session(new Request("http://localhost/"));
  const csrf = `${CSRF_COOKIE}=${parseCookies(session.setCookies[0]!.split(";")[0]!)[CSRF_COOKIE]!}`;
  const admin = security.adminCookie(new Request("http://localhost/"), TOKEN).split(";")[0]!;
  const cookie = (signedIn: boolean) => (signedIn ? `${csrf}; ${admin}` : csrf);
  return {
    token: session.csrfToken,
    get: async (path: string, signedIn = true) => {
      const res = await app.handle(new Request(`http://localhost${path}`, { headers: { cookie: cookie(signedIn) } }));
      return { status: res.status, html: await res.text() };
    },
    post: async (path: string, fields: Record<string, string>, extra: Record<string, string> = {}, signedIn = true) => {
      const headers = { cookie: cookie(signedIn), "sec-fetch-site": "same-origin", "content-type": "application/x-www-form-urlencoded", ...extra };
      const res = await app.handle(new Request(`http://localhost${path}`, { method: "POST", headers, body: new URLSearchParams(fields) }));
      return { status: res.status, html: await res.text() };
    },
  };
}

function seeded() {
  const hooks = new FakeWebhooks();
  hooks.endpoints.push(endpoint(), endpoint({ id: WH_2, pending_deliveries: 1234, oldest_pending_at: new Date(NOW - 7_200_000).toISOString(), url: "https://dead.example/in", description: null, failing_since: new Date(NOW - 86_400_000 * 3).toISOString(), disabled_at: new Date(NOW - 60_000).toISOString(), disabled_reason: "failing for 3 days" }));
  hooks.attempts.set("wh_1", [
    { at: new Date(NOW - 5_000).toISOString(), event_id: "evt_b", attempt: 1, status_code: 200, duration_ms: 42, error: null },
    { at: new Date(NOW - 60_000).toISOString(), event_id: "evt_a", attempt: 2, status_code: 200, duration_ms: 31, error: null },
    { at: new Date(NOW - 120_000).toISOString(), event_id: "evt_a", attempt: 1, status_code: 503, duration_ms: 12, error: "HTTP 503" },
  ]);
  hooks.attempts.set(WH_2, [{ at: new Date(NOW - 70_000).toISOString(), event_id: "evt_a", attempt: 9, status_code: null, duration_ms: 3000, error: "timeout" }]);
  return hooks;
}

const WH_2 = "wh_22222222222222222222222222222222";
const enableKey = (html: string, id: string) => new RegExp(`name="webhook_id" value="${id}">\\s*<input type="hidden" name="idempotency_key" value="([^"]+)"`).exec(html)?.[1];

const keyFor = (html: string, eventId: string) =>
  new RegExp(`name="event_id" value="${eventId}">\\s*<input type="hidden" name="idempotency_key" value="([^"]+)"`).exec(html)?.[1];

describe("webhooks page", () => {
  test("signed out: the sign-in form for /webhooks and no endpoint data", async () => {
    const v = pages(seeded());
    const { status, html } = await v.get("/webhooks", false);
    expect(status).toBe(200);
    expect(html).toContain('action="/ui/login"');
    expect(html).toContain('name="next" value="/webhooks"');
    expect(html).not.toContain("shop.example");
    expect(html).not.toContain("evt_a");
    expect(html).not.toContain(SECRET);
    expect(html).toContain('href="/webhooks"');
  });

  test("signed in: endpoints with health and recent attempts, a Redeliver per event, no secret anywhere", async () => {
    const v = pages(seeded());
    const { status, html } = await v.get("/webhooks");
    expect(status).toBe(200);
    expect(html).toContain("<code>https://shop.example/hooks</code>");
    expect(html).toContain('data-health="enabled"');
    expect(html).toContain('data-health="disabled"');
    expect(html).toContain("failing for 3 days");
    expect(html).toMatch(/<tr class="attempt" data-event-id="evt_a" data-outcome="failed">.*<td class="num">503<\/td>.*HTTP 503/);
    expect(html).toContain("timeout");
    // One button per event and endpoint: evt_a has two attempts on wh_1, one button there.
    expect(html.match(/data-redeliver="evt_a"/g)?.length).toBe(2);
    expect(html.match(/data-redeliver="evt_b"/g)?.length).toBe(1);
    expect(keyFor(html, "evt_b")).toMatch(/^ui-redeliver-[0-9a-f-]{36}$/);
    expect(html).not.toContain(SECRET);
    expect(html).not.toContain("whsec_");
    expect(html).not.toContain(TOKEN);
  });

  test("redeliver with the form's key: a double submit is one redelivery; htmx gets the message only", async () => {
    const hooks = seeded();
    const v = pages(hooks);
    const key = keyFor((await v.get("/webhooks")).html, "evt_a")!;
    const fields = { csrf_token: v.token, event_id: "evt_a", idempotency_key: key };
    const first = await v.post("/ui/webhooks/redeliver", fields);
    expect(first.status).toBe(200);
    expect(first.html).toContain("<h1>Webhooks</h1>");
    expect(first.html).toContain("will be sent again to 1 endpoint");
    const second = await v.post("/ui/webhooks/redeliver", fields, { "hx-request": "true" });
    expect(second.status).toBe(200);
    expect(second.html).toContain("already redelivered");
    expect(second.html).not.toContain("<h1>");
    expect(hooks.redeliveries).toEqual(["evt_a"]);
    const unknown = await v.post("/ui/webhooks/redeliver", { ...fields, event_id: "evt_nope", idempotency_key: "ui-redeliver-other" });
    expect(unknown.status).toBe(404);
    const noKey = await v.post("/ui/webhooks/redeliver", { csrf_token: v.token, event_id: "evt_a" });
    expect(noKey.status).toBe(400);
    expect(hooks.redeliveries).toEqual(["evt_a"]);
  });

  test("per endpoint: pending deliveries with the oldest one's age, and whether its breaker is open in this process", async () => {
    const open = await pages(seeded(), undefined, { openEndpoints: () => [WH_2] }).get("/webhooks");
    const card = (html: string, id: string) => html.slice(html.indexOf(`data-webhook-id="${id}"`)).split("</section>")[0]!;
    expect(card(open.html, "wh_1")).toContain('<span data-pending="0">none</span>');
    expect(card(open.html, "wh_1")).toContain('data-breaker="closed"');
    expect(card(open.html, WH_2)).toMatch(/<span data-pending="1234">1,234<\/span> <span class="muted">oldest since <time [^>]*>2 h ago<\/time>/);
    expect(card(open.html, WH_2)).toContain('data-breaker="open"');
    // Without a relay in this process the page does not guess.
    const none = await pages(seeded()).get("/webhooks");
    expect(none.html.match(/data-breaker="unknown"/g)?.length).toBe(2);
    expect(none.html).not.toContain('data-breaker="open"');
  });

  test("Re-enable on a disabled endpoint only; the form's key makes a double submit one change", async () => {
    const hooks = seeded();
    const v = pages(hooks);
    const page = (await v.get("/webhooks")).html;
    expect(page.match(/data-enable=/g)?.length).toBe(1);
    const key = enableKey(page, WH_2)!;
    expect(key).toMatch(/^ui-enable-[0-9a-f-]{36}$/);
    const fields = { csrf_token: v.token, webhook_id: WH_2, idempotency_key: key };
    const first = await v.post("/ui/webhooks/enable", fields);
    expect(first.status).toBe(200);
    expect(first.html).toContain("is enabled again");
    expect(first.html).not.toContain("data-enable=");
    expect(first.html.match(/data-health="enabled"/g)?.length).toBe(2);
    const second = await v.post("/ui/webhooks/enable", fields, { "hx-request": "true" });
    expect(second.status).toBe(200);
    expect(second.html).toContain("already re-enabled");
    expect(second.html).not.toContain("<h1>");
    expect(hooks.enabled).toEqual([WH_2]);
    const unknown = await v.post("/ui/webhooks/enable", { ...fields, webhook_id: "wh_99999999999999999999999999999999", idempotency_key: "ui-enable-other" });
    expect(unknown.status).toBe(404);
    expect((await v.post("/ui/webhooks/enable", { ...fields, webhook_id: "nope" })).status).toBe(400);
    expect((await v.post("/ui/webhooks/enable", { csrf_token: v.token, webhook_id: WH_2 })).status).toBe(400);
    expect((await v.post("/ui/webhooks/enable", { ...fields, csrf_token: "" })).status).toBe(403);
    expect((await v.post("/ui/webhooks/enable", fields, {}, false)).status).toBe(401);
    expect(hooks.enabled).toEqual([WH_2]);
  });

  test("refused without the CSRF token, from another origin, or signed out", async () => {
    const hooks = seeded();
    const v = pages(hooks);
    const fields = { csrf_token: v.token, event_id: "evt_a", idempotency_key: "ui-redeliver-1" };
    expect((await v.post("/ui/webhooks/redeliver", { ...fields, csrf_token: "" })).status).toBe(403);
    expect((await v.post("/ui/webhooks/redeliver", fields, { "sec-fetch-site": "cross-site", origin: "http://evil.example" })).status).toBe(403);
    expect((await v.post("/ui/webhooks/redeliver", fields, {}, false)).status).toBe(401);
    expect(hooks.redeliveries).toEqual([]);
  });

  test("closed in production without ADMIN_TOKEN; says so where no orders module sends events", async () => {
    const closed = pages(seeded(), { adminToken: undefined as unknown as string, nodeEnv: "production", csrfSecret: "k" });
    const c = await closed.get("/webhooks", false);
    expect(c.html).toContain("Webhooks are closed");
    expect(c.html).not.toContain("shop.example");
    const none = await pages(undefined).get("/webhooks");
    expect(none.html).toContain("no webhooks here");
  });

  test("a hostile description, URL, event id and error are shown as text", async () => {
    const hooks = new FakeWebhooks();
    hooks.endpoints.push(endpoint({ url: 'https://x.example/"><script>alert(1)</script>', description: "<img src=x onerror=alert(2)>", disabled_at: new Date(NOW).toISOString(), disabled_reason: "<b>bad</b>" }));
    hooks.attempts.set("wh_1", [{ at: new Date(NOW).toISOString(), event_id: 'evt_"><i>', attempt: 1, status_code: 500, duration_ms: 1, error: "<script>alert(3)</script>" }]);
    const { html } = await pages(hooks).get("/webhooks");
    expect(html).not.toContain("<script>alert");
    expect(html).not.toContain("<img src=x");
    expect(html).not.toContain("<b>bad</b>");
    expect(html).not.toContain('"><i>');
    expect(html).toContain("&lt;script&gt;alert(3)&lt;/script&gt;");
    expect(html).toContain("&lt;img src=x onerror=alert(2)&gt;");
  });
});
