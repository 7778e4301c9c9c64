import { html, type Html } from "../html.ts";
import type { BreakerState } from "../view-deps.ts";

export interface SparklineOptions {
  /** Accessible name: what the line shows and its latest value. */
  label: string;
  width?: number;
  height?: number;
  /** The scale's top is at least this, so a quiet line does not fill the box. */
  floor?: number;
  /** Horizontal reference lines (e.g. latency thresholds), drawn when inside the scale. */
  thresholds?: Array<{ value: number; className: string }>;
  className?: string;
}

const r1 = (n: number) => Math.round(n * 10) / 10;

/**
 * A line chart as inline SVG, drawn on the server: no script, no external file, and styled from
 * the stylesheet through classes (the CSP forbids style attributes). Gaps (null) break the line.
 */
export function sparkline(values: Array<number | null>, opts: SparklineOptions): Html {
  const width = opts.width ?? 240;
  const height = opts.height ?? 48;
  const pad = 3;
  const top = Math.max(opts.floor ?? 1, ...values.map((v) => v ?? 0)) * 1.08;
  const step = values.length > 1 ? (width - 2 * pad) / (values.length - 1) : 0;
  const x = (i: number) => r1(pad + i * step);
  const y = (v: number) => r1(height - pad - (v / top) * (height - 2 * pad));

  let line = "";
  let area = "";
  let run: Array<[number, number]> = [];
  const flush = () => {
    if (run.length === 0) return;
    line += run.map(([px, py], i) => `${i ? "L" : "M"}${px} ${py}`).join("");
    if (run.length > 1) area += `M${run[0]![0]} ${height - pad}` + run.map(([px, py]) => `L${px} ${py}`).join("") + `L${run[run.length - 1]![0]} ${height - pad}Z`;
    run = [];
  };
  values.forEach((v, i) => {
    if (v === null) flush();
    else run.push([x(i), y(v)]);
  });
  flush();

  let lastIndex = -1;
  for (let i = values.length - 1; i >= 0; i--) {
    if (values[i] !== null) {
      lastIndex = i;
      break;
    }
  }
  const guides = (opts.thresholds ?? [])
    .filter((t) => t.value < top)
    .map((t) => html`<line class="${t.className}" x1="${pad}" x2="${width - pad}" y1="${y(t.value)}" y2="${y(t.value)}"></line>`);

  return html`<svg class="sparkline ${opts.className ?? ""}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${opts.label}" focusable="false">
  <line class="sparkline__base" x1="${pad}" x2="${width - pad}" y1="${height - pad}" y2="${height - pad}"></line>
  ${guides}
  ${area ? html`<path class="sparkline__area" d="${area}"></path>` : ""}
  ${line ? html`<path class="sparkline__line" d="${line}"></path>` : ""}
  ${lastIndex >= 0 ? html`<circle class="sparkline__dot" cx="${x(lastIndex)}" cy="${y(values[lastIndex]!)}" r="2.5"></circle>` : ""}
</svg>`;
}

/** The breaker's state per slot as a strip of coloured cells: closed, half-open, open, unknown. */
export function stateStrip(states: Array<BreakerState | null>, opts: { label: string; width?: number; height?: number }): Html {
  const width = opts.width ?? 240;
  const height = opts.height ?? 16;
  const cell = states.length ? width / states.length : width;
  const cells = states.map(
    (s, i) =>
      html`<rect class="strip__cell strip__cell--${s ?? "unknown"}" x="${r1(i * cell)}" y="0" width="${r1(Math.max(cell - 1, 1))}" height="${height}"></rect>`,
  );
  return html`<svg class="strip" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${opts.label}" focusable="false">${cells}</svg>`;
}
