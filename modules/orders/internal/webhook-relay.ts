import { randomUUID } from "node:crypto";
import type { Database } from "../../../platform/db.ts";
import { systemClock, type Clock, type Random } from "../../../platform/clock.ts";
import * as repo from "./webhook.repository.ts";
import { eventView } from "./outbox.repository.ts";
import { webhookHeaders } from "./webhook.signing.ts";
import { checkDestination, dnsResolver, parseWebhookUrl, type Resolver } from "./webhook.url.ts";
import type { InventoryPort } from "../../inventory/index.ts";
import { StockEventImporter } from "./stock-import.ts";

/** Waits after each failed attempt (then given up): about a day from the first to the last. */
export const RETRY_SCHEDULE_MS = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 86_400_000];

/** Events turned into deliveries per round. */
const FAN_OUT_BATCH = 1_000;

export type DeliveryOutcome = "delivered" | "retry" | "failed" | "disabled" | "lease_lost";

export interface WebhookRelayOptions {
  database: Database;
  clock?: Clock;
  random?: Random;
  /** Sends one request; `fetch` in production. Redirects are not followed (`redirect: "manual"`). */
  send?: (url: string, init: RequestInit) => Promise<Response>;
  resolve?: Resolver;
  /** Refuse private destinations at every attempt (production unless WEBHOOK_ALLOW_PRIVATE). */
  refusePrivate?: boolean;
  timeoutMs?: number;
  /** Deliveries claimed per round. */
  batch?: number;
  /** Attempts in flight at once in `start()` mode (default 32), and per endpoint (default 4). */
  concurrency?: number;
  perEndpoint?: number;
  pollIntervalMs?: number;
  /** An endpoint failing without a success this long is disabled. Default three days. */
  disableAfterMs?: number;
  /** Consecutive failures that open an endpoint's breaker, and how long it stays open. */
  breakerThreshold?: number;
  breakerOpenMs?: number;
  retrySchedule?: readonly number[];
  /** Events, finished deliveries and attempts older than this are forgotten (hourly). Default 30 days. */
  retentionMs?: number;
  onError?: (err: unknown, context: string) => void;
  /**
   * Where inventory's own events (`stock.low`) are read from, to be imported into the outbox and
   * sent with the order events; without it only order events are sent.
   */
  inventory?: InventoryPort;
  /** How often stock events are imported (default: every poll, at most once a second). */
  stockImportEveryMs?: number;
}

/**
 * One endpoint's breaker: open after `threshold` consecutive failed attempts, for `openMs`; then
 * its deliveries are claimed again (a probe round), and one success closes it. Not cockatiel's
 * `ConsecutiveBreaker`: the relay never calls through a policy here, it leaves an open endpoint's
 * deliveries unclaimed in the database, which only needs "is it open now" by the injected clock.
 */
class EndpointBreaker {
  failures = 0;
  openUntil = -Infinity;
}

/**
 * The webhook relay (orders role): turns outbox events into deliveries, claims the due ones
 * (`FOR UPDATE SKIP LOCKED`, so replicas share them), POSTs each signed as Standard Webhooks
 * say, and records every attempt. A delivery is leased by pushing its next attempt past the
 * timeout; a relay killed mid-attempt leaves it to be sent again with the same event id. Runs
 * beside the order path and never in it: a request pays only for the outbox row its trigger writes.
 */
export class WebhookRelay {
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly send: (url: string, init: RequestInit) => Promise<Response>;
  private readonly timeoutMs: number;
  private readonly schedule: readonly number[];
  private readonly breakers = new Map<string, EndpointBreaker>();
  /** Attempts in flight, per endpoint. */
  private readonly inFlight = new Map<string, number>();
  private readonly listeners = new Set<(o: DeliveryOutcome) => void>();
  private running = false;
  private loop: Promise<void> | null = null;
  private stopper = new AbortController();
  private readonly importer: StockEventImporter | null;

