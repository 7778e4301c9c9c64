// k6 chaos scenario for Valerix: creates the run's own items, starts a chaos experiment through the
// admin API, places orders of 1–MAX_LINES lines over those items with careful clients, cancels every
// CANCEL_EVERY-th one right after its answer (while queued or the breaker is open, often), then
// heals and checks in teardown: every accepted order and cancel final, every accepted cancel
// `cancelled`, and initial stock = current stock + Σ lines of confirmed orders.
// The teardown learns each order's fate the way a careful client would: it resends every key
// (the server replays its answer, or takes an order that never got through) and follows Location;
// it resends each cancel's key the same way.
//
//   k6 run -e BASE_URL=http://127.0.0.1:3000 -e ADMIN_TOKEN=... -e PRESET=moderate -e SEED=42 verify/k6/chaos.js
//
// Env: BASE_URL (orders API), INVENTORY_URL (default BASE_URL), CHAOS_URL (default INVENTORY_URL),
// ADMIN_TOKEN, PRESET (mild | moderate | extreme), SEED, ORDERS, VUS, ITEMS (count), MAX_ATTEMPTS,
// MAX_LINES (default 4), CANCEL_EVERY (default 10; 0: no cancels), SETTLE_S (wait for final states
// after healing), RUN_ID.
// A failed invariant fails the `invariant_breaches` threshold, so k6 exits non-zero.
import http from "k6/http";
import { check, sleep } from "k6";
import { Counter } from "k6/metrics";
import exec from "k6/execution";
import { adminHeaders, baseUrl, cancelOrder, env, FINAL, linesFor, placeOrder, readOrder } from "./lib.js";

const BASE_URL = baseUrl("BASE_URL", "http://127.0.0.1:3000");
const INVENTORY_URL = baseUrl("INVENTORY_URL", BASE_URL);
const CHAOS_URL = baseUrl("CHAOS_URL", INVENTORY_URL);
const ADMIN_TOKEN = env("ADMIN_TOKEN", "");
const ORDERS = Number(env("ORDERS", "2000"));
const ITEM_COUNT = Number(env("ITEMS", "8"));
const MAX_ATTEMPTS = Number(env("MAX_ATTEMPTS", "8"));
const SETTLE_S = Number(env("SETTLE_S", "120"));
const MAX_LINES = Number(env("MAX_LINES", "4"));
const CANCEL_EVERY = Number(env("CANCEL_EVERY", "10"));

/** The experiment, as POST /api/admin/chaos takes it (kept in step by verify/verify.test.ts). */
export const CHAOS_BODY = { preset: env("PRESET", "moderate"), seed: Number(env("SEED", "42")), ttl_s: 1800 };

const breaches = new Counter("invariant_breaches");

export const options = {
  scenarios: {
    orders: { executor: "shared-iterations", vus: Number(env("VUS", "24")), iterations: ORDERS, maxDuration: "15m" },
  },
  setupTimeout: "60s",
  teardownTimeout: "15m",
  thresholds: {
    invariant_breaches: ["count<1"],
    order_unexpected_answers: ["count<1"],
    cancel_unexpected_answers: ["count<1"],
  },
};

function itemId(runId, i) {
  return "k6-" + runId + "-" + (i + 1);
}

function orderFor(runId, n) {
  const items = [];
  for (let i = 0; i < ITEM_COUNT; i++) items.push(itemId(runId, i));
  const key = "k6-" + runId + "-o" + n;
  return { key: key, lines: linesFor(items, n, MAX_LINES), cancelKey: CANCEL_EVERY > 0 && n % CANCEL_EVERY === 3 ? key + "-cancel" : null };
}

