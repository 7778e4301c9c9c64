import { html, type Html } from "../html.ts";
import { countdown, utc } from "./format.ts";

/**
 * A hold's deadline as the pages show it: the time left, rendered here, and the absolute
 * deadline. With JavaScript, countdown.js ticks the first down between refreshes; it counts from
 * `data-server-now` (this server's clock), so a browser with a wrong clock still agrees.
 */
export function holdDeadline(deadlineIso: string, now: number): Html {
  const left = Date.parse(deadlineIso) - now;
  if (!(left > 0)) {
    return html`<span class="hold hold--due" data-hold-left="0"><strong>deadline passed</strong> at <time datetime="${deadlineIso}">${utc(deadlineIso)}</time>; the stock is going back</span>`;
  }
  return html`<span class="hold" data-hold-left="${Math.ceil(left / 1000)}"><time class="hold__left" data-countdown datetime="${deadlineIso}" data-server-now="${now}">${countdown(left / 1000)}</time> left, until <time class="hold__at" datetime="${deadlineIso}">${utc(deadlineIso)}</time></span>`;
}
