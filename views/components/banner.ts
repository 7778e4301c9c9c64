import { html, type Html } from "../html.ts";
import type { HealthStatus } from "../../platform/response-window.ts";
import { count, ms } from "./format.ts";

const WORDS: Record<HealthStatus, string> = { optimal: "Optimal", warning: "Warning", critical: "Critical" };

/**
 * The order service's health banner, on every page. It polls its own fragment and is swapped by
 * morphing, so the element (and a running pulse animation) stays in place while its state changes.
 * Only the state word is a live region: a screen reader hears "Critical", not every new average.
 */
export function healthBanner(snapshot: { averageMs: number | null; count: number; status: HealthStatus }, windowSeconds: number): Html {
  const { status, averageMs } = snapshot;
  const detail =
    averageMs === null
      ? html`no order requests in the last ${windowSeconds} s`
      : html`average order response time <strong class="banner__value">${ms(averageMs)}</strong> over the last ${windowSeconds} s (${count(snapshot.count)} ${snapshot.count === 1 ? "request" : "requests"})`;
  return html`<section id="health-banner" class="banner banner--${status}" data-health-status="${status}" aria-label="Order service health"
  hx-get="/ui/fragments/banner" hx-trigger="every 2s" hx-swap="outerMorph">
  <div class="banner__inner">
    <span class="banner__dot" aria-hidden="true"></span>
    <span class="banner__state" aria-live="polite">${WORDS[status]}</span>
    <span class="banner__detail">${detail}</span>
    <span class="banner__legend">under 500 ms optimal · 500–1000 ms warning · over 1000 ms critical</span>
  </div>
</section>`;
}
