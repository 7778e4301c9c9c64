import type { Breach, InvariantVerdict } from "./invariants.ts";
import type { ReceivedAttempt, WebhookObservation } from "./types.ts";

/**
 * The webhook invariants (`--webhooks`), judged from the receiving end after healing and
 * draining: what the receiver saw, against the events the orders role lists and the orders'
 * histories. Pure, like the rest of the checker; each breach kind is unit-tested on made-up data.
 * Without webhook data every one is `skipped`, so runs without `--webhooks` report as before.
 */

export type WebhookInvariantName =
  | "webhooks_every_change_delivered"
  | "webhooks_same_id_same_body"
  | "webhooks_per_order_sequence"
  | "webhooks_nothing_for_rolled_back"
  | "webhooks_no_concurrent_attempts";

export const WEBHOOK_INVARIANTS: readonly WebhookInvariantName[] = [
  "webhooks_every_change_delivered",
  "webhooks_same_id_same_body",
  "webhooks_per_order_sequence",
  "webhooks_nothing_for_rolled_back",
  "webhooks_no_concurrent_attempts",
];

export const WEBHOOK_INVARIANT_TITLES: Record<WebhookInvariantName, string> = {
  webhooks_every_change_delivered:
    "Webhooks: every listed order event was answered 2xx at least once, and every order's events are its history's changes (all but cancelling), one each, seq 1..n in order",
  webhooks_same_id_same_body: "Webhooks: every attempt of one event id carried the same body bytes, and every signature verified (standardwebhooks and a plain HMAC)",
  webhooks_per_order_sequence: "Webhooks: per order, no attempt of seq n+1 reached the receiver before seq n's first 2xx",
  webhooks_nothing_for_rolled_back: "Webhooks: every event received is a listed event and names a state its order's history really has (nothing for a change that rolled back)",
  webhooks_no_concurrent_attempts: "Webhooks: no two attempts of one event id overlapped in time at the receiver (two relays never send one event at once)",
};

/** The history status each event type stands for; `cancelling` emits nothing. */
export const EVENT_STATUS: Record<string, string> = {
  "order.created": "pending",
  "order.queued": "queued",
  "order.confirmed": "confirmed",
  "order.rejected": "rejected",
  "order.failed": "failed",
  "order.cancelled": "cancelled",
  "order.reserved": "reserved",
  "order.expired": "expired",
};

const ok = (a: Pick<ReceivedAttempt, "status">) => a.status >= 200 && a.status < 300;

/**
 * The order and seq an event id names (`evt_` + the order id's 32 hex digits + the seq in 8), so an
 * attempt cut off before its body arrived still counts for its order: `eventKey("evt_0b6f…0000002")` → `{ orderId: "0b6f…", seq: 2 }`.
 */
export function eventKey(id: string): { orderId: string; seq: number } | null {
  if (!/^evt_[0-9a-f]{40}$/.test(id)) return null;
  const h = id.slice(4);
  return { orderId: `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`, seq: parseInt(h.slice(32), 16) };
}

function collector(name: WebhookInvariantName, max: number) {
  const breaches: Breach[] = [];
  let count = 0;
  let checked = 0;
  return {
    check: (n = 1) => void (checked += n),
    add(subject: string, detail: string) {
      count++;
      if (breaches.length < max) breaches.push({ subject, detail });
    },
    verdict(note?: string): InvariantVerdict {
      return { name: name as InvariantVerdict["name"], title: WEBHOOK_INVARIANT_TITLES[name], status: count === 0 ? "pass" : "fail", checked, breach_count: count, breaches, ...(note ? { note } : {}) };
    },
  };
}

/**
 * `checkWebhooks(null)` → five `skipped` verdicts; `checkWebhooks(observation)` → five judged ones.
 */
