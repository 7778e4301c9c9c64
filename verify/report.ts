import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { InvariantVerdict } from "./invariants.ts";
import { renderMarkdown } from "./report-markdown.ts";
import type { InfraReport } from "./infra/run-faults.ts";
import type { WebhookSummary } from "./webhooks.ts";
import { summarize, tally, type LatencySummary } from "./stats.ts";
import { cancelAccepted, FINAL_STATUSES, isAccepted, linesLabel, orderIdOf, type ItemObservation, type OrderRecord, type RestockRecord } from "./types.ts";

/**
 * The report: one JSON document with everything (for tools and for replaying an argument), and a
 * Markdown summary a person reads first. Built from the run's data by pure functions, so its
 * shape is tested without running anything.
 */

export type AffectedFlag = "delayed" | "queued" | "retried" | "conflict" | "reconciled" | "failed" | "breach";

export interface AffectedOrder {
  key: string;
  order_id: string | null;
  /** Its lines, `"a × 2, b × 1"`. */
  lines: string;
  flags: AffectedFlag[];
  /** Status codes of every request in order, `0` for no answer: "503 503 202". */
  codes: string;
  requests: number;
  first_answer: number | null;
  final: string | null;
  /** Client time from the first request to the first definitive answer. */
  client_ms: number | null;
  /** Server time from creation to the final state (from the order's history). */
  time_to_final_ms: number | null;
  /** When the runner first saw it final, ms after healing (for orders finished after the heal). */
  final_after_heal_ms: number | null;
}

export interface RunEnvironment {
  mode: "spawned" | "target";
  database: "postgres" | "pglite" | "unknown";
  key_value: string;
  retry_queue: string;
  /** Settings given to the started roles with `--env`, over their defaults. */
  settings?: Record<string, string>;
  /** Replicas, balancer, namespaces: how the started deployment is laid out, when it is more than one process per role. */
  topology?: string;
  urls: { orders: string; inventory: string; chaos: string };
  runtime: string;
  platform: string;
  cpus: number;
}

export interface RunData {
  tool: string;
  command: string;
  options: Record<string, unknown>;
  runId: string;
  startedAt: string;
  finishedAt: string;
  environment: RunEnvironment;
  chaos: {
    requested: Record<string, unknown> | null;
    active: Record<string, unknown> | null;
    applied_ms: number | null;
    healed_ms: number | null;
    /** The experiment had expired by itself before the load ended. */
    expired_during_load?: boolean;
    event_counts: Record<string, number> | null;
    recent_events: unknown[];
  };
  /** Phase name → ms. */
  phases: Record<string, number>;
  items: ItemObservation[];
  records: OrderRecord[];
  /** Restocks the runner made during the load. */
  restocks?: RestockRecord[];
  verdicts: InvariantVerdict[];
  settle: { bound_ms: number; unfinished: number; reconciled: number; cancels_after_heal?: number; cancels_resent?: number };
  /** Inventory's movements for the run, by type (e.g. `deduct`); null when unread. */
  ledger: Record<string, number> | null;
  /** Σ movements per item, when the ledger was read. */
  ledgerSums?: Record<string, number> | null;
  /** Σ reserved changes per item, when the ledger was read. */
  reservedSums?: Record<string, number> | null;
  server: {
    breaker_transitions: Record<string, number>;
    fallbacks: Record<string, number>;
    worker_results: Record<string, number>;
    /** Deduct calls inventory answered, by HTTP status (500 includes injected resets). */
    inventory_deducts: { during_load: Record<string, number>; after_heal: Record<string, number> } | null;
  } | null;
  delayThresholdMs: number;
  /** Replicas and the faults injected underneath them (infra scenarios). */
  infrastructure?: InfraReport | null;
  jsonOrders: "all" | "affected" | "none";
  /** 0: no cap. */
  jsonMaxOrders?: number;
  /** `--webhooks`: the receiver's, the relays' and the drain's figures. */
  webhooks?: WebhookSummary | null;
}

