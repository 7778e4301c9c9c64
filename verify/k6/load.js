// k6 load scenario for Valerix: careful clients placing orders against a running deployment, no
// chaos. For the verdict on the data (stock, ledger, lost orders) use `npm run chaos`, or chaos.js.
//
//   k6 run -e BASE_URL=http://127.0.0.1:3000 -e ORDERS=2000 -e VUS=24 verify/k6/load.js
//
// Env: BASE_URL (orders API), ITEMS (comma-separated item ids; default: the demo catalog),
// ORDERS, VUS, MAX_ATTEMPTS, RUN_ID (key prefix; default: the start time).
import exec from "k6/execution";
import { baseUrl, env, placeOrder } from "./lib.js";

const BASE_URL = baseUrl("BASE_URL", "http://127.0.0.1:3000");
const ITEMS = env("ITEMS", "ps5,xbox-series-x,switch-2,steam-deck,dualsense,quest-3").split(",");
const MAX_ATTEMPTS = Number(env("MAX_ATTEMPTS", "8"));

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
    "http_req_duration{name:POST /api/orders}": ["p(95)<1000"],
  },
};

export function setup() {
  return { runId: env("RUN_ID", String(Date.now())) };
}

export default function (data) {
  const n = exec.scenario.iterationInTest;
  placeOrder(BASE_URL, "k6-" + data.runId + "-" + n, ITEMS[n % ITEMS.length], 1 + (n % 3), MAX_ATTEMPTS);
}
