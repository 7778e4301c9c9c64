import { Elysia } from "elysia";
import type { CheckResult, HealthCheck } from "../src/http/health.ts";
import { html, type Html } from "./html.ts";
import { sparkline, stateStrip } from "./components/sparkline.ts";
import { count, duration, ms } from "./components/format.ts";
import { htmlResponse, type ViewContext } from "./view-context.ts";

const CHECK_TIMEOUT_MS = 2_000;

/** The same checks `/health/deep` runs, each bounded, none allowed to throw. */
async function runChecks(checks: Record<string, HealthCheck>): Promise<Array<[string, CheckResult]>> {
  return Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, CheckResult]> => {
      const started = performance.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const r = await Promise.race([
          check(),
          new Promise<CheckResult>((resolve) => {
            timer = setTimeout(() => resolve({ ok: false, detail: `no answer within ${CHECK_TIMEOUT_MS} ms` }), CHECK_TIMEOUT_MS);
          }),
        ]);
        return [name, { ...r, duration_ms: Math.round(performance.now() - started) }];
      } catch (err) {
        return [name, { ok: false, detail: (err as Error).message, duration_ms: Math.round(performance.now() - started) }];
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}

const TITLES: Record<string, string> = {
  database: "Database",
  redis: "Redis",
  inventory: "Inventory service",
  inventory_schema: "Inventory schema",
  orders_schema: "Orders schema",
  breaker: "Circuit breaker",
};

const title = (name: string) => TITLES[name] ?? name.replaceAll("_", " ").replace(/^./, (c) => c.toUpperCase());

function checkCard(name: string, r: CheckResult): Html {
  const extras = Object.entries(r).filter(([k, v]) => !["ok", "detail", "duration_ms"].includes(k) && (typeof v === "string" || typeof v === "number" || typeof v === "boolean"));
  return html`<li class="card check check--${r.ok ? "ok" : "failing"}" data-check="${name}" data-ok="${r.ok}">
  <div class="check__head">
    <h3 class="check__name">${title(name)}</h3>
    <span class="pill pill--${r.ok ? "ok" : "failing"}">${r.ok ? "OK" : "Failing"}</span>
  </div>
  ${r.detail ? html`<p class="check__detail">${r.detail}</p>` : ""}
  <dl class="check__facts">
    ${extras.map(([k, v]) => html`<div><dt>${k.replaceAll("_", " ")}</dt><dd>${String(v)}</dd></div>`)}
    ${typeof r.duration_ms === "number" ? html`<div><dt>answered in</dt><dd>${ms(r.duration_ms)}</dd></div>` : ""}
  </dl>
</li>`;
}

