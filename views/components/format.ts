import { html, type Html } from "../html.ts";

/** `ms(734.21)` → "734 ms"; `ms(1234)` → "1.23 s". */
export function ms(value: number | null): string {
  if (value === null) return "–";
  if (value < 1000) return `${Math.round(value)} ms`;
  return `${(value / 1000).toFixed(2)} s`;
}

/** `count(12345)` → "12,345": one locale for every reader, so tests and screenshots agree. */
export function count(n: number): string {
  return n.toLocaleString("en-US");
}

/** An order state as a coloured badge; the word is always there, so colour is never the only cue. */
export function stateBadge(status: string): Html {
  return html`<span class="badge badge--${status}">${status}</span>`;
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}

/** `ago(now - 5000, now)` → "5 s ago". Rendered on the server, refreshed by the page's polling. */
export function ago(iso: string | number, now: number): string {
  const t = typeof iso === "number" ? iso : Date.parse(iso);
  if (!Number.isFinite(t)) return String(iso);
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toISOString().slice(0, 10);
}

/** A timestamp readers can hover for the exact value. */
export function time(iso: string, now: number): Html {
  return html`<time datetime="${iso}" title="${iso}">${ago(iso, now)}</time>`;
}

/** `duration(287)` → "4 min 47 s". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
}

/** `countdown(3723)` → "1 h 2 min 3 s"; `countdown(7)` → "7 s". Rounds up: one second left is never "0 s". */
export function countdown(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return [h ? `${h} h` : "", h || m ? `${m} min` : "", `${s % 60} s`].filter(Boolean).join(" ");
}

/** `utc("2026-12-02T16:05:00.000Z")` → "2026-12-02 16:05:00 UTC": one zone for every reader. */
export function utc(iso: string): string {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") : iso;
}
