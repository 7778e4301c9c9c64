import { describe, expect, test } from "bun:test";
import { checkExpression, metricsRead, type Catalog } from "./catalog.ts";
import { legendLabels, promqlRefs, withoutGrafanaVariables } from "./promql.ts";

// The reader behind the dashboard and alert checks: it must find every metric name and label,
// and take no function, keyword, label or duration for one.
describe("promqlRefs", () => {
  test("finds metrics behind functions, aggregations, ranges and binary operators", () => {
    const refs = promqlRefs(
      'histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket{role=~"orders|all", route!="/metrics"}[$__rate_interval]))) / ignoring(route) group_left max(up{job="valerix"} offset 5m)',
    );
    expect(refs.selectors.map((s) => s.metric)).toEqual(["http_request_duration_seconds_bucket", "up"]);
    expect(refs.selectors[0]!.matchers).toEqual([
      { label: "role", op: "=~", value: "orders|all" },
      { label: "route", op: "!=", value: "/metrics" },
    ]);
    expect(refs.groupingLabels).toEqual(["le", "route", "route"]);
  });

  test("ignores strings, numbers, durations, subqueries and keywords", () => {
    const refs = promqlRefs(
      'label_replace(max_over_time(orders_pending[10m:1m]), "dst", "$1", "src", "(.*)") > bool 1e3 and on() vector(1) unless sum(rate(a_total[1h30m])) without (status) * 2',
    );
    expect(refs.selectors.map((s) => s.metric)).toEqual(["orders_pending", "a_total"]);
    expect(refs.groupingLabels).toEqual(["status"]);
  });

  test("aggregations written with the clause after the argument, and escaped quotes in values", () => {
    const refs = promqlRefs('count(x{a="q\\"uote"}) by (a) + topk(3, y)');
    expect(refs.selectors).toEqual([
      { metric: "x", matchers: [{ label: "a", op: "=", value: 'q"uote' }] },
      { metric: "y", matchers: [] },
    ]);
    expect(refs.groupingLabels).toEqual(["a"]);
  });

  test("reports a selector without a metric name, and rejects text that is not PromQL", () => {
    expect(promqlRefs('{__name__=~"orders.*"}').selectors[0]!.metric).toBeNull();
    expect(() => promqlRefs('rate(x{a="b}[5m])')).toThrow();
    expect(() => promqlRefs("x ; y")).toThrow();
  });

  test("Grafana legends and interval variables", () => {
    expect(legendLabels("{{method}} {{ route }} {{status}}")).toEqual(["method", "route", "status"]);
    expect(withoutGrafanaVariables("rate(x[$__rate_interval]) + increase(y[$__range]) + z[${__interval}]")).toBe(
      "rate(x[1m]) + increase(y[1h]) + z[1m]",
    );
  });
});

describe("checkExpression", () => {
  const catalog: Catalog = {
    targetLabels: ["job", "instance", "role"],
    targetLabelValues: { role: ["orders", "inventory"] },
    metrics: [
      { name: "req_seconds", type: "histogram", labels: ["route"], help: "" },
      { name: "queue_depth", type: "gauge", labels: ["state"], labelValues: { state: ["ready", "dead"] }, help: "" },
    ],
    external: [{ name: "up", type: "gauge", labels: [], help: "" }],
  };

  test("accepts catalogued metrics, histogram series, target labels and le on buckets", () => {
    expect(checkExpression(catalog, 'histogram_quantile(0.9, sum by (le, role) (rate(req_seconds_bucket{route="/a"}[1m])))')).toEqual([]);
    expect(checkExpression(catalog, 'sum(rate(req_seconds_count[1m])) / sum(rate(req_seconds_sum[1m]))')).toEqual([]);
    expect(checkExpression(catalog, 'max by (state) (queue_depth{state=~"ready|dead", role="orders"}) and up == 1')).toEqual([]);
    expect(metricsRead(catalog, "rate(req_seconds_bucket[1m]) + queue_depth")).toEqual(["req_seconds", "queue_depth"]);
  });

  test("flags unknown metrics, labels, label values and grouping labels", () => {
    expect(checkExpression(catalog, "rate(requests_total[1m])")).toEqual(["unknown metric requests_total"]);
    expect(checkExpression(catalog, "queue_depth_bucket")).toEqual(["unknown metric queue_depth_bucket"]);
    expect(checkExpression(catalog, 'queue_depth{status="ready"}')).toEqual(["queue_depth has no label status"]);
    expect(checkExpression(catalog, 'queue_depth{state=~"ready|inflight"}')).toEqual(['queue_depth{state} never takes the value "inflight"']);
    expect(checkExpression(catalog, 'up{role="all"}')).toEqual(['up{role} never takes the value "all"']);
    expect(checkExpression(catalog, "sum by (le) (queue_depth)")).toEqual(["groups by le, a label none of its metrics has"]);
    expect(checkExpression(catalog, "vector(1)")).toEqual(["reads no metric"]);
  });
});
