import { mixSeed, mulberry32 } from "../platform/prng.ts";
import type { SpawnedRole } from "./processes.ts";
import type { SystemApi } from "./system-api.ts";
import { WebhookReceiver } from "./webhook-receiver.ts";
import type { ListedEvent, OrderRecord, ReceivedAttempt, WebhookObservation } from "./types.ts";
import { orderIdOf } from "./types.ts";

/**
 * The webhook side of the chaos run (`--webhooks`): a receiver in the runner that fails half its
 * attempts, is slow now and then and goes away for a stretch; two relay processes of their own
 * (orders role, WEBHOOK_RELAY=true, no load through them) killed with SIGKILL in turn and
 * restarted; after healing, a bounded wait for the relay's backlog to drain, then the events,
 * histories and attempts the webhook invariants judge.
 */

/** The relay settings the run gives its relay processes, so a run ends in minutes; `--env` may override any. */
export function relayTuning(): Record<string, string> {
  // 40 waits: half the attempts fail, and a down receiver takes a dozen; after the last the
  // delivery would be given up, which the checks would report as a lost event.
  const schedule = [250, 500, 1000, ...Array.from({ length: 37 }, () => 2000)];
  return {
    WEBHOOK_TIMEOUT_MS: "3000",
    WEBHOOK_RETRY_SCHEDULE_MS: schedule.join(","),
    WEBHOOK_BREAKER_OPEN_MS: "1000",
    WEBHOOK_POLL_INTERVAL_MS: "100",
  };
}

/** The receiver's behaviour in a run: half the attempts answered 503, 5 % held 0.2–1.5 s (below the relay's 3 s timeout). */
export const RECEIVER_SETTINGS = { failRate: 0.5, slowRate: 0.05, slowMs: [200, 1500] as [number, number] };

/** Two relay processes the runner can kill and start again. */
export interface RelayPool {
  readonly size: number;
  /** pids of the live relays, for the progress lines. */
  pids(): Array<number | null>;
  /** SIGKILL relay `i`; resolves once it is gone. */
  kill(i: number): Promise<void>;
  /** Starts relay `i` again if it is down. */
  start(i: number): Promise<void>;
  /** Every relay up. */
  startAll(): Promise<void>;
  stopAll(): Promise<void>;
  readonly starts: number;
}

export function relayPool(size: number, spawn: (name: string) => Promise<SpawnedRole>): RelayPool {
  const live: Array<SpawnedRole | null> = Array.from({ length: size }, () => null);
  const generation = Array.from({ length: size }, () => 0);
  let starts = 0;
  const pool: RelayPool = {
    size,
    get starts() {
      return starts;
    },
    pids: () => live.map((r) => (r && !r.exited ? r.pid : null)),
    async kill(i) {
      const r = live[i];
      live[i] = null;
      if (!r || r.exited) return;
      try {
        process.kill(r.pid, "SIGKILL");
      } catch {
        // already gone
      }
      const deadline = Date.now() + 10_000;
      while (!r.exited && Date.now() < deadline) await Bun.sleep(20);
    },
    async start(i) {
      if (live[i] && !live[i]!.exited) return;
      const name = `relay-${String.fromCharCode(97 + i)}-${++generation[i]!}`;
      live[i] = await spawn(name);
      starts++;
    },
    async startAll() {
      for (let i = 0; i < size; i++) await pool.start(i);
    },
    async stopAll() {
      for (let i = 0; i < size; i++) {
        const r = live[i];
        live[i] = null;
        await r?.stop().catch(() => null);
      }
    },
  };
  return pool;
}

export interface RelayKill {
  relay: string;
  pid: number | null;
  killed_ms: number;
  restarted_ms: number | null;
}

export interface WebhookChaosPlan {
  /** When the receiver goes down, and for how long (ms since the load began). */
  downAfterMs: number;
  downForMs: number;
  /** Kill one relay every this many ms (jittered ±30 %), and keep it down this long before restarting it. */
  killEveryMs: number;
  pauseMs: [number, number];
}

/**
 * The plan for a load of `expectedLoadMs`: the receiver goes down a quarter of the way in, for a
 * fifth of the load (5–20 s); a relay is killed about every 3 s (the other in turn) and kept down 1–3 s.
 */
export function webhookChaosPlan(expectedLoadMs: number): WebhookChaosPlan {
  return {
    downAfterMs: Math.round(Math.min(60_000, Math.max(3_000, expectedLoadMs * 0.25))),
    downForMs: Math.round(Math.min(20_000, Math.max(5_000, expectedLoadMs * 0.2))),
    killEveryMs: 3_000,
    pauseMs: [1_000, 3_000],
  };
}

/**
 * Runs the webhook faults during the load: relay kills in turn, the receiver's downtime. `finish()`
 * stops them, brings the receiver back and every relay up, and resolves to the kills made.
 */