export interface ChaosReport {
  tool: string;
  verdict: "pass" | "fail";
  command: string;
  run_id: string;
  started_at: string;
  finished_at: string;
  duration_s: number;
  options: Record<string, unknown>;
  environment: RunEnvironment;
  chaos: RunData["chaos"];
  infrastructure?: InfraReport;
  /** `--webhooks` runs only. */
  webhooks?: WebhookSummary;
  phases_ms: Record<string, number>;
  summary: {
    logical_orders: number;
    requests: number;
    accepted: number;
    orders_per_second: number;
    first_answer_by_status: Record<string, number>;
    requests_by_status: Record<string, number>;
    final_states: Record<string, number>;
    affected: Record<AffectedFlag, number> & { total: number };
    settle: RunData["settle"];
    latency_ms: {
      requests: LatencySummary;
      orders: LatencySummary;
      orders_by_first_answer: Record<string, LatencySummary>;
      time_to_final_queued: LatencySummary;
      /** A cancel's first key: first request to its answer, by that answer's status. */
      cancels_by_first_answer: Record<string, LatencySummary>;
    };
    server: RunData["server"];
    /** Inventory's movements for the run's items and orders, by type. */
    ledger: Record<string, number> | null;
    /** Orders by number of lines, and how many went in the seed's one-item body. */
    lines: { orders_by_line_count: Record<string, number>; one_item_form: number; lines_total: number };
    cancels: CancelSummary;
    holds: HoldSummary;
    restocks: { made: number; acknowledged: number; units_acknowledged: number; by_status: Record<string, number> };
  };
  items: Array<ItemObservation & { restocked: number; standing: number; ledger_sum: number | null; reserved_sum?: number | null }>;
  invariants: InvariantVerdict[];
  affected_orders: AffectedOrder[];
  orders_included: "all" | "affected" | "none";
  /** Orders left out of `orders` by `--json-max-orders`. */
  orders_omitted: number;
  orders: Array<Record<string, unknown>>;
}

export interface CancelSummary {
  /** Orders the plan gave a cancel, by moment. */
  planned: Record<string, number>;
  /** Cancels sent (first key), by moment; the rest never had an order id to cancel. */
  sent: Record<string, number>;
  /** First key's answer, by the order's first answer when the cancel left: `"201→200"`, `"422→409"`. */
  first_answer_by_order_answer: Record<string, number>;
  /** Every cancel request, by status. */
  requests_by_status: Record<string, number>;
  /** Definitive cancel answers by lane and status: `"cancel_replay 200"`. */
  answers_by_lane: Record<string, number>;
  /** Accepted (200/202) cancels, and how many of those orders ended `cancelled`. */
  accepted: number;
  ended_cancelled: number;
}

export interface HoldSummary {
  /** Orders placed with a hold, and the `hold_s` they asked for. */
  orders: number;
  hold_s: number | null;
  /** What the plan meant for them: paid, cancelled while reserved, left to expire. */
  planned: Record<string, number>;
  /** Paid ones by moment: early, near the deadline, after it. */
  pay_moments: Record<string, number>;
  /** Holds the runner saw made (`reserved`), and the states of the rest when it stopped waiting. */
  reserved: number;
  never_reserved: Record<string, number>;
  /** Payments sent (first key), by moment. */
  pays_sent: Record<string, number>;
  /** The first key's answer by moment: `"near 200"`, `"late 409 hold_expired"`. */
  first_pay_answer_by_moment: Record<string, number>;
  /** Definitive pay answers by lane and status. */
  answers_by_lane: Record<string, number>;
  /** Every pay request, by status. */
  requests_by_status: Record<string, number>;
  /** Paid orders judged by the server's paid_at against the deadline: in time / not. */
  paid_in_time: number;
  paid_late: number;
  /** Final states of the hold orders, by plan: `"pay confirmed"`, `"expire expired"`. */
  final_by_fate: Record<string, number>;
}

