import type { AffectedFlag, AffectedOrder, ChaosReport } from "./report.ts";
import type { LatencySummary } from "./stats.ts";
import { renderInfraFaults } from "./infra/report.ts";

/** The report a person reads first: Markdown tables over the JSON report's numbers. */

const pctOf = (x: unknown) => `${Math.round(Number(x ?? 0) * 1000) / 10} %`;
const fmtCounts = (o: Record<string, number>, unit = "") => Object.entries(o).map(([k, v]) => `${k}${unit}: ${v}`).join(", ") || "none";

const cell = (v: unknown) => (v === null || v === undefined ? "–" : String(v).replaceAll("|", "\\|"));

/**
 * A Markdown table. `align` has one letter per column, `l` or `r`; by default the first column is
 * left-aligned and the rest (numbers) right-aligned.
 */
const table = (head: string[], rows: unknown[][], align?: string) => {
  const a = (i: number) => (align ? align[i] ?? "l" : i === 0 ? "l" : "r");
  return [
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => (a(i) === "r" ? "---:" : "---")).join("|")}|`,
    ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`),
  ].join("\n");
};

function describeChaos(active: Record<string, unknown> | null): string {
  if (!active) return "none (baseline run)";
  const c = active as Record<string, number | string | null>;
  const pct = (x: unknown) => `${Math.round(Number(x) * 1000) / 10} %`;
  const parts: string[] = [];
  if (Number(c.latency_rate) > 0) parts.push(`latency ${pct(c.latency_rate)} of calls, ${c.latency_min_ms}–${c.latency_max_ms} ms`);
  if (Number(c.crash_rate) > 0) parts.push(`crash ${pct(c.crash_rate)} (${c.crash_mode})`);
  if (Number(c.partial_failure_rate) > 0) parts.push(`commit-then-lose-answer ${pct(c.partial_failure_rate)}`);
  if (Number(c.hang_rate) > 0) parts.push(`hang ${pct(c.hang_rate)}`);
  const head = `${c.preset ? `preset \`${c.preset}\`` : "custom"}, pattern ${c.pattern}${c.pattern === "every_nth" ? ` n=${c.n}` : ""}, seed ${c.seed}, routes ${c.routes}`;
  return `${head}: ${parts.join("; ")}`;
}

/** The webhook section of a `--webhooks` run: the receiver, the relay kills, the drain. */
export function renderWebhooks(r: Pick<ChaosReport, "webhooks">): string[] {
  const w = r.webhooks;
  if (!w) return [];
  const s = (ms: number | null | undefined) => (ms === null || ms === undefined ? "–" : `${Math.round(ms / 100) / 10} s`);
  const restarted = w.relay_kills.filter((k) => k.restarted_ms !== null);
  const pause = restarted.length ? restarted.reduce((a, k) => a + (k.restarted_ms! - k.killed_ms), 0) / restarted.length : null;
  const out: string[] = ["## Webhooks", ""];
  out.push(
    `A receiver in the runner (${w.receiver.url}) subscribed to every event, answering ${Math.round(w.receiver.fail_rate * 100)} % of attempts 503 at random (seeded), ` +
      `holding ${Math.round(w.receiver.slow_rate * 100)} % for ${w.receiver.slow_ms[0]}–${w.receiver.slow_ms[1]} ms, and down (connection refused) ${w.receiver_downtime.map((d) => `from ${s(d.from_ms)} to ${s(d.to_ms)}`).join(", ") || "never"} of the run. ` +
      `The relay ran only in two processes of its own (orders role, \`WEBHOOK_RELAY=true\`; the orders role behind the load had it off), killed with SIGKILL in turn during the load and restarted after a pause. ` +
      `Every signature was checked with \`standardwebhooks\` and with a plain HMAC of the runner's own.`,
  );
  out.push("");
  out.push(table(["figure", "value"], [
    ["order events listed (`GET /api/events`)", w.events_listed],
    ["events delivered (answered 2xx at least once)", w.events_delivered],
    ["attempts seen by the receiver", w.attempts],
    ["… answered 2xx (deliveries, duplicates included)", w.answered_2xx],
    ["… answered 503 (failures answered)", w.answered_5xx],
    ["… cut off without an answer (sender killed, receiver went down)", w.no_answer],
    ["… held 0.2–1.5 s (slow)", w.slow],
    ["signatures that did not verify", w.signatures_failed],
    ["most attempts for one event", w.max_attempts_per_event],
    ["most 2xx for one event (duplicate deliveries)", w.max_deliveries_per_event],
    ["events delivered more than once", w.events_delivered_more_than_once],
    ["relay kills (SIGKILL) during the load", `${w.relay_kills.length}${pause !== null ? `, restarted after ${s(pause)} on average` : ""} (${w.relay_starts} relay starts in all)`],
    ["receiver downtime", s(w.receiver_down_ms)],
    ["backlog at healing (changes made before it, not yet answered 2xx)", w.backlog_at_heal],
    ["time to drain after healing (the last of that backlog answered 2xx)", w.drain_ms === null ? "not all delivered" : s(w.drain_ms)],
    ["change to first 2xx, every event: p50 / p95 / max", w.delivery_lag_ms ? `${s(w.delivery_lag_ms.p50)} / ${s(w.delivery_lag_ms.p95)} / ${s(w.delivery_lag_ms.max)}` : "–"],
    ["final wait for an empty backlog, after the orders settled", w.final_wait_ms === null ? `not empty within ${s(w.drain_bound_ms)}${w.oldest_transaction ? `; the oldest transaction on the PostgreSQL server then: ${w.oldest_transaction}` : ""}` : s(w.final_wait_ms)],
    ["relay settings", Object.entries(w.relay_settings).map(([k, v]) => `\`${k}=${v.length > 40 ? `${v.slice(0, 37)}…` : v}\``).join(", ")],
  ], "lr"));
  out.push("");
  return out;
}