export function startWebhookChaos(
  relays: RelayPool,
  receiver: WebhookReceiver,
  plan: WebhookChaosPlan,
  ctx: { seed: number; elapsed: () => number; say: (line: string) => void },
): { finish(): Promise<RelayKill[]> } {
  const random = mulberry32(mixSeed(ctx.seed, 0x72_6c));
  const kills: RelayKill[] = [];
  const stop = new AbortController();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      stop.signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
    });
  const killing = (async () => {
    for (let n = 0; !stop.signal.aborted; n++) {
      await sleep(plan.killEveryMs * (0.7 + 0.6 * random()));
      if (stop.signal.aborted) break;
      const i = n % relays.size;
      const k: RelayKill = { relay: String.fromCharCode(97 + i), pid: relays.pids()[i] ?? null, killed_ms: Math.round(ctx.elapsed()), restarted_ms: null };
      kills.push(k);
      await relays.kill(i);
      ctx.say(`webhooks: relay ${k.relay} (pid ${k.pid}) killed with SIGKILL`);
      await sleep(plan.pauseMs[0] + random() * (plan.pauseMs[1] - plan.pauseMs[0]));
      try {
        await relays.start(i);
        k.restarted_ms = Math.round(ctx.elapsed());
      } catch (err) {
        ctx.say(`webhooks: relay ${k.relay} did not start again: ${(err as Error).message.split("\n")[0]}`);
      }
    }
  })();
  const downing = (async () => {
    await sleep(plan.downAfterMs);
    if (stop.signal.aborted) return;
    receiver.stop();
    ctx.say(`webhooks: receiver down (connection refused) for ${Math.round(plan.downForMs / 1000)} s`);
    await sleep(plan.downForMs);
    receiver.start();
    ctx.say("webhooks: receiver back up");
  })();
  return {
    async finish() {
      stop.abort();
      await Promise.all([killing, downing]);
      receiver.start();
      await relays.startAll();
      return kills;
    },
  };
}

/** `webhook_oldest_undelivered_age_seconds` from a /metrics text; null when absent. */
export function oldestUndeliveredAge(metricsText: string | null): number | null {
  if (!metricsText) return null;
  const m = /^webhook_oldest_undelivered_age_seconds\s+([0-9.eE+-]+)/m.exec(metricsText);
  return m ? Number(m[1]) : null;
}

/**
 * Waits until nothing waits for delivery (the orders role's `webhook_oldest_undelivered_age_seconds`
 * reads 0 twice in a row) or the bound passes. Resolves to the ms it took, or null if it never drained.
 */
export async function awaitDrained(
  readMetrics: () => Promise<string | null>,
  o: { boundMs: number; pollMs?: number; signal?: AbortSignal; onRound?: (age: number | null, ms: number) => void },
): Promise<number | null> {
  const t0 = performance.now();
  let zeros = 0;
  for (;;) {
    const age = oldestUndeliveredAge(await readMetrics().catch(() => null));
    const ms = performance.now() - t0;
    o.onRound?.(age, ms);
    zeros = age === 0 ? zeros + 1 : 0;
    if (zeros >= 2) return Math.round(ms);
    if (ms >= o.boundMs || o.signal?.aborted) return null;
    await Bun.sleep(o.pollMs ?? 500);
  }
}

/** Every event the orders role lists, page by page: the order events, and the others (`stock.low`) apart. */
export async function listAllEvents(api: SystemApi): Promise<{ events: ListedEvent[]; other: Array<{ id: string; type: string }> }> {
  const out: ListedEvent[] = [];
  const other: Array<{ id: string; type: string }> = [];
  let after: string | null = null;
  for (;;) {
    const page = await api.eventsPage(after, 500);
    for (const e of page.events) {
      const { order_id, seq, status } = e.data;
      if (order_id !== undefined && seq !== undefined && status !== undefined) out.push({ id: e.id, type: e.type, order_id, seq, status, created_at: e.created_at });
      else other.push({ id: e.id, type: e.type });
    }
    if (page.events.length < 500 || !page.next_after) return { events: out, other };
    after = page.next_after;
  }
}

/** The histories of every order the run knows and every order an event names: status lists, null when unreadable. */
export async function readHistories(api: SystemApi, records: readonly OrderRecord[], events: readonly ListedEvent[], concurrency = 16): Promise<Record<string, string[] | null>> {
  const ids = [...new Set([...records.map((r) => orderIdOf(r)).filter((x): x is string => !!x), ...events.map((e) => e.order_id)])];
  const out: Record<string, string[] | null> = {};
  let i = 0;
  const worker = async () => {
    while (i < ids.length) {
      const id = ids[i++]!;
      try {
        const o = await api.order(id);
        out[id] = o.status === "missing" ? [] : o.history.map((h) => h.status);
      } catch {
        out[id] = null;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, ids.length)) }, worker));
  return out;
}

