import { afterEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { checkInvariants } from "./invariants.ts";
import { renderWebhooks } from "./report-markdown.ts";
import type { ListedEvent, ReceivedAttempt, WebhookObservation } from "./types.ts";
import { checkWebhooks, eventKey, WEBHOOK_INVARIANTS } from "./webhook-invariants.ts";
import { signatureMatches, WebhookReceiver } from "./webhook-receiver.ts";
import { awaitDrained, oldestUndeliveredAge, webhookChaosPlan, webhookSummary } from "./webhooks.ts";

/**
 * The chaos run's webhook side without a system: the receiver over real HTTP with signatures
 * made by the reference library, and every webhook invariant on made-up observations — one
 * consistent, then one breach of each kind.
 */

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ORDER = "0b6f6a52-3c1e-4a8e-9d2f-5b7c1e2a9f10";
const ORDER2 = "1c7f7b63-4d2f-4b9f-8e3a-6c8d2f3b0a21";
const evtId = (order: string, seq: number) => `evt_${order.replace(/-/g, "")}${seq.toString(16).padStart(8, "0")}`;
const sha = (s: string) => createHash("sha256").update(s).digest("hex");

describe("webhook receiver", () => {
  let rx: WebhookReceiver | null = null;
  afterEach(() => rx?.stop());
  const t0 = performance.now();
  const elapsed = () => performance.now() - t0;

  const post = async (url: string, id: string, body: string, secret = SECRET, signal?: AbortSignal) => {
    const at = new Date();
    const signature = new Webhook(secret).sign(id, at, body);
    return fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "webhook-id": id, "webhook-timestamp": String(Math.floor(at.getTime() / 1000)), "webhook-signature": signature },
      body,
      signal,
    });
  };
  const body = (seq: number, status = "confirmed") => JSON.stringify({ id: evtId(ORDER, seq), type: `order.${status}`, created_at: new Date().toISOString(), data: { order_id: ORDER, status, seq } });

  test("records each attempt: id, body hash, signature checked twice, the order and seq in the body, what it answered", async () => {
    rx = new WebhookReceiver({ seed: 1, failRate: 0, slowRate: 0, slowMs: [0, 0], elapsed });
    rx.start();
    rx.setSecret(SECRET);
    const b = body(2);
    const res = await post(rx.url, evtId(ORDER, 2), b);
    expect(res.status).toBe(204);
    const bad = await post(rx.url, evtId(ORDER, 2), b, "whsec_" + Buffer.from("another key of 24 bytes!").toString("base64"));
    expect(bad.status).toBe(204);
    expect(rx.attempts).toHaveLength(2);
    const [a, c] = rx.attempts;
    expect(a).toMatchObject({ id: evtId(ORDER, 2), body_sha256: sha(b), status: 204, signature_ok: true, order_id: ORDER, seq: 2, type: "order.confirmed", order_status: "confirmed" });
    expect(a!.end_ms).toBeGreaterThanOrEqual(a!.start_ms);
    expect(c!.signature_ok).toBe(false);
  });

  test("our own HMAC check agrees with the reference library and refuses a changed body", () => {
    const at = new Date();
    const sig = new Webhook(SECRET).sign("evt_1", at, "{}");
    const ts = String(Math.floor(at.getTime() / 1000));
    expect(signatureMatches(SECRET, "evt_1", ts, "{}", `v1,bogus ${sig}`)).toBe(true);
    expect(signatureMatches(SECRET, "evt_1", ts, "{ }", sig)).toBe(false);
    expect(signatureMatches(SECRET, "evt_2", ts, "{}", sig)).toBe(false);
  });

  test("answers 503 at the seeded rate, the same way for the same seed", async () => {
    const statuses = async (seed: number) => {
      rx?.stop();
      rx = new WebhookReceiver({ seed, failRate: 0.5, slowRate: 0, slowMs: [0, 0], elapsed });
      rx.start();
      rx.setSecret(SECRET);
      const out: number[] = [];
      for (let i = 0; i < 40; i++) out.push((await post(rx.url, evtId(ORDER, 1), body(1, "created"))).status);
      return out;
    };
    const one = await statuses(42);
    expect(one.filter((s) => s === 503).length).toBeGreaterThan(10);
    expect(one.filter((s) => s === 204).length).toBeGreaterThan(10);
    expect(await statuses(42)).toEqual(one);
  });

  test("down means connection refused and is recorded; it comes back on the same port", async () => {
    rx = new WebhookReceiver({ seed: 1, failRate: 0, slowRate: 0, slowMs: [0, 0], elapsed });
    rx.start();
    rx.setSecret(SECRET);
    const url = rx.url;
    rx.stop();
    expect(rx.up).toBe(false);
    await expect(post(url, evtId(ORDER, 1), body(1))).rejects.toThrow();
    rx.start();
    expect(rx.url).toBe(url);
    expect((await post(url, evtId(ORDER, 1), body(1))).status).toBe(204);
    expect(rx.downtimes).toHaveLength(1);
    expect(rx.downtimes[0]!.to_ms).not.toBeNull();
  });

  test("a sender that hangs up while the receiver is slow: no answer recorded, the attempt ends when it left", async () => {
    rx = new WebhookReceiver({ seed: 1, failRate: 0, slowRate: 1, slowMs: [800, 800], elapsed });
    rx.start();
    rx.setSecret(SECRET);
    await expect(post(rx.url, evtId(ORDER, 1), body(1), SECRET, AbortSignal.timeout(150))).rejects.toThrow();
    await Bun.sleep(900);
    const [a] = rx.attempts;
    expect(a!.status).toBe(0);
    expect(a!.end_ms - a!.start_ms).toBeLessThan(700);
  });
});

