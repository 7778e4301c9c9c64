import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { checkExpression, loadCatalog } from "./catalog.ts";
import { ruleQueries } from "./queries.ts";
import { OPS, readYaml, run, tool } from "./support.ts";

const promtool = tool("promtool", "PROMTOOL");
const DIR = join(OPS, "prometheus");
type Rule = { alert?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> };

describe.skipIf(promtool.skip)("promtool", () => {
  test("the scrape configuration is valid and loads the rule file", async () => {
    const r = await run([promtool.need(), "check", "config", "prometheus.yml"], { cwd: DIR });
    expect(r.stderr + r.stdout).toContain("SUCCESS");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("alerts.yml");
  });

  test("the alert rules parse", async () => {
    const r = await run([promtool.need(), "check", "rules", "alerts.yml"], { cwd: DIR });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  test("the alert unit tests pass (alerts.test.yml)", async () => {
    const r = await run([promtool.need(), "test", "rules", "alerts.test.yml"], { cwd: DIR });
    expect({ code: r.code, out: r.stdout + r.stderr }).toEqual({ code: 0, out: expect.stringContaining("SUCCESS") });
  });

  test("promtool fails a broken rule, so the checks above can fail", async () => {
    const bad = join(await Bun.$`mktemp -d`.text().then((s) => s.trim()), "bad.yml");
    await Bun.write(bad, "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(up[5m]\n");
    const r = await run([promtool.need(), "check", "rules", bad]);
    expect(r.code).not.toBe(0);
  });
});

describe("alert rules", () => {
  test("read only catalogued metrics, labels and label values", async () => {
    const catalog = await loadCatalog();
    const problems = (await ruleQueries()).flatMap((q) => checkExpression(catalog, q.expr).map((p) => `${q.source}: ${p}`));
    expect(problems).toEqual([]);
  });

  test("cover what the issue asks for: breaker open, queue growing, p95 over 1 s for 30 s, readiness failing", async () => {
    const { groups } = await readYaml<{ groups: { rules: Rule[] }[] }>(join(DIR, "alerts.yml"));
    const rules = new Map(groups.flatMap((g) => g.rules).map((r) => [r.alert!, r]));
    expect(rules.get("ValerixCircuitBreakerOpen")!.expr).toContain("circuit_breaker_state");
    expect(rules.get("ValerixRetryQueueGrowing")!.expr).toContain("deriv(retry_queue_depth");
    const p95 = rules.get("ValerixHighLatencyP95")!;
    expect(p95.expr).toMatch(/histogram_quantile\(0\.95,/);
    expect(p95.expr).toMatch(/\)\s*>\s*1\s*$/);
    expect(p95.for).toBe("30s");
    expect(rules.get("ValerixNotReady")!.expr).toContain("readiness_status == 0");
  });

  test("every alert has a severity, a summary and a description, and is explained in ops/README.md", async () => {
    const { groups } = await readYaml<{ groups: { rules: Rule[] }[] }>(join(DIR, "alerts.yml"));
    const readme = await Bun.file(join(OPS, "README.md")).text();
    const alerts = groups.flatMap((g) => g.rules).filter((r) => r.alert);
    expect(alerts.length).toBeGreaterThanOrEqual(4);
    for (const r of alerts) {
      expect({ alert: r.alert, severity: r.labels?.severity }).toEqual({ alert: r.alert, severity: expect.stringMatching(/^(critical|warning|info)$/) });
      expect(r.annotations?.summary).toBeTruthy();
      expect(r.annotations?.description).toBeTruthy();
      expect(readme).toContain(`| ${r.alert} (${r.labels!.severity})`);
    }
  });

  test("the unit tests feed series the app really emits: catalogued names, labels and values; route labels as the app writes them", async () => {
    const catalog = await loadCatalog();
    const tests = await readYaml<{ tests: { input_series: { series: string }[] }[] }>(join(DIR, "alerts.test.yml"));
    const series = tests.tests.flatMap((t) => t.input_series.map((s) => s.series));
    expect(series.length).toBeGreaterThan(0);
    expect(series.flatMap((s) => checkExpression(catalog, s).map((p) => `${s}: ${p}`))).toEqual([]);
    // The app labels a route without a trailing slash (src/http/app.ts, routeLabel): "/api/orders".
    const routes = series.flatMap((s) => [...s.matchAll(/\broute="([^"]*)"/g)].map((m) => m[1]!));
    expect(routes.length).toBeGreaterThan(0);
    expect(routes.filter((r) => r.length > 1 && r.endsWith("/"))).toEqual([]);
  });

  test("every alert has a unit test in alerts.test.yml", async () => {
    const { groups } = await readYaml<{ groups: { rules: Rule[] }[] }>(join(DIR, "alerts.yml"));
    const tests = await readYaml<{ tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] }>(join(DIR, "alerts.test.yml"));
    const fired = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    const quiet = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length === 0).map((a) => a.alertname)));
    for (const r of groups.flatMap((g) => g.rules)) {
      expect({ alert: r.alert, fires: fired.has(r.alert!), staysQuiet: quiet.has(r.alert!) }).toEqual({ alert: r.alert, fires: true, staysQuiet: true });
    }
  });

  test("the compose scrape targets are the compose services, with the role labels the alerts use", async () => {
    const config = await readYaml<any>(join(DIR, "prometheus.yml"));
    const compose = await readYaml<any>(join(OPS, "compose.yaml"));
    const job = config.scrape_configs.find((j: any) => j.job_name === "valerix");
    expect(job.metrics_path).toBe("/metrics");
    const targets = job.static_configs.map((s: any) => ({ target: s.targets[0], role: s.labels.role }));
    expect(targets.map((t: any) => t.role).sort()).toEqual(["inventory", "orders"]);
    for (const t of targets) {
      const [host, port] = t.target.split(":");
      const service = compose.services[host];
      expect(service.environment.VALERIX_ROLE).toBe(t.role);
      expect(service.environment.PORT).toBe(port);
    }
  });
});