/** The webhook figures for the report. */
export interface WebhookSummary {
  subscription: string;
  receiver: { fail_rate: number; slow_rate: number; slow_ms: [number, number]; url: string };
  relay_settings: Record<string, string>;
  events_listed: number;
  attempts: number;
  /** Attempts answered 2xx (deliveries, duplicates included), answered 5xx, and cut off without an answer. */
  answered_2xx: number;
  answered_5xx: number;
  no_answer: number;
  slow: number;
  events_delivered: number;
  /** The most attempts one event took, and the most 2xx answers one event got (duplicates delivered). */
  max_attempts_per_event: number;
  max_deliveries_per_event: number;
  events_delivered_more_than_once: number;
  signatures_failed: number;
  relay_kills: RelayKill[];
  relay_starts: number;
  receiver_downtime: Array<{ from_ms: number; to_ms: number | null }>;
  receiver_down_ms: number;
  drained: boolean;
  /** Events that changed before healing and had no 2xx yet when it came: the backlog the faults left. */
  backlog_at_heal: number;
  /** ms after healing until the last of that backlog got its first 2xx; null if some never did. */
  drain_ms: number | null;
  /** From a change to its event's first 2xx at the receiver, ms (wall clock). */
  delivery_lag_ms: { p50: number; p95: number; max: number } | null;
  drain_bound_ms: number;
  /** After the orders settled, how long the final wait for an empty backlog took; null: it never emptied. */
  final_wait_ms?: number | null;
  /** When the backlog never emptied: the oldest transaction on the PostgreSQL server while waiting (it holds the outbox back). */
  oldest_transaction?: string;
}

/**
 * The backlog the faults left and how long it took to go: the events that changed before healing
 * without a 2xx by then, and when the last of them got one. Plus, over every event, the time from
 * the change to its first 2xx. Events' `created_at` is wall clock; the receiver's times are the
 * run's, placed on the wall clock by the run's start.
 */
export function drainAfterHeal(
  w: WebhookObservation,
  oks: ReadonlyMap<string, readonly ReceivedAttempt[]>,
): Pick<WebhookSummary, "backlog_at_heal" | "drain_ms" | "delivery_lag_ms"> {
  const firstOk = (id: string) => {
    const l = oks.get(id) ?? [];
    return l.length ? Math.min(...l.map((a) => a.end_ms)) : null;
  };
  const lags: number[] = [];
  let backlog = 0;
  let last = 0;
  let missing = false;
  for (const e of w.events) {
    const ok = firstOk(e.id);
    const changed = e.created_at && w.started_wall_ms !== undefined ? Date.parse(e.created_at) - w.started_wall_ms : null;
    if (ok !== null && changed !== null) lags.push(Math.max(0, ok - changed));
    if (w.healed_ms === undefined || changed === null || changed >= w.healed_ms) continue;
    if (ok !== null && ok <= w.healed_ms) continue;
    backlog++;
    if (ok === null) missing = true;
    else last = Math.max(last, ok - w.healed_ms);
  }
  lags.sort((a, b) => a - b);
  const at = (q: number) => Math.round(lags[Math.min(lags.length - 1, Math.floor(q * lags.length))]!);
  return {
    backlog_at_heal: backlog,
    drain_ms: w.healed_ms === undefined || missing ? null : Math.round(last),
    delivery_lag_ms: lags.length ? { p50: at(0.5), p95: at(0.95), max: Math.round(lags[lags.length - 1]!) } : null,
  };
}

export function webhookSummary(
  w: WebhookObservation,
  extra: { subscription: string; url: string; relaySettings: Record<string, string>; kills: RelayKill[]; relayStarts: number; downtime: Array<{ from_ms: number; to_ms: number | null }> },
): WebhookSummary {
  const per = new Map<string, ReceivedAttempt[]>();
  for (const a of w.attempts) per.set(a.id, [...(per.get(a.id) ?? []), a]);
  const oks = new Map([...per].map(([id, l]) => [id, l.filter((a) => a.status >= 200 && a.status < 300)]));
  const okCounts = [...oks.values()].map((l) => l.length);
  return {
    subscription: extra.subscription,
    receiver: { fail_rate: RECEIVER_SETTINGS.failRate, slow_rate: RECEIVER_SETTINGS.slowRate, slow_ms: RECEIVER_SETTINGS.slowMs, url: extra.url },
    relay_settings: extra.relaySettings,
    events_listed: w.events.length,
    attempts: w.attempts.length,
    answered_2xx: w.attempts.filter((a) => a.status >= 200 && a.status < 300).length,
    answered_5xx: w.attempts.filter((a) => a.status >= 500).length,
    no_answer: w.attempts.filter((a) => a.status === 0).length,
    slow: w.attempts.filter((a) => a.slow_ms).length,
    events_delivered: okCounts.filter((n) => n > 0).length,
    max_attempts_per_event: Math.max(0, ...[...per.values()].map((l) => l.length)),
    max_deliveries_per_event: Math.max(0, ...okCounts),
    events_delivered_more_than_once: okCounts.filter((n) => n > 1).length,
    signatures_failed: w.attempts.filter((a) => a.body_sha256 !== "" && !a.signature_ok).length,
    relay_kills: extra.kills,
    relay_starts: extra.relayStarts,
    receiver_downtime: extra.downtime,
    receiver_down_ms: extra.downtime.reduce((s, d) => s + ((d.to_ms ?? d.from_ms) - d.from_ms), 0),
    drained: w.drained,
    ...drainAfterHeal(w, oks),
    drain_bound_ms: w.drain_bound_ms,
  };
}