  constructor(private readonly o: WebhookRelayOptions) {
    this.clock = o.clock ?? systemClock;
    this.random = o.random ?? Math.random;
    this.send = o.send ?? ((url, init) => fetch(url, init));
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.schedule = o.retrySchedule ?? RETRY_SCHEDULE_MS;
    if (this.timeoutMs <= 0) throw new RangeError("timeoutMs must be positive");
    this.importer = o.inventory
      ? new StockEventImporter({
          database: o.database,
          inventory: o.inventory,
          now: () => this.clock.now(),
          everyMs: o.stockImportEveryMs ?? Math.max(1_000, o.pollIntervalMs ?? 500),
          timeoutMs: this.timeoutMs,
          onError: o.onError,
        })
      : null;
  }

  /** `relay.onOutcome((o) => counter.labels(o).inc())`; returns an unsubscribe. */
  onOutcome(listener: (o: DeliveryOutcome) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Endpoints whose breaker is open now. */
  openEndpoints(): string[] {
    const now = this.clock.now();
    return [...this.breakers].filter(([, b]) => b.openUntil > now).map(([id]) => id);
  }

  /** One round: fan out new events, then claim what is due and send it all. Resolves to attempts made. */
  async tick(): Promise<number> {
    const { sent } = await this.launch(this.o.batch ?? 16, true);
    await Promise.all(sent);
    return sent.length;
  }

  /**
   * Fans out, claims up to `room` due deliveries and starts sending them; resolves once they
   * are claimed, with one promise per attempt. Endpoints whose breaker is open, or that already
   * have `perEndpoint` attempts in flight, are left out: a slow receiver holds its own slots only.
   */
  private async launch(room: number, importNow = false): Promise<{ sent: Array<Promise<void>>; backlog: boolean }> {
    // Inventory's events, in the background: an unreachable or hanging inventory never holds up
    // the order events. A single round (`tick`) waits for it, so what it imported goes out too.
    let moreStock = false;
    if (importNow) moreStock = (await this.importer?.maybeImport(true)) ?? false;
    else this.importer?.kick();
    const now = new Date(this.clock.now());
    // A full batch means more events wait: the loop comes back at once instead of polling.
    const backlog = (await repo.fanOut(this.o.database, now, FAN_OUT_BATCH)) === FAN_OUT_BATCH || moreStock;
    const leaseId = randomUUID();
    const busy = [...this.inFlight].filter(([, n]) => n >= (this.o.perEndpoint ?? 4)).map(([id]) => id);
    const claimed = await repo.claimDue(this.o.database, {
      now,
      limit: room,
      // Longer than one attempt can take, so nobody else takes it while it is being sent.
      leaseMs: this.timeoutMs * 3 + 5_000,
      leaseId,
      skipWebhooks: [...this.openEndpoints(), ...busy],
    });
    const sent = claimed.map((d) => {
      this.inFlight.set(d.webhook_id, (this.inFlight.get(d.webhook_id) ?? 0) + 1);
      return this.attempt(d, leaseId)
        // Whatever went wrong, the lease runs out and the delivery is taken again.
        .catch((err) => this.o.onError?.(err, "webhook relay: attempt"))
        .finally(() => {
        const n = (this.inFlight.get(d.webhook_id) ?? 1) - 1;
        if (n > 0) this.inFlight.set(d.webhook_id, n);
        else this.inFlight.delete(d.webhook_id);
      });
    });
    return { sent, backlog };
  }

  /**
   * Sends continuously: at most `concurrency` attempts in flight, claiming more as slots free,
   * and polls every `pollIntervalMs` when nothing is due or every slot is taken.
   */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopper = new AbortController();
    const max = this.o.concurrency ?? 32;
    const pending = new Set<Promise<void>>();
    let failures = 0;
    let lastPurge = -Infinity;
    this.loop = (async () => {
      while (this.running) {
        if (this.clock.now() - lastPurge >= 3_600_000) {
          lastPurge = this.clock.now();
          await this.purge().catch((err) => this.o.onError?.(err, "webhook relay: purge"));
        }
        let started = 0;
        if (pending.size < max) {
          try {
            const { sent, backlog } = await this.launch(Math.min(this.o.batch ?? 16, max - pending.size));
            started = sent.length + (backlog ? 1 : 0);
            for (const p of sent) {
              pending.add(p);
              void p.finally(() => pending.delete(p));
            }
            failures = 0;
          } catch (err) {
            // The database away: say so, and back off up to 30 s rather than write a line per poll.
            if (failures++ === 0 || failures % 10 === 0) this.o.onError?.(err, "webhook relay");
          }
        }
        const poll = this.o.pollIntervalMs ?? 500;
        const wait = failures > 0 ? Math.min(30_000, poll * 2 ** Math.min(failures, 10)) : poll;
        if (started === 0 && this.running) {
          // A slot freed is a claim to make at once: with every slot of a busy endpoint taken,
          // sleeping the whole poll capped one endpoint at `perEndpoint` attempts per poll.
          const woken = new AbortController();
          const sleep = this.clock.sleep(wait, AbortSignal.any([this.stopper.signal, woken.signal])).catch(() => {});
          await (failures === 0 && pending.size > 0 ? Promise.race([sleep, ...pending]) : sleep);
          woken.abort();
        }
      }
      await Promise.all(pending);
    })();
  }