/** What the holds asked for and got, in numbers. */
export function holdSummary(records: readonly OrderRecord[]): HoldSummary {
  const holds = records.filter((r) => r.hold);
  const h = (r: OrderRecord) => r.hold!;
  const paid = holds.filter((r) => h(r).pay_sent_ms !== null);
  const judged = holds.filter((r) => r.final?.paid_at && r.final.hold_expires_at);
  return {
    orders: holds.length,
    hold_s: holds[0] ? h(holds[0]).hold_s : null,
    planned: tally(holds, (r) => h(r).fate),
    pay_moments: tally(holds.filter((r) => h(r).pay_moment), (r) => h(r).pay_moment!),
    reserved: holds.filter((r) => h(r).expires_at).length,
    never_reserved: tally(holds.filter((r) => !h(r).expires_at), (r) => h(r).seen_status ?? (r.answers.length ? "no order" : "unanswered")),
    pays_sent: tally(paid, (r) => h(r).pay_moment ?? "?"),
    first_pay_answer_by_moment: tally(paid, (r) => {
      const a = h(r).answers.find((x) => x.lane === "pay");
      return `${h(r).pay_moment} ${a ? (a.kind === "order" ? a.status : `${a.status} ${a.kind}`) : "none"}`;
    }),
    answers_by_lane: tally(paid.flatMap((r) => h(r).answers), (a) => `${a.lane} ${a.status}${a.kind === "order" ? "" : ` ${a.kind}`}`),
    requests_by_status: tally(paid.flatMap((r) => h(r).attempts), (a) => (a.status === 0 ? `no answer (${a.error ?? "transport"})` : String(a.status))),
    paid_in_time: judged.filter((r) => Date.parse(r.final!.paid_at!) < Date.parse(r.final!.hold_expires_at!)).length,
    paid_late: judged.filter((r) => Date.parse(r.final!.paid_at!) >= Date.parse(r.final!.hold_expires_at!)).length,
    final_by_fate: tally(holds, (r) => `${h(r).fate} ${r.final?.status ?? "unread"}`),
  };
}

const requestCode = (a: OrderRecord["attempts"][number]) => (a.status === 0 ? `no answer (${a.error ?? "transport"})` : String(a.status));

/** Which ways an order was hit, for the affected list. */
export function affectedFlags(r: OrderRecord, delayThresholdMs: number, breachKeys: ReadonlySet<string>): AffectedFlag[] {
  const flags: AffectedFlag[] = [];
  const clientMs = r.answered_ms === null ? null : r.answered_ms - r.sent_ms;
  if ((clientMs !== null && clientMs > delayThresholdMs) || r.attempts.some((a) => a.duration_ms > delayThresholdMs)) flags.push("delayed");
  if (r.attempts.some((a) => a.status === 202)) flags.push("queued");
  const perLane = tally(r.attempts, (a) => a.lane);
  if (Object.entries(perLane).some(([lane, n]) => lane !== "reconcile" && n > 1)) flags.push("retried");
  if (r.attempts.some((a) => a.status === 409)) flags.push("conflict");
  if (r.reconciled) flags.push("reconciled");
  if (r.final?.status === "failed") flags.push("failed");
  const id = orderIdOf(r);
  if (breachKeys.has(r.key) || (id && breachKeys.has(id))) flags.push("breach");
  return flags;
}

function timeToFinal(r: OrderRecord): number | null {
  const f = r.final;
  if (!f || !FINAL_STATUSES.has(f.status) || !f.created_at) return null;
  const last = f.history[f.history.length - 1];
  const end = last ? Date.parse(last.at) : f.updated_at ? Date.parse(f.updated_at) : NaN;
  const ms = end - Date.parse(f.created_at);
  return Number.isFinite(ms) ? Math.max(0, ms) : null;
}

/**
 * One order as the JSON lists it: every request, every answer, the final state and its history
 * (as ms after creation, to keep 2,000 orders well under a megabyte). A request's order id is
 * kept only when it differs from the order's, which would be a breach worth seeing.
 */