export function setup() {
  const runId = env("RUN_ID", Date.now().toString(36));
  // Expected demand per item: lines per order × 2 units on average, spread over the items.
  const perItem = (ORDERS * 2 * ((1 + Math.min(MAX_LINES, ITEM_COUNT)) / 2)) / ITEM_COUNT;
  const items = [];
  for (let i = 0; i < ITEM_COUNT; i++) {
    // Every other item is stocked short, so refusals under concurrency are part of the test.
    const stock = Math.max(1, Math.round(perItem * (i % 2 === 0 ? 0.7 : 2)));
    const res = http.post(
      INVENTORY_URL + "/api/admin/inventory",
      JSON.stringify({ item_id: itemId(runId, i), item_name: "k6 chaos " + runId + " " + (i + 1), quantity: stock }),
      { headers: adminHeaders(ADMIN_TOKEN) },
    );
    if (res.status !== 201) throw new Error("creating item " + itemId(runId, i) + " answered " + res.status + ": " + res.body);
    items.push({ item_id: itemId(runId, i), initial: stock });
  }
  const chaos = http.post(CHAOS_URL + "/api/admin/chaos", JSON.stringify(CHAOS_BODY), { headers: adminHeaders(ADMIN_TOKEN) });
  if (chaos.status !== 200) throw new Error("starting chaos answered " + chaos.status + ": " + chaos.body);
  return { runId: runId, items: items };
}

export default function (data) {
  const o = orderFor(data.runId, exec.scenario.iterationInTest);
  const a = placeOrder(BASE_URL, o.key, o.lines, MAX_ATTEMPTS);
  if (o.cancelKey && a.order_id) cancelOrder(BASE_URL, a.order_id, o.cancelKey, MAX_ATTEMPTS);
}

export function teardown(data) {
  const healed = http.del(CHAOS_URL + "/api/admin/chaos", null, { headers: adminHeaders(ADMIN_TOKEN) });
  check(healed, { "chaos healed": (r) => r.status === 200 });

  // Resend every key: a replay tells what the system decided; an order that never got through is taken now.
  const orders = [];
  for (let n = 0; n < ORDERS; n++) {
    const o = orderFor(data.runId, n);
    const a = placeOrder(BASE_URL, o.key, o.lines, MAX_ATTEMPTS, false);
    // The cancel's key again: the server replays its answer, or cancels now if it never got through.
    const c = o.cancelKey && a.order_id ? cancelOrder(BASE_URL, a.order_id, o.cancelKey, MAX_ATTEMPTS, false) : null;
    const cancelAccepted = c !== null && (c.status === 200 || c.status === 202);
    orders.push({ key: o.key, lines: o.lines, status: a.status, order_id: a.order_id, cancelAccepted: cancelAccepted, final: a.status === 201 && !o.cancelKey ? "confirmed" : null });
  }
  let unanswered = 0;
  for (const o of orders) if (o.status === null) unanswered++;
  if (!check(unanswered, { "every order answered after healing": (n) => n === 0 })) breaches.add(unanswered);

  const deadline = Date.now() + SETTLE_S * 1000;
  let open = orders.filter((o) => o.order_id && !o.final);
  while (open.length > 0) {
    for (const o of open) {
      const seen = readOrder(BASE_URL, o.order_id);
      if (seen && (FINAL[seen.status] || seen.status === "missing")) o.final = seen.status;
    }
    open = open.filter((o) => !o.final);
    if (open.length === 0 || Date.now() > deadline) break;
    sleep(1);
  }
  if (!check(open.length, { "every accepted order final after healing": (n) => n === 0 })) breaches.add(open.length);
  let lost = 0;
  for (const o of orders) if (o.final === "missing") lost++;
  if (!check(lost, { "no accepted order lost": (n) => n === 0 })) breaches.add(lost);
  // An accepted cancel (200/202) ends cancelled; nothing else does.
  let cancelBroken = 0;
  for (const o of orders) if (o.final && o.cancelAccepted !== (o.final === "cancelled")) cancelBroken++;
  if (!check(cancelBroken, { "accepted cancels, and only they, end cancelled": (n) => n === 0 })) breaches.add(cancelBroken);

  for (const item of data.items) {
    const res = http.get(INVENTORY_URL + "/api/inventory/" + item.item_id);
    const current = res.status === 200 ? res.json().quantity : null;
    // Σ lines of the orders that stand: confirmed, not cancelled.
    let confirmed = 0;
    for (const o of orders) {
      if (o.final !== "confirmed") continue;
      for (const l of o.lines) if (l.item_id === item.item_id) confirmed += l.quantity;
    }
    const ok = check(current, {
      "stock conserved (initial = current + Σ lines of confirmed orders)": (c) => c !== null && item.initial === c + confirmed,
      "no oversell": (c) => c !== null && c >= 0,
    });
    if (!ok) {
      breaches.add(1, { item: item.item_id });
      console.error("item " + item.item_id + ": initial " + item.initial + ", current " + current + ", confirmed " + confirmed);
    }
  }
}