const WALL = Date.parse("2026-01-05T10:00:00.000Z");
/** A consistent world: two orders, their events, every attempt seen by the receiver. */
function world(): WebhookObservation {
  const at = (ms: number) => new Date(WALL + ms).toISOString();
  const events: ListedEvent[] = [
    { id: evtId(ORDER, 1), type: "order.created", order_id: ORDER, seq: 1, status: "pending", created_at: at(0) },
    { id: evtId(ORDER, 2), type: "order.queued", order_id: ORDER, seq: 2, status: "queued", created_at: at(250) },
    { id: evtId(ORDER2, 1), type: "order.created", order_id: ORDER2, seq: 1, status: "pending", created_at: at(90) },
    { id: evtId(ORDER, 3), type: "order.confirmed", order_id: ORDER, seq: 3, status: "confirmed", created_at: at(950) },
    { id: evtId(ORDER2, 2), type: "order.cancelled", order_id: ORDER2, seq: 2, status: "cancelled", created_at: at(100) },
  ];
  const att = (e: ListedEvent, start: number, end: number, status: number): ReceivedAttempt => ({
    id: e.id,
    timestamp: "1767607200",
    start_ms: start,
    end_ms: end,
    body_sha256: sha(e.id),
    status,
    signature_ok: true,
    order_id: e.order_id,
    seq: e.seq,
    type: e.type,
    order_status: e.status,
  });
  const [c1, q1, c2, k1, x2] = events as [ListedEvent, ListedEvent, ListedEvent, ListedEvent, ListedEvent];
  return {
    events,
    attempts: [att(c1, 0, 5, 503), att(c1, 300, 305, 204), att(q1, 306, 310, 0), att(c2, 100, 101, 204), att(q1, 900, 905, 204), att(q1, 1000, 1004, 204), att(k1, 1005, 1010, 204), att(x2, 102, 110, 204)],
    // Order 2 was cancelled while pending: `cancelling` emits nothing.
    histories: { [ORDER]: ["pending", "queued", "confirmed"], [ORDER2]: ["pending", "cancelling", "cancelled"] },
    drained: true,
    // Healed at 500 ms: the queued event (changed at 250) was still owed; it got its 2xx at 905.
    healed_ms: 500,
    started_wall_ms: WALL,
    drain_bound_ms: 120_000,
  };
}
const verdictOf = (w: WebhookObservation, name: string) => checkWebhooks(w).find((v) => v.name === name)!;
const failing = (w: WebhookObservation) => checkWebhooks(w).filter((v) => v.status === "fail").map((v) => v.name);