function compactOrder(r: OrderRecord): Record<string, unknown> {
  const id = orderIdOf(r);
  const created = r.final?.created_at ? Date.parse(r.final.created_at) : NaN;
  return {
    key: r.key,
    order_id: id,
    lines: r.lines,
    ...(r.form === "one_item" ? { form: "one_item" } : {}),
    ...(r.duplicate ? { duplicate: true } : {}),
    sent_ms: r.sent_ms,
    answered_ms: r.answered_ms,
    ...(r.reconciled ? { reconciled: true } : {}),
    attempts: r.attempts.map(({ order_id, ...a }) => (order_id && order_id !== id ? { ...a, order_id } : a)),
    answers: r.answers.map((a) => ({ lane: a.lane, status: a.status, ...(a.kind === "order" ? {} : { kind: a.kind }), order_status: a.order_status })),
    ...(r.cancel
      ? {
          cancel: {
            moment: r.cancel.moment,
            ...(r.cancel.moment === "delayed" ? { delay_ms: r.cancel.delay_ms } : {}),
            sent_ms: r.cancel.sent_ms,
            order_answer: r.cancel.order_answer,
            attempts: r.cancel.attempts,
            answers: r.cancel.answers.map((a) => ({ lane: a.lane, status: a.status, ...(a.kind === "order" ? {} : { kind: a.kind }), order_status: a.order_status, ...(a.replayed ? { replayed: true } : {}) })),
          },
        }
      : {}),
    ...(r.hold
      ? {
          hold: {
            hold_s: r.hold.hold_s,
            fate: r.hold.fate,
            ...(r.hold.pay_moment ? { pay_moment: r.hold.pay_moment, offset_ms: r.hold.offset_ms } : {}),
            expires_at: r.hold.expires_at,
            ...(r.hold.expires_at ? {} : { seen_status: r.hold.seen_status }),
            ...(r.hold.pay_sent_ms !== null
              ? {
                  pay_sent_ms: r.hold.pay_sent_ms,
                  pay_sent_at: r.hold.pay_sent_at,
                  attempts: r.hold.attempts,
                  answers: r.hold.answers.map((a) => ({ lane: a.lane, status: a.status, ...(a.kind === "order" ? {} : { kind: a.kind }), order_status: a.order_status, ...(a.replayed ? { replayed: true } : {}) })),
                }
              : {}),
          },
        }
      : {}),
    final: r.final
      ? {
          status: r.final.status,
          ...(r.final.hold_expires_at ? { hold_expires_at: r.final.hold_expires_at } : {}),
          ...(r.final.paid_at ? { paid_at: r.final.paid_at } : {}),
          reason: r.final.reason,
          server_attempts: r.final.server_attempts,
          created_at: r.final.created_at,
          final_seen_ms: r.final.final_seen_ms,
          history: r.final.history.map((h) => ({
            status: h.status,
            ...(h.reason ? { reason: h.reason } : {}),
            after_ms: Number.isFinite(created) ? Date.parse(h.at) - created : null,
          })),
        }
      : null,
  };
}

/** Orders the affected list so the worst come first: breaches, never answered, failed, then slowest. */
function severity(a: AffectedOrder): number {
  return (a.flags.includes("breach") ? 4 : 0) + (a.flags.includes("reconciled") ? 2 : 0) + (a.flags.includes("failed") ? 1 : 0);
}

