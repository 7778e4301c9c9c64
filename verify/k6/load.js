// k6 load scenario for Valerix: careful clients placing orders of 1–MAX_LINES lines over shared
// items against a running deployment, no chaos; every CANCEL_EVERY-th order is cancelled right
// after its answer (a refused one must answer 409). For the verdict on the data (stock, ledger,
// lost orders) use `npm run chaos`, or chaos.js.
//
//   k6 run -e BASE_URL=http://127.0.0.1:3000 -e ORDERS=2000 -e VUS=24 verify/k6/load.js
//
// Env: BASE_URL (orders API), ITEMS (comma-separated item ids; default: the demo catalog),
// ORDERS, VUS, MAX_ATTEMPTS, MAX_LINES (default 4), CANCEL_EVERY (default 10; 0: no cancels),
// RUN_ID (key prefix; default: the start time).
import exec from "k6/execution";
import { baseUrl, cancelOrder, env, linesFor, placeOrder } from "./lib.js";

const BASE_URL = baseUrl("BASE_URL", "http://127.0.0.1:3000");
const ITEMS = env("ITEMS", "ps5,xbox-series-x,switch-2,steam-deck,dualsense,quest-3").split(",");
const MAX_ATTEMPTS = Number(env("MAX_ATTEMPTS", "8"));
const MAX_LINES = Number(env("MAX_LINES", "4"));
const CANCEL_EVERY = Number(env("CANCEL_EVERY", "10"));

export const options = {
  scenarios: {
    orders: {
      executor: "shared-iterations",
      vus: Number(env("VUS", "24")),
      iterations: Number(env("ORDERS", "2000")),
      maxDuration: "15m",
    },
  },
  thresholds: {
    // Every logical order gets a definitive answer; nothing outside the API contract.
    order_answered: ["rate>0.999"],
    order_unexpected_answers: ["count<1"],
    cancel_unexpected_answers: ["count<1"],
    "http_req_duration{name:POST /api/orders}": ["p(95)<1000"],
  },
};

export function setup() {
  return { runId: env("RUN_ID", String(Date.now())) };
}

export default function (data) {
  const n = exec.scenario.iterationInTest;
  const key = "k6-" + data.runId + "-" + n;
  // Every fifth order goes in the seed's one-item body when it has one line.
  const a = placeOrder(BASE_URL, key, linesFor(ITEMS, n, MAX_LINES), MAX_ATTEMPTS, true, n % 5 === 0);
  if (CANCEL_EVERY > 0 && n % CANCEL_EVERY === 3 && a.order_id) cancelOrder(BASE_URL, a.order_id, key + "-cancel", MAX_ATTEMPTS);
}