describe("webhook invariants", () => {
  test("a consistent observation passes all five; without one they are skipped, not passed", () => {
    const vs = checkWebhooks(world());
    expect(vs.map((v) => v.name)).toEqual([...WEBHOOK_INVARIANTS]);
    expect(vs.every((v) => v.status === "pass")).toBe(true);
    expect(verdictOf(world(), "webhooks_every_change_delivered").checked).toBe(5 + 2);
    expect(checkWebhooks(null).every((v) => v.status === "skipped")).toBe(true);
    const all = checkInvariants({ orders: [], items: [], ledger: null, settleBoundMs: 1, webhooks: world() });
    expect(all.filter((v) => v.name.startsWith("webhooks_")).every((v) => v.status === "pass")).toBe(true);
  });

  test("every change delivered: an event never answered 2xx", () => {
    const w = world();
    w.attempts = w.attempts.filter((a) => !(a.id === evtId(ORDER2, 2)));
    expect(failing(w)).toEqual(["webhooks_every_change_delivered"]);
    expect(verdictOf(w, "webhooks_every_change_delivered").breaches[0]!.subject).toBe(evtId(ORDER2, 2));
  });

  test("stock.low events (no order): delivered once suffices, never delivered or a body of another type breaks, and they stay out of the per-order checks", () => {
    const stock = { id: `evt_${"ab".repeat(16)}00000000`, type: "stock.low" };
    const got = (status: number, type = "stock.low"): ReceivedAttempt => ({
      id: stock.id, timestamp: "1767607200", start_ms: 2000, end_ms: 2001, body_sha256: sha(stock.id), status, signature_ok: true, order_id: null, seq: null, type, order_status: null,
    });
    const w = world();
    w.other_events = [stock];
    w.attempts.push(got(503), { ...got(204), start_ms: 2100, end_ms: 2101 });
    expect(failing(w)).toEqual([]);
    expect(verdictOf(w, "webhooks_every_change_delivered").checked).toBe(5 + 1 + 2);
    const never = world();
    never.other_events = [stock];
    never.attempts.push(got(503));
    expect(failing(never)).toEqual(["webhooks_every_change_delivered"]);
    const wrong = world();
    wrong.other_events = [stock];
    wrong.attempts.push(got(204, "order.created"));
    expect(failing(wrong)).toEqual(["webhooks_nothing_for_rolled_back"]);
  });

  test("every change delivered: a history change with no event, a seq gap, an unreadable history; and a note when the backlog never drained", () => {
    const w = world();
    w.histories[ORDER] = ["pending", "queued", "queued", "confirmed"];
    expect(verdictOf(w, "webhooks_every_change_delivered").breaches.map((b) => b.detail)).toEqual(["history pending → queued → queued → confirmed; events pending → queued → confirmed"]);
    const gap = world();
    gap.events = gap.events.filter((e) => e.id !== evtId(ORDER, 2));
    gap.attempts = gap.attempts.filter((a) => a.id !== evtId(ORDER, 2));
    gap.histories[ORDER] = ["pending", "confirmed"];
    expect(verdictOf(gap, "webhooks_every_change_delivered").breaches[0]!.detail).toContain("event seqs 1, 3");
    const unread = world();
    unread.histories[ORDER2] = null;
    unread.drained = false;
    const v = verdictOf(unread, "webhooks_every_change_delivered");
    expect(v.breaches[0]!.detail).toBe("its history could not be read");
    expect(v.note).toContain("not drained");
  });

  test("same id, same body: two bodies under one id, or a signature that did not verify", () => {
    const w = world();
    w.attempts[1] = { ...w.attempts[1]!, body_sha256: sha("other") };
    expect(failing(w)).toEqual(["webhooks_same_id_same_body"]);
    const s = world();
    s.attempts[3] = { ...s.attempts[3]!, signature_ok: false };
    expect(verdictOf(s, "webhooks_same_id_same_body").breaches[0]!.detail).toContain("did not verify");
    // A body cut off on the way (no hash) is neither compared nor judged by its signature.
    const cut = world();
    cut.attempts.push({ ...cut.attempts[0]!, body_sha256: "", signature_ok: false, status: 0, start_ms: 6, end_ms: 7 });
    expect(failing(cut)).toEqual([]);
  });

  test("per-order sequence: seq n+1 attempted before seq n's first 2xx, or delivered with seq n never answered 2xx", () => {
    const w = world();
    // The queued event's first (unanswered) attempt moved before the created event's 2xx at 305.
    w.attempts[2] = { ...w.attempts[2]!, start_ms: 200, end_ms: 210 };
    expect(failing(w)).toEqual(["webhooks_per_order_sequence"]);
    expect(verdictOf(w, "webhooks_per_order_sequence").breaches[0]!.detail).toBe("seq 2 arrived at 200 ms, before seq 1's first 2xx at 305 ms");
    // Known by its id alone when the body never arrived.
    const byId = world();
    byId.attempts[2] = { ...byId.attempts[2]!, start_ms: 200, end_ms: 210, order_id: null, seq: null, body_sha256: "" };
    expect(failing(byId)).toEqual(["webhooks_per_order_sequence"]);
    const never = world();
    never.attempts = never.attempts.filter((a) => !(a.id === evtId(ORDER, 1) && a.status === 204));
    expect(failing(never)).toEqual(["webhooks_every_change_delivered", "webhooks_per_order_sequence"]);
  });

  test("nothing for a rolled-back change: an id no event has, a body that is not the listed event, a state the history never had", () => {
    const w = world();
    const ghost = evtId(ORDER, 4);
    w.attempts.push({ ...w.attempts[6]!, id: ghost, seq: 4, start_ms: 2000, end_ms: 2001 });
    expect(failing(w)).toEqual(["webhooks_nothing_for_rolled_back"]);
    expect(verdictOf(w, "webhooks_nothing_for_rolled_back").breaches[0]!.subject).toBe(ghost);
    const body = world();
    body.attempts[6] = { ...body.attempts[6]!, order_status: "rejected" };
    expect(verdictOf(body, "webhooks_nothing_for_rolled_back").breaches[0]!.detail).toContain("body names order.confirmed rejected");
    const hist = world();
    hist.events[3] = { ...hist.events[3]!, type: "order.rejected", status: "rejected" };
    hist.attempts[6] = { ...hist.attempts[6]!, type: "order.rejected", order_status: "rejected" };
    expect(verdictOf(hist, "webhooks_nothing_for_rolled_back").breaches[0]!.detail).toContain("yet the order's change 3 is confirmed");
  });

  test("no concurrent attempts: two attempts of one id open at once", () => {
    const w = world();
    w.attempts.push({ ...w.attempts[5]!, start_ms: 1002, end_ms: 1003, status: 503 });
    expect(failing(w)).toEqual(["webhooks_no_concurrent_attempts"]);
    expect(verdictOf(w, "webhooks_no_concurrent_attempts").breaches[0]!.subject).toBe(evtId(ORDER, 2));
    // Back to back is not at once.
    const b = world();
    b.attempts.push({ ...b.attempts[5]!, start_ms: 1004, end_ms: 1005, status: 503 });
    expect(failing(b)).toEqual([]);
  });

  test("an event id names its order and seq", () => {
    expect(eventKey(evtId(ORDER, 258))).toEqual({ orderId: ORDER, seq: 258 });
    expect(eventKey("evt_1")).toBeNull();
  });
});