export function buildReport(d: RunData): ChaosReport {
  const breachKeys = new Set(d.verdicts.flatMap((v) => v.breaches.map((b) => b.subject)));
  const affected: AffectedOrder[] = [];
  const counts = { delayed: 0, queued: 0, retried: 0, conflict: 0, reconciled: 0, failed: 0, breach: 0, total: 0 };
  for (const r of d.records) {
    const flags = affectedFlags(r, d.delayThresholdMs, breachKeys);
    if (flags.length === 0) continue;
    counts.total++;
    for (const f of flags) counts[f]++;
    affected.push({
      key: r.key,
      order_id: orderIdOf(r),
      lines: linesLabel(r.lines),
      flags,
      codes: r.attempts.map((a) => String(a.status)).join(" "),
      requests: r.attempts.length,
      first_answer: r.answers[0]?.status ?? null,
      final: r.final?.status ?? null,
      client_ms: r.answered_ms === null ? null : r.answered_ms - r.sent_ms,
      time_to_final_ms: timeToFinal(r),
      final_after_heal_ms: r.final?.final_seen_ms ?? null,
    });
  }
  affected.sort((a, b) => severity(b) - severity(a) || (b.client_ms ?? 0) - (a.client_ms ?? 0) || a.key.localeCompare(b.key));

  const attempts = d.records.flatMap((r) => r.attempts);
  const answered = d.records.filter((r) => r.answered_ms !== null && !r.reconciled);
  const byFirst: Record<string, number[]> = {};
  for (const r of answered) (byFirst[String(r.answers[0]!.status)] ??= []).push(r.answered_ms! - r.sent_ms);
  const cancelLatency: Record<string, number[]> = {};
  for (const r of d.records) {
    const c = r.cancel;
    const first = c?.answers.find((a) => a.key === c.key && a.lane !== "cancel_replay");
    if (c && first && c.sent_ms !== null) (cancelLatency[String(first.status)] ??= []).push(first.at_ms - c.sent_ms);
  }
  const queuedToFinal = d.records.filter((r) => r.attempts.some((a) => a.status === 202)).map(timeToFinal).filter((n): n is number => n !== null);

  // Request-by-request records: the affected ones in the affected list's order (worst first).
  const byKey = new Map(d.records.map((r) => [r.key, r]));
  const listed =
    d.jsonOrders === "none" ? [] : d.jsonOrders === "all" ? d.records : affected.map((a) => byKey.get(a.key)!).filter(Boolean);
  const kept = d.jsonMaxOrders ? listed.slice(0, d.jsonMaxOrders) : listed;

  const standing = new Map<string, number>();
  for (const r of d.records) {
    if (r.final?.status !== "confirmed") continue;
    for (const l of r.lines) standing.set(l.item_id, (standing.get(l.item_id) ?? 0) + l.quantity);
  }
  const restocks = d.restocks ?? [];
  const restocked = new Map<string, number>();
  for (const r of restocks) if (r.status === 200) restocked.set(r.item_id, (restocked.get(r.item_id) ?? 0) + r.quantity);
  const durationS = (Date.parse(d.finishedAt) - Date.parse(d.startedAt)) / 1000;
  const loadS = (d.phases.load ?? 0) / 1000;

  return {
    tool: d.tool,
    verdict: d.verdicts.some((v) => v.status === "fail") ? "fail" : "pass",
    command: d.command,
    run_id: d.runId,
    started_at: d.startedAt,
    finished_at: d.finishedAt,
    duration_s: Math.round(durationS * 10) / 10,
    options: d.options,
    environment: d.environment,
    chaos: d.chaos,
    ...(d.infrastructure ? { infrastructure: d.infrastructure } : {}),
    ...(d.webhooks ? { webhooks: d.webhooks } : {}),
    phases_ms: d.phases,
    summary: {
      logical_orders: d.records.length,
      requests: attempts.length,
      accepted: d.records.filter(isAccepted).length,
      orders_per_second: loadS > 0 ? Math.round((d.records.length / loadS) * 10) / 10 : 0,
      first_answer_by_status: tally(d.records, (r) => (r.answers[0] ? String(r.answers[0].status) : "none")),
      requests_by_status: tally(attempts, requestCode),
      final_states: tally(d.records, (r) => r.final?.status ?? (r.answers.length ? "no order" : "unanswered")),
      affected: counts,
      settle: d.settle,
      latency_ms: {
        requests: summarize(attempts.map((a) => a.duration_ms)),
        orders: summarize(answered.map((r) => r.answered_ms! - r.sent_ms)),
        orders_by_first_answer: Object.fromEntries(Object.entries(byFirst).sort().map(([k, v]) => [k, summarize(v)])),
        time_to_final_queued: summarize(queuedToFinal),
        cancels_by_first_answer: Object.fromEntries(Object.entries(cancelLatency).sort().map(([k, v]) => [k, summarize(v)])),
      },
      server: d.server,
      ledger: d.ledger,
      lines: {
        orders_by_line_count: tally(d.records, (r) => String(r.lines.length)),
        one_item_form: d.records.filter((r) => r.form === "one_item").length,
        lines_total: d.records.reduce((s, r) => s + r.lines.length, 0),
      },
      cancels: cancelSummary(d.records),
      holds: holdSummary(d.records),
      restocks: {
        made: restocks.length,
        acknowledged: restocks.filter((r) => r.status === 200).length,
        units_acknowledged: restocks.filter((r) => r.status === 200).reduce((s, r) => s + r.quantity, 0),
        by_status: tally(restocks, (r) => String(r.status)),
      },
    },
    items: d.items.map((i) => ({
      ...i,
      restocked: restocked.get(i.item_id) ?? 0,
      standing: standing.get(i.item_id) ?? 0,
      ledger_sum: d.ledgerSums ? (d.ledgerSums[i.item_id] ?? 0) : null,
      reserved_sum: d.reservedSums ? (d.reservedSums[i.item_id] ?? 0) : null,
    })),
    invariants: d.verdicts,
    affected_orders: affected,
    orders_included: d.jsonOrders,
    orders_omitted: listed.length - kept.length,
    orders: kept.map(compactOrder),
  };
}