export function checkWebhooks(w: WebhookObservation | null | undefined, max = 100): InvariantVerdict[] {
  if (!w) {
    return WEBHOOK_INVARIANTS.map((name) => ({
      name: name as InvariantVerdict["name"],
      title: WEBHOOK_INVARIANT_TITLES[name],
      status: "skipped",
      checked: 0,
      breach_count: 0,
      breaches: [],
      note: "no webhook receiver in this run (--webhooks)",
    }));
  }
  const verdicts: InvariantVerdict[] = [];
  const byId = new Map<string, ReceivedAttempt[]>();
  for (const a of w.attempts) {
    const list = byId.get(a.id);
    if (list) list.push(a);
    else byId.set(a.id, [a]);
  }
  const listed = new Map(w.events.map((e) => [e.id, e]));
  /** Listed events that name no order (`stock.low`). */
  const others = new Map((w.other_events ?? []).map((e) => [e.id, e]));
  /** The history's changes that emit an event, in order. */
  const changes = (id: string) => (w.histories[id] ?? null)?.filter((s) => s !== "cancelling") ?? null;

  // webhooks_every_change_delivered
  {
    const v = collector("webhooks_every_change_delivered", max);
    for (const e of w.events) {
      v.check();
      const got = byId.get(e.id) ?? [];
      if (!got.some(ok)) v.add(e.id, `${e.type} of order ${e.order_id} (seq ${e.seq}) never answered 2xx (${got.length} attempts seen${got.length ? `: ${got.map((a) => a.status).join(" ")}` : ""})`);
    }
    for (const e of others.values()) {
      v.check();
      const got = byId.get(e.id) ?? [];
      if (!got.some(ok)) v.add(e.id, `${e.type} never answered 2xx (${got.length} attempts seen)`);
    }
    const perOrder = new Map<string, typeof w.events>();
    for (const e of w.events) {
      const list = perOrder.get(e.order_id);
      if (list) list.push(e);
      else perOrder.set(e.order_id, [e]);
    }
    for (const orderId of Object.keys(w.histories)) {
      v.check();
      const want = changes(orderId);
      if (!want) {
        v.add(orderId, "its history could not be read");
        continue;
      }
      const evs = [...(perOrder.get(orderId) ?? [])].sort((a, b) => a.seq - b.seq);
      const seqs = evs.map((e) => e.seq);
      if (seqs.some((s, i) => s !== i + 1)) v.add(orderId, `event seqs ${seqs.join(", ")}, not 1..${evs.length}`);
      const got = evs.map((e) => EVENT_STATUS[e.type] ?? e.type);
      if (got.join(" → ") !== want.join(" → ")) v.add(orderId, `history ${want.join(" → ") || "(empty)"}; events ${got.join(" → ") || "(none)"}`);
    }
    for (const orderId of perOrder.keys()) if (!(orderId in w.histories)) v.add(orderId, "events for an order whose history was never read");
    verdicts.push(v.verdict(w.drained ? undefined : `the relay's backlog had not drained ${Math.round(w.drain_bound_ms / 1000)} s after healing`));
  }

  // webhooks_same_id_same_body
  {
    const v = collector("webhooks_same_id_same_body", max);
    for (const [id, list] of byId) {
      v.check();
      const whole = list.filter((a) => a.body_sha256 !== "");
      const bodies = new Set(whole.map((a) => a.body_sha256));
      if (bodies.size > 1) v.add(id, `${bodies.size} different bodies over ${whole.length} attempts`);
      const bad = whole.filter((a) => !a.signature_ok).length;
      if (bad) v.add(id, `${bad} of ${whole.length} attempts with a signature that did not verify`);
      if (!id) v.add("(no webhook-id)", `${list.length} attempts without a webhook-id header`);
    }
    verdicts.push(v.verdict());
  }

  // webhooks_per_order_sequence
  {
    const v = collector("webhooks_per_order_sequence", max);
    const perOrder = new Map<string, Map<number, ReceivedAttempt[]>>();
    for (const a of w.attempts) {
      if (others.has(a.id)) continue;
      const k = a.order_id !== null && a.seq !== null ? { orderId: a.order_id, seq: a.seq } : eventKey(a.id);
      if (!k) continue;
      let m = perOrder.get(k.orderId);
      if (!m) perOrder.set(k.orderId, (m = new Map()));
      const list = m.get(k.seq);
      if (list) list.push(a);
      else m.set(k.seq, [a]);
    }
    for (const [orderId, bySeq] of perOrder) {
      v.check();
      /** When seq n was first answered 2xx, as the receiver answered. */
      const firstOk = (n: number) => {
        const t = (bySeq.get(n) ?? []).filter(ok).map((a) => a.end_ms);
        return t.length ? Math.min(...t) : null;
      };
      for (const [seq, list] of [...bySeq].sort(([a], [b]) => a - b)) {
        if (seq <= 1) continue;
        const before = firstOk(seq - 1);
        const first = Math.min(...list.map((a) => a.start_ms));
        if (before === null) v.add(orderId, `seq ${seq} arrived (at ${Math.round(first)} ms) but seq ${seq - 1} was never answered 2xx`);
        else if (first < before) v.add(orderId, `seq ${seq} arrived at ${Math.round(first)} ms, before seq ${seq - 1}'s first 2xx at ${Math.round(before)} ms`);
      }
    }
    verdicts.push(v.verdict());
  }

  // webhooks_nothing_for_rolled_back
  {
    const v = collector("webhooks_nothing_for_rolled_back", max);
    for (const [id, list] of byId) {
      v.check();
      const e = listed.get(id);
      const other = others.get(id);
      if (other) {
        const wrong = list.find((a) => a.body_sha256 !== "" && a.type !== other.type);
        if (wrong) v.add(id, `body names ${wrong.type}; the listed event is ${other.type}`);
        continue;
      }
      if (!e) {
        v.add(id, `received ${list.length} times, yet no such event is listed (a change that never committed?)`);
        continue;
      }
      for (const a of list) {
        if (a.body_sha256 === "") continue;
        if (a.order_id !== e.order_id || a.seq !== e.seq || a.type !== e.type || a.order_status !== e.status) {
          v.add(id, `body names ${a.type} ${a.order_status} of ${a.order_id} seq ${a.seq}; the listed event is ${e.type} ${e.status} of ${e.order_id} seq ${e.seq}`);
          break;
        }
      }
      const want = changes(e.order_id);
      const had = want?.[e.seq - 1];
      if (want && had !== EVENT_STATUS[e.type]) v.add(id, `${e.type} as change ${e.seq}, yet the order's change ${e.seq} is ${had ?? "absent"} (${want.join(" → ")})`);
      if (want && e.status !== EVENT_STATUS[e.type]) v.add(id, `${e.type} with order status ${e.status}`);
    }
    verdicts.push(v.verdict());
  }

  // webhooks_no_concurrent_attempts
  {
    const v = collector("webhooks_no_concurrent_attempts", max);
    for (const [id, list] of byId) {
      v.check();
      const sorted = [...list].sort((a, b) => a.start_ms - b.start_ms);
      let busyUntil = -Infinity;
      for (const a of sorted) {
        if (a.start_ms < busyUntil) {
          v.add(id, `an attempt arrived at ${Math.round(a.start_ms)} ms while another was open until ${Math.round(busyUntil)} ms`);
          break;
        }
        busyUntil = Math.max(busyUntil, a.end_ms);
      }
    }
    verdicts.push(v.verdict());
  }
  return verdicts;
}