describe("webhook figures and the drain wait", () => {
  test("the summary counts answers, duplicates, kills and downtime; the Markdown shows them", () => {
    const w = world();
    const s = webhookSummary(w, {
      subscription: "wh_1",
      url: "http://127.0.0.1:1/hooks",
      relaySettings: { WEBHOOK_TIMEOUT_MS: "3000" },
      kills: [{ relay: "a", pid: 10, killed_ms: 100, restarted_ms: 2100 }],
      relayStarts: 3,
      downtime: [{ from_ms: 1000, to_ms: 6000 }],
    });
    expect(s).toMatchObject({ events_listed: 5, attempts: 8, answered_2xx: 6, answered_5xx: 1, no_answer: 1, events_delivered: 5, max_attempts_per_event: 3, max_deliveries_per_event: 2, events_delivered_more_than_once: 1, receiver_down_ms: 5000, signatures_failed: 0 });
    // One event owed at healing, answered 405 ms after it; lags 10, 11, 60, 305 and 655 ms.
    expect(s).toMatchObject({ backlog_at_heal: 1, drain_ms: 405, delivery_lag_ms: { p50: 60, p95: 655, max: 655 } });
    const lost = world();
    lost.attempts = lost.attempts.filter((a) => !(a.id === evtId(ORDER, 2) && a.status === 204));
    expect(webhookSummary(lost, { subscription: "wh_1", url: "", relaySettings: {}, kills: [], relayStarts: 2, downtime: [] }).drain_ms).toBeNull();
    const md = renderWebhooks({ webhooks: { ...s, final_wait_ms: 900 } }).join("\n");
    expect(md).toContain("## Webhooks");
    expect(md).toContain("| relay kills (SIGKILL) during the load | 1, restarted after 2 s on average (3 relay starts in all) |");
    expect(md).toContain("| time to drain after healing (the last of that backlog answered 2xx) | 0.4 s |");
    expect(md).toContain("| change to first 2xx, every event: p50 / p95 / max | 0.1 s / 0.7 s / 0.7 s |");
    expect(renderWebhooks({})).toEqual([]);
    // A backlog that never emptied names what held the outbox back.
    const stuck = renderWebhooks({ webhooks: { ...s, final_wait_ms: null, oldest_transaction: "database bench (psql): open 134 s" } }).join("\n");
    expect(stuck).toContain("not empty within 120 s; the oldest transaction on the PostgreSQL server then: database bench (psql): open 134 s");
  });

  test("the drain wait reads the oldest-undelivered gauge: done after two zeros, null at the bound", async () => {
    expect(oldestUndeliveredAge("# HELP x\nwebhook_oldest_undelivered_age_seconds 12.5\n")).toBe(12.5);
    expect(oldestUndeliveredAge("nothing here")).toBeNull();
    const readings = ["3", "0", "1", "0", "0"];
    let i = 0;
    const ms = await awaitDrained(async () => `webhook_oldest_undelivered_age_seconds ${readings[i++] ?? "0"}`, { boundMs: 5_000, pollMs: 1 });
    expect(ms).not.toBeNull();
    expect(i).toBe(5);
    expect(await awaitDrained(async () => "webhook_oldest_undelivered_age_seconds 4", { boundMs: 30, pollMs: 5 })).toBeNull();
  });

  test("the plan puts the receiver's downtime inside the load and keeps it 5–20 s", () => {
    expect(webhookChaosPlan(20_000)).toMatchObject({ downAfterMs: 5_000, downForMs: 5_000 });
    expect(webhookChaosPlan(300_000)).toMatchObject({ downAfterMs: 60_000, downForMs: 20_000 });
  });
});