/** What the cancels asked for and got, in numbers. */
export function cancelSummary(records: readonly OrderRecord[]): CancelSummary {
  const withCancel = records.filter((r) => r.cancel);
  const sent = withCancel.filter((r) => r.cancel!.sent_ms !== null);
  const firsts = sent.flatMap((r) => {
    const c = r.cancel!;
    const a = c.answers.find((x) => x.key === c.key && x.lane !== "cancel_replay");
    return [`${c.order_answer ?? "none"}→${a ? (a.kind === "order" || a.kind === "not_cancellable" ? a.status : `${a.status} ${a.kind}`) : "none"}`];
  });
  const accepted = sent.filter((r) => cancelAccepted(r.cancel));
  return {
    planned: tally(withCancel, (r) => r.cancel!.moment),
    sent: tally(sent, (r) => r.cancel!.moment),
    first_answer_by_order_answer: tally(firsts, (x) => x),
    requests_by_status: tally(
      sent.flatMap((r) => r.cancel!.attempts),
      (a) => (a.status === 0 ? `no answer (${a.error ?? "transport"})` : String(a.status)),
    ),
    answers_by_lane: tally(
      sent.flatMap((r) => r.cancel!.answers),
      (a) => `${a.lane} ${a.status}`,
    ),
    accepted: accepted.length,
    ended_cancelled: accepted.filter((r) => r.final?.status === "cancelled").length,
  };
}

/**
 * The report as JSON: indented for reading, except that each order and each affected order sits
 * on one line, so the file stays small and a diff of two runs stays readable.
 */
export function reportJson(report: ChaosReport): string {
  const { orders, affected_orders, ...head } = report;
  const lines = (xs: unknown[]) => (xs.length ? `[\n  ${xs.map((x) => JSON.stringify(x)).join(",\n  ")}\n ]` : "[]");
  const body = JSON.stringify({ ...head, affected_orders: "@@AFFECTED@@", orders: "@@ORDERS@@" }, null, 1);
  return `${body.replace('"@@AFFECTED@@"', () => lines(affected_orders)).replace('"@@ORDERS@@"', () => lines(orders))}\n`;
}

/** Writes `<prefix>.json` and `<prefix>.md`; returns their paths. */
export function writeReport(report: ChaosReport, prefix: string, opts: { maxAffectedRows?: number } = {}): { json: string; md: string } {
  const json = `${prefix}.json`;
  const md = `${prefix}.md`;
  mkdirSync(dirname(json), { recursive: true });
  writeFileSync(json, reportJson(report));
  writeFileSync(md, renderMarkdown(report, { ...opts, jsonName: json.split("/").pop() }));
  return { json, md };
}
