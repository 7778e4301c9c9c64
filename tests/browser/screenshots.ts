/**
 * Makes the README's screenshots in docs/screenshots/ (not part of the test run):
 *
 *   bun tests/browser/screenshots.ts
 *
 * It starts the real `all` role with its pages and chaos injector, plays back three minutes of traffic (calm,
 * then latency, then crashes that open the breaker, then heavy latency) and photographs the
 * products page (an order of three lines just placed), the status page with the banner critical, and the chaos page.
 *
 * The playback moves the pages' clock one 5 s sparkline slot per step, so three minutes of
 * history take about a minute; the orders themselves are real and really slow.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { systemClock, type Clock } from "../../platform/clock.ts";
import { launchBrowser } from "./chromium.ts";
import { FAST_BACKEND, startUiSystem, type UiSystem } from "./support.ts";

const OUT = join(import.meta.dir, "..", "..", "docs", "screenshots");
const SLOT_MS = 5_000;
const SLOTS = 36;
const PLAYBACK_GUESS_MS = 30_000;

let virtual: number | null = null;
let shift = 0;
const clock: Clock = { now: () => virtual ?? Date.now() + shift, sleep: systemClock.sleep };

let n = 0;
/** Through the JSON API, like any client: these requests are what the banner's window measures. */
const order = (sys: UiSystem, item: string, quantity = 1) =>
  fetch(`${sys.url}/api/orders`, {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": `shot-${n++}` },
    body: JSON.stringify({ item_id: item, quantity }),
  }).then((r) => r.arrayBuffer());
const items = ["ps5", "xbox-series-x", "switch-2", "steam-deck", "dualsense", "quest-3"];
const some = (sys: UiSystem, count: number) => Promise.all(Array.from({ length: count }, (_, i) => order(sys, items[(n + i) % items.length]!)));

async function playback(sys: UiSystem) {
  const start = Date.now() + PLAYBACK_GUESS_MS - (SLOTS - 1) * SLOT_MS;
  const calm = [2, 3, 2, 4, 3, 5, 3, 4, 6, 4, 5, 3];
  for (let i = 0; i < SLOTS; i++) {
    virtual = start + i * SLOT_MS + SLOT_MS / 2;
    if (i < 12) await some(sys, calm[i]!);
    else if (i === 12) {
      await sys.chaos.control.configure({ preset: "mild" });
      await some(sys, 4);
    } else if (i < 18) await some(sys, 3 + (i % 3));
    else if (i === 18) {
      await sys.chaos.control.configure({ preset: "moderate" });
      await some(sys, 4);
    } else if (i < 24) await some(sys, 4 + (i % 2));
    else if (i === 24) {
      await sys.chaos.control.configure({ experiment: { crash: { probability: 0.9, mode: "503" }, pattern: { kind: "random", seed: 7 }, durationS: 600 } });
      await some(sys, 6);
    } else if (i < 30) await some(sys, 5);
    else if (i === 30) {
      // Let the breaker's cool-down pass so the first slow call is its probe, and it closes again.
      await sys.chaos.control.configure({ preset: "extreme" });
      await Bun.sleep(1_700);
      await order(sys, "ps5");
      await some(sys, 2);
    } else await some(sys, 3);
  }
  shift = virtual! - Date.now();
  virtual = null;
}

async function shoot(page: Page, name: string, fullPage: boolean) {
  await page.screenshot({ path: join(OUT, name), fullPage });
  console.log(`wrote docs/screenshots/${name}`);
}

mkdirSync(OUT, { recursive: true });
const sys = await startUiSystem({ backend: FAST_BACKEND, clock, halfOpenAfterMs: 1_500 });
const browser = await launchBrowser();
try {
  const page = await browser.context.newPage();
  // 1. The catalog, calm, with an order of three lines just placed.
  await some(sys, 3);
  await page.goto(sys.url + "/");
  await page.fill("#qty-ps5", "2");
  await page.fill("#qty-dualsense", "2");
  await page.fill("#qty-quest-3", "1");
  await page.click("#order-form button[type=submit]");
  await page.waitForSelector("#order-result .result");
  await page.mouse.move(0, 700);
  await page.waitForTimeout(2_500);
  await shoot(page, "products.png", false);

  // 2. Three minutes of trouble, then a window full of slow orders: the banner goes red.
  await playback(sys);
  const until = Date.now() + 32_000;
  while (Date.now() < until) await some(sys, 3);
  await page.goto(sys.url + "/status");
  await page.waitForSelector('#health-banner[data-health-status="critical"]');
  await shoot(page, "status-critical.png", true);

  // 3. The chaos page with the extreme preset running and its recent faults.
  await page.goto(sys.url + "/chaos");
  await page.waitForSelector('#chaos-live [data-chaos-label="extreme"]');
  await shoot(page, "chaos.png", true);
} finally {
  await browser.close();
  await sys.stop();
}