/** The Markdown summary. `maxAffectedRows` caps each kind of affected order (default 10); the JSON has them all. */
export function renderMarkdown(r: ChaosReport, opts: { maxAffectedRows?: number; jsonName?: string } = {}): string {
  const s = r.summary;
  const held = r.invariants.filter((v) => v.status === "pass").length;
  const failed = r.invariants.filter((v) => v.status === "fail").length;
  const skippedN = r.invariants.filter((v) => v.status === "skipped").length;
  const scenario = String(r.options.scenario);
  const out: string[] = [];
  out.push(`# Chaos run: ${scenario}, ${s.logical_orders} orders, seed ${r.options.seed} — ${r.verdict === "pass" ? "PASS" : "FAIL"}`);
  out.push("");
  out.push(
    `${s.logical_orders} logical orders in ${s.requests} requests, ${s.orders_per_second} orders/s during the load; ` +
      `${s.accepted} accepted (201/202), ${s.affected.total} affected by the chaos. ` +
      `After healing, ${s.settle.unfinished === 0 ? "every accepted order was final" : `${s.settle.unfinished} orders were still not final`} ` +
      `(bound ${Math.round(s.settle.bound_ms / 1000)} s). Invariants: ${held} hold, ${failed} broken${skippedN ? `, ${skippedN} skipped` : ""}.`,
  );
  out.push("");
  out.push(table(["setting", "value"], [
    ["started", r.started_at],
    ["duration", `${r.duration_s} s (load ${Math.round((r.phases_ms.load ?? 0) / 100) / 10} s, settle ${Math.round((r.phases_ms.settle ?? 0) / 100) / 10} s)`],
    ["system", r.environment.mode === "spawned" ? "split mode started by the runner: orders and inventory as separate processes" : `deployment at ${r.environment.urls.orders}`],
    ...(r.environment.topology ? [["deployment", r.environment.topology] as [string, string]] : []),
    ["database", r.environment.database],
    ["key-value store / retry queue", `${r.environment.key_value} / ${r.environment.retry_queue}`],
    ...(Object.keys(r.environment.settings ?? {}).length
      ? [["role settings", Object.entries(r.environment.settings!).map(([k, v]) => `\`${k}=${v}\``).join(", ")] as [string, string]]
      : []),
    ["clients", `${r.options.concurrency} concurrent careful clients${Number(r.options.rate) > 0 ? `, paced at ${r.options.rate} orders/s` : ""}, ${r.options.max_attempts} requests per order at most, ${Math.round(Number(r.options.duplicate_rate) * 100)} % sent twice at once`],
    ["orders", `1–${r.options.max_lines ?? 1} lines over ${r.options.items} shared items (${fmtCounts(s.lines.orders_by_line_count, " line(s)")}); ${s.lines.one_item_form} one-line orders in the seed's one-item body; ${pctOf(r.options.unknown_rate)} with a line for a missing item`],
    [
      "cancels",
      `${pctOf(r.options.cancel_rate)} of orders without a hold (${fmtCounts(Object.fromEntries(Object.entries(s.cancels.planned).filter(([m]) => m !== "reserved" && m !== "after_expiry")))})` +
        `${s.cancels.planned.reserved ? `; ${s.cancels.planned.reserved} holds cancelled while reserved` : ""}` +
        `${s.cancels.planned.after_expiry ? `, ${s.cancels.planned.after_expiry} after their deadline` : ""}; ${s.restocks.made} restocks during the load`,
    ],
    ...(s.holds && s.holds.orders
      ? [["holds", `${pctOf(r.options.hold_rate)} of orders with \`hold_s\` ${s.holds.hold_s}: ${fmtCounts(s.holds.planned)}; payments ${fmtCounts(s.holds.pay_moments)}`] as [string, string]]
      : []),
    ["chaos", `${r.infrastructure && !r.chaos.active ? "none at inventory's edge: the infrastructure faults below are the experiment" : describeChaos(r.chaos.active)}${r.chaos.expired_during_load ? " — **expired before the load ended**" : ""}`],
    ["runtime", `${r.environment.runtime}, ${r.environment.platform}, ${r.environment.cpus} CPUs`],
    ["replay", `\`${r.command}\``],
  ], "ll"));
  out.push("");

  out.push("## Invariants");
  out.push("");
  out.push(table(["invariant", "verdict", "checked", "breaches"], r.invariants.map((v) => [
    `${v.title} (\`${v.name}\`)`,
    v.status === "pass" ? "✅ holds" : v.status === "fail" ? "❌ broken" : "⏭ skipped",
    v.checked,
    v.breach_count,
  ]), "llrr"));
  for (const v of r.invariants) {
    if (v.note && !(v.status === "skipped" && v.name.startsWith("webhooks_"))) out.push("", `- \`${v.name}\`: ${v.note}`);
  }
  // The five webhook checks skipped together say so once.
  const whSkipped = r.invariants.filter((v) => v.status === "skipped" && v.name.startsWith("webhooks_"));
  if (whSkipped.length) out.push("", `- the ${whSkipped.length} webhook checks: ${whSkipped[0]!.note ?? "not applicable"}`);
  const broken = r.invariants.filter((v) => v.status === "fail");
  if (broken.length) {
    out.push("", "### Breaches", "");
    for (const v of broken) {
      out.push(`**${v.name}** (${v.breach_count}):`, "");
      for (const b of v.breaches.slice(0, 20)) out.push(`- \`${b.subject}\`: ${b.detail}`);
      if (v.breach_count > 20) out.push(`- … ${v.breach_count - 20} more in the JSON report`);
      out.push("");
    }
  }
  out.push("");

  out.push(...renderWebhooks(r));
  out.push("## Answers");
  out.push("");
  const codes = [...new Set([...Object.keys(s.first_answer_by_status), ...Object.keys(s.requests_by_status)])].sort();
  out.push(table(["status", "logical orders (first answer)", "requests"], codes.map((c) => [c, s.first_answer_by_status[c] ?? 0, s.requests_by_status[c] ?? 0])));
  out.push("");
  out.push("## Final states");
  out.push("");
  out.push(table(["state", "orders"], Object.entries(s.final_states)));
  out.push("");
  out.push(
    table(
      ["item", "initial", "restocked", "sold (confirmed lines)", "available (API)", "reserved (API)", "available / reserved (database)", "Σ movements (available / reserved)"],
      r.items.map((i) => [
        i.item_id,
        i.initial,
        i.restocked,
        i.standing,
        i.current,
        i.reserved,
        i.db_quantity === undefined ? null : `${i.db_quantity ?? "–"} / ${i.db_reserved ?? "–"}`,
        i.ledger_sum === null ? null : `${i.ledger_sum} / ${i.reserved_sum ?? "–"}`,
      ]),
    ),
  );
  out.push("");

  out.push("## Cancellations");
  out.push("");
  const cx = s.cancels;
  const sentN = Object.values(cx.sent).reduce((a, b) => a + b, 0);
  out.push(
    `${sentN} cancels sent (${fmtCounts(cx.sent)}): ${cx.accepted} accepted (200/202), ${cx.ended_cancelled} of those orders ended \`cancelled\`. ` +
      `*immediate*: right after the order's answer, often while it is queued or the breaker is open; *delayed*: 0.5–5 s later, under chaos; *after_heal*: once the orders have settled after healing (a confirmed order answers 200, a refused one 409)${cx.planned.reserved ? "; *reserved*: a hold's cancel, 1–20 s after the hold was made" : ""}${cx.planned.after_expiry ? "; *after_expiry*: a hold left to expire, cancelled 2–5 s after its deadline (409 `order-not-cancellable`, status `expired`)" : ""}.`,
  );
  out.push("");
  out.push(table(["order's answer → cancel's first answer", "cancels"], Object.entries(cx.first_answer_by_order_answer)));
  out.push("");
  out.push(table(["cancel answers by request (lane, status)", "answers"], Object.entries(cx.answers_by_lane)));
  out.push("");
  out.push(`- cancel requests by status: ${fmtCounts(cx.requests_by_status)}`);
  out.push(`- restocks during the load: ${s.restocks.made} sent, ${s.restocks.acknowledged} acknowledged (${s.restocks.units_acknowledged} units; by status ${fmtCounts(s.restocks.by_status)})`);
  out.push("");

  if (s.holds && s.holds.orders) {
    const h = s.holds;
    const sentH = Object.values(h.pays_sent).reduce((x, y) => x + y, 0);
    out.push("## Holds");
    out.push("");
    out.push(
      `${h.orders} orders asked for a hold of ${h.hold_s} s (${fmtCounts(h.planned)}); ${h.reserved} holds were made` +
        `${Object.keys(h.never_reserved).length ? ` (the others: ${fmtCounts(h.never_reserved)})` : ""}. ` +
        `${sentH} payments sent (${fmtCounts(h.pays_sent)}): by the server's \`paid_at\`, ${h.paid_in_time} before the deadline, ${h.paid_late} not. ` +
        "*early*: 0.5–15 s after the hold was made; *near*: in the last 3 s before the deadline; *late*: 1–4 s after it (409 `hold-expired` is due). " +
        "Cancels of holds go 1–20 s after the hold, while reserved; the rest are left to expire, and a quarter of those are cancelled 2–5 s after the deadline (a 409 is due).",
    );
    out.push("");
    out.push(table(["plan → final state", "holds"], Object.entries(h.final_by_fate)));
    out.push("");
    out.push(table(["payment moment, first answer", "payments"], Object.entries(h.first_pay_answer_by_moment)));
    out.push("");
    out.push(table(["pay answers by request (lane, status)", "answers"], Object.entries(h.answers_by_lane)));
    out.push("");
    out.push(`- pay requests by status: ${fmtCounts(h.requests_by_status)}`);
    out.push("");
  }

  out.push("## Latency (ms)");
  out.push("");
  const lat = (name: string, l: LatencySummary) => [name, l.count, l.p50, l.p95, l.p99, l.max];
  out.push(table(["measure", "count", "p50", "p95", "p99", "max"], [
    lat("each request", s.latency_ms.requests),
    lat("order, first request to first answer", s.latency_ms.orders),
    ...Object.entries(s.latency_ms.orders_by_first_answer).map(([k, v]) => lat(`… answered ${k}`, v)),
    lat("queued order, creation to final state (server)", s.latency_ms.time_to_final_queued),
    ...Object.entries(s.latency_ms.cancels_by_first_answer ?? {}).map(([k, v]) => lat(`cancel answered ${k}, first request to answer`, v)),
  ]));
  out.push("");

  out.push(...renderInfraFaults(r.infrastructure));
  out.push("## Faults injected and how the system took them");
  out.push("");
  const faults = r.chaos.event_counts ? Object.entries(r.chaos.event_counts).filter(([, n]) => n > 0) : [];
  out.push(faults.length ? table(["fault", "count"], faults) : "No faults injected (or the counts were not readable).");
  const fmt = (o: Record<string, number>) => Object.entries(o).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
  const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  out.push("");
  if (r.summary.server) {
    const sv = r.summary.server;
    if (sv.inventory_deducts) {
      const d = sv.inventory_deducts;
      out.push(
        `- deduct calls that reached inventory: ${sum(d.during_load)} during the load (by status: ${fmt(d.during_load)}), ` +
          `${sum(d.after_heal)} after it, while settling (${fmt(d.after_heal)})`,
      );
    }
    out.push(`- circuit breaker transitions (to): ${fmt(sv.breaker_transitions)}`, `- 202 fallbacks by reason: ${fmt(sv.fallbacks)}`, `- retry worker results: ${fmt(sv.worker_results)}`);
  }
  if (r.summary.ledger) {
    // A `release` row gives back one line of a deduction: for a cancelled order, or one that failed after its deduction committed unseen.
    out.push(`- inventory's ledger for the run (movement rows, one per line): ${fmt(r.summary.ledger)}`);
  }
  out.push("");

  out.push("## Affected orders");
  out.push("");
  const a = s.affected;
  out.push(
    `${a.total} orders were affected: ${a.delayed} delayed (over ${r.options.delay_threshold_ms} ms), ${a.queued} queued (202), ${a.retried} retried, ` +
      `${a.conflict} met a 409, ${a.reconciled} needed the post-heal resend, ${a.failed} ended failed${a.breach ? `, ${a.breach} in a breach` : ""}.`,
  );
  out.push("");
  if (r.affected_orders.length) {
    // The worst few of each kind, so every way the chaos hit shows; the JSON has the whole list.
    const per = Math.max(1, opts.maxAffectedRows ?? 10);
    const kinds: Array<{ flag: AffectedFlag; title: string; by: (o: AffectedOrder) => number }> = [
      { flag: "breach", title: "In a breach", by: () => 0 },
      { flag: "reconciled", title: "Never answered during the load, resent after healing", by: (o) => o.requests },
      { flag: "failed", title: "Failed (retries exhausted, stock released)", by: (o) => o.time_to_final_ms ?? 0 },
      { flag: "delayed", title: "Delayed, slowest first", by: (o) => o.client_ms ?? 0 },
      { flag: "queued", title: "Queued (202), longest to a final state first", by: (o) => o.time_to_final_ms ?? 0 },
      { flag: "retried", title: "Retried, most requests first", by: (o) => o.requests },
      { flag: "conflict", title: "Met a 409 (a twin or an earlier attempt still in flight)", by: (o) => o.requests },
    ];
    for (const k of kinds) {
      const all = r.affected_orders.filter((o) => o.flags.includes(k.flag));
      if (!all.length) continue;
      const shown = [...all].sort((x, y) => k.by(y) - k.by(x) || x.key.localeCompare(y.key)).slice(0, per);
      out.push(`### ${k.title}: ${all.length}`, "");
      out.push(table(["key", "order", "lines", "flags", "requests (codes)", "client ms", "to final ms", "final"], shown.map((o) => [
        o.key,
        o.order_id ? o.order_id.slice(0, 8) : null,
        o.lines,
        o.flags.join(", "),
        `${o.requests} (${o.codes})`,
        o.client_ms,
        o.time_to_final_ms,
        o.final,
      ]), "lllllrrl"));
      if (all.length > shown.length) out.push("", `… ${all.length - shown.length} more in ${opts.jsonName ?? "the JSON report"} (\`affected_orders\`).`);
      out.push("");
    }
  }
  out.push("");
  out.push("## Reading this report");
  out.push("");
  out.push(
    "- *First answer* is the first definitive answer a logical order got (201 confirmed, 202 queued, 422 refused); *requests* counts every HTTP attempt, so retried 503s, 409s and transport failures (\"no answer\") show there.",
    "- *Delayed*: the client waited longer than the threshold for an answer. *Queued*: a 202; the order finished later through the retry worker. *Retried*: the careful client sent the same key again. *Conflict*: a 409 while its twin or an earlier attempt was in flight.",
    "- *To final ms* is server time from the order's creation to its final state; *client ms* is client time to the first definitive answer.",
    "- The invariants are checked on the data after healing, not on status codes: stock is compared with the lines of the orders that stand (confirmed, not cancelled), and inventory's ledger, line by line, with every order's final state.",
    "- Ledger rows are movements, one per line: `deduct` took a line's stock, `release` gave one back (a cancelled order, or a failed one whose deduction had committed unseen), `restock` and `adjust` added or removed stock outside orders, `create` is the opening stock. `hold` moved a line from available into reserved, `sale` sold it (a paid hold), `hold_release` gave it back (an expired or cancelled hold). For every item the quantity changes add up to its available stock, the reserved changes to its reserved stock.",
    "- *Cancels*: the first key's answer is the one that counts; the same key sent again must replay it, and a second key must agree (200 again once cancelled). 409 is the answer for a rejected or failed order; a 409 while the key is still in flight is retried.",
  );
  out.push("");
  return out.join("\n");
}