  /** Forgets events, finished deliveries and attempts past the retention; resolves to rows removed. */
  async purge(): Promise<number> {
    const before = new Date(this.clock.now() - (this.o.retentionMs ?? 30 * 86_400_000));
    let total = 0;
    for (let n = -1; n !== 0 && total < 100_000; total += n) n = await repo.purgeBefore(this.o.database, before);
    return total;
  }

  /** Stops claiming, and resolves once the attempts in flight are recorded. */
  async stop(): Promise<void> {
    this.running = false;
    this.stopper.abort();
    await this.loop;
    await this.importer?.idle();
  }

  private async attempt(d: repo.ClaimedDelivery, leaseId: string): Promise<void> {
    const started = this.clock.now();
    const event = eventView(d.event);
    const body = JSON.stringify(event);
    const secrets = [d.secret];
    if (d.previous_secret && d.previous_expires_at && new Date(d.previous_expires_at).getTime() > started) secrets.push(d.previous_secret);
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      const url = parseWebhookUrl(d.url);
      if (this.o.refusePrivate) await checkDestination(url, this.o.resolve ?? dnsResolver);
      const res = await this.send(d.url, {
        method: "POST",
        headers: { ...webhookHeaders(secrets, event.id, Math.floor(started / 1000), body), "user-agent": "Valerix-Webhooks/1" },
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      statusCode = res.status;
      await res.body?.cancel().catch(() => {});
      if (res.status < 200 || res.status >= 300) error = res.status >= 300 && res.status < 400 ? `redirect (${res.status}) not followed` : `HTTP ${res.status}`;
    } catch (err) {
      error = err instanceof Error ? (err.name === "TimeoutError" ? `timeout after ${this.timeoutMs} ms` : err.message) : String(err);
    }
    const at = this.clock.now();
    const ok = error === null;
    const breaker = this.breakers.get(d.webhook_id) ?? new EndpointBreaker();
    this.breakers.set(d.webhook_id, breaker);
    if (ok) breaker.failures = 0;
    else if (++breaker.failures >= (this.o.breakerThreshold ?? 5)) breaker.openUntil = at + (this.o.breakerOpenMs ?? 30_000);
    const next: Parameters<typeof repo.finishAttempt>[2] = ok
      ? { kind: "delivered" }
      : d.attempts > this.schedule.length
        ? { kind: "failed" }
        : { kind: "retry", at: new Date(at + this.backoff(d.attempts)) };
    try {
      const r = await repo.finishAttempt(
        this.o.database,
        { deliveryId: d.id, webhookId: d.webhook_id, eventId: event.id, leaseId, attempt: d.attempts, at: new Date(at), statusCode, durationMs: Math.round(at - started), error },
        next,
        new Date(at - (this.o.disableAfterMs ?? 3 * 86_400_000)),
      );
      this.emit(r.recorded ? next.kind : "lease_lost");
      if (r.disabled) this.emit("disabled");
    } catch (err) {
      // The lease runs out and the delivery is taken again: sent twice at worst, never lost.
      this.o.onError?.(err, "webhook relay: recording an attempt");
    }
  }

  /** The wait after attempt `n` (1-based): the schedule's step, ±20 % jitter. */
  private backoff(n: number): number {
    const base = this.schedule[Math.min(n, this.schedule.length) - 1]!;
    return Math.round(base * (0.8 + 0.4 * this.random()));
  }

  private emit(o: DeliveryOutcome): void {
    for (const l of this.listeners) l(o);
  }
}