export function statusRoutes(ctx: ViewContext) {
  const { deps, security, history } = ctx;

  const trends = (): Html => {
    if (deps.breaker) history.observeBreaker(deps.breaker.state);
    const samples = history.samples();
    const perMinute = 60_000 / history.slotMs;
    const rates = samples.map((s) => s.orders * perMinute);
    const latencies = samples.map((s) => s.avgMs);
    const minutes = Math.round((history.slotMs * history.slotCount) / 60_000);
    // "Now" is the last minute, not the last slot: a slot still filling would read as a dip.
    const perMinuteSlots = Math.max(1, Math.round(60_000 / history.slotMs));
    const latestRate = samples.slice(-perMinuteSlots).reduce((n, s) => n + s.orders, 0) * (60_000 / (perMinuteSlots * history.slotMs));
    const peakRate = Math.max(0, ...rates);
    const lastLatency = [...latencies].reverse().find((v) => v !== null) ?? null;
    const peakLatency = Math.max(0, ...latencies.map((v) => v ?? 0));
    const breakerNow = deps.breaker?.state;
    const states = samples.map((s) => s.breaker);
    const openSlots = states.filter((s) => s === "open" || s === "half-open").length;
    return html`<section class="trends" aria-labelledby="trends-title">
  <h2 id="trends-title">Last ${minutes} minutes</h2>
  <ul class="trend-grid" role="list">
    <li class="card trend">
      <h3 class="trend__name">Order rate</h3>
      <p class="trend__value">${count(Math.round(latestRate))} <span class="trend__unit">in the last minute</span></p>
      ${sparkline(rates, { label: `Order rate per minute over the last ${minutes} minutes: ${Math.round(latestRate)} in the last minute, peak ${Math.round(peakRate)} a minute`, floor: 10, className: "sparkline--rate" })}
      <p class="trend__note">peak ${count(Math.round(peakRate))} a minute, in ${history.slotMs / 1000} s steps</p>
    </li>
    <li class="card trend">
      <h3 class="trend__name">Order latency</h3>
      <p class="trend__value">${ms(lastLatency)}</p>
      ${sparkline(latencies, {
        label: `Mean order latency over the last ${minutes} minutes: latest ${ms(lastLatency)}, peak ${ms(peakLatency || null)}`,
        floor: 100,
        thresholds: [
          { value: 500, className: "sparkline__guide sparkline__guide--warning" },
          { value: 1000, className: "sparkline__guide sparkline__guide--critical" },
        ],
        className: "sparkline--latency",
      })}
      <p class="trend__note">peak ${ms(peakLatency || null)}; lines at 500 ms and 1 s</p>
    </li>
    <li class="card trend">
      <h3 class="trend__name">Circuit breaker</h3>
      <p class="trend__value"><span class="pill pill--breaker-${breakerNow ?? "none"}">${breakerNow ?? "not in use"}</span></p>
      ${stateStrip(states, { label: `Breaker state over the last ${minutes} minutes: ${openSlots ? `open or probing in ${openSlots} of ${states.length} intervals` : "closed throughout"}` })}
      <p class="trend__note legend"><span class="key key--closed"></span>closed <span class="key key--half-open"></span>probing <span class="key key--open"></span>open</p>
    </li>
  </ul>
</section>`;
  };

  const checksSection = async (): Promise<Html> => {
    const results = await runChecks({ ...deps.health.ready, ...deps.health.deep });
    const failing = results.filter(([, r]) => !r.ok).length;
    let chaos: Html = html``;
    if (deps.chaos) {
      try {
        const active = await deps.chaos.current();
        chaos = html`<li class="card check check--${active ? "chaos" : "ok"}" data-check="chaos">
  <div class="check__head"><h3 class="check__name">Chaos</h3><span class="pill pill--${active ? "chaos" : "ok"}">${active ? "Active" : "Off"}</span></div>
  <p class="check__detail">${active ? html`<strong>${active.label}</strong> faults for another ${duration(active.secondsLeft)}.` : "No faults injected."}</p>
  <p class="check__detail"><a href="/chaos">Chaos controls</a></p>
</li>`;
      } catch (err) {
        chaos = checkCard("chaos", { ok: false, detail: ctx.describe(err, "status page: chaos").message });
      }
    }
    return html`<section aria-labelledby="checks-title">
  <h2 id="checks-title">Modules and dependencies <span class="muted">(${failing ? `${failing} failing` : "all answering"}, role ${deps.health.role})</span></h2>
  <ul class="check-grid" role="list">
    ${results.map(([name, r]) => checkCard(name, r))}
    ${deps.breaker ? checkCard("breaker", { ok: deps.breaker.state === "closed", detail: `The breaker in front of inventory is ${deps.breaker.state}.`, state: deps.breaker.state }) : ""}
    ${chaos}
  </ul>
</section>`;
  };

  const live = async () => html`${trends()}${await checksSection()}`;

  return new Elysia({ name: "views-status", detail: { hide: true } })
    .get("/status", async ({ request }) => {
      const session = security.session(request);
      const body = html`<div class="page-head">
  <h1>Status</h1>
  <p class="lede">Every module and dependency this instance checks, as <a href="/health/deep"><code>/health/deep</code></a> reports them, and the order traffic of the last few minutes. Refreshed every five seconds.</p>
</div>
<div id="status-live" hx-get="/ui/fragments/status" hx-trigger="every 5s" hx-swap="innerMorph">
${await live()}
</div>`;
      return htmlResponse(ctx.page("status", "Status", body), { session });
    })
    .get("/ui/fragments/status", async () => htmlResponse(await live()))
    .get("/ui/fragments/banner", () => htmlResponse(ctx.banner()));
}
