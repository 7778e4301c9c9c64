import { describe, expect, test } from "bun:test";
import { sparkline, stateStrip } from "./sparkline.ts";

describe("sparkline", () => {
  test("draws one path through the points, scaled into the box, with a dot on the latest value", () => {
    const svg = sparkline([0, 5, 10], { label: "rate", width: 100, height: 40, floor: 1 }).toString();
    const d = /class="sparkline__line" d="([^"]+)"/.exec(svg)![1]!;
    const points = [...d.matchAll(/[ML]([\d.]+) ([\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(points).toHaveLength(3);
    // x spreads evenly across the padded width; y grows upwards, the maximum below the top edge.
    expect(points.map((p) => p[0])).toEqual([3, 50, 97]);
    expect(points[0]![1]).toBe(37);
    expect(points[2]![1]).toBeGreaterThan(3);
    expect(points[2]![1]).toBeLessThan(points[1]![1]!);
    expect(svg).toContain('<circle class="sparkline__dot" cx="97"');
    expect(svg).toContain('role="img" aria-label="rate"');
  });

  test("gaps break the line into separate runs", () => {
    const svg = sparkline([1, 2, null, 3, 4], { label: "x" }).toString();
    const d = /class="sparkline__line" d="([^"]+)"/.exec(svg)![1]!;
    expect(d.match(/M/g)).toHaveLength(2);
  });

  test("no data draws the baseline only", () => {
    const svg = sparkline([null, null], { label: "x" }).toString();
    expect(svg).not.toContain("sparkline__line");
    expect(svg).not.toContain("<circle");
  });

  test("thresholds inside the scale are drawn; those above it are not", () => {
    const svg = sparkline([600, 700], {
      label: "x",
      thresholds: [
        { value: 500, className: "warn" },
        { value: 1000, className: "crit" },
      ],
    }).toString();
    expect(svg).toContain('class="warn"');
    expect(svg).not.toContain('class="crit"');
  });

  test("the label is escaped like any other interpolation, and no style attribute is emitted", () => {
    const svg = sparkline([1], { label: '"><script>x</script>' }).toString() + stateStrip(["open", null], { label: "<b>" }).toString();
    expect(svg).not.toContain("<script>");
    expect(svg).not.toContain("<b>");
    expect(svg).not.toContain("style=");
  });
});

describe("stateStrip", () => {
  test("one cell per slot, classed by state", () => {
    const svg = stateStrip(["closed", "half-open", "open", null], { label: "b", width: 40 }).toString();
    expect([...svg.matchAll(/strip__cell--([a-z-]+)/g)].map((m) => m[1])).toEqual(["closed", "half-open", "open", "unknown"]);
  });
});
