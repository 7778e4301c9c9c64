import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { mixSeed, mulberry32 } from "../platform/prng.ts";
import type { ReceivedAttempt } from "./types.ts";

export type { ReceivedAttempt };

/**
 * The chaos run's webhook receiver: a Bun.serve on loopback in the runner's own process that
 * plays a bad endpoint (answers 5xx at random, sometimes slowly, and goes away for a stretch)
 * and writes down every attempt it sees, so the invariant checker can judge the relay from the
 * receiving end: ids, bodies, signatures, order of arrival and overlap in time.
 *
 * Signatures are checked twice: with the reference `standardwebhooks` package, and with a
 * plain HMAC of our own, so a bug shared by the sender and one verifier still shows.
 */

export interface ReceiverOptions {
  /** Seeds the answers and the slowness. */
  seed: number;
  /** Share of attempts answered 5xx. */
  failRate: number;
  /** Share of attempts held back `slowMs` (a range) before answering; below the relay's timeout. */
  slowRate: number;
  slowMs: [number, number];
  /** ms since the run's start. */
  elapsed: () => number;
}

/** Our own Standard Webhooks check: any `v1,` signature in the header matches HMAC-SHA256 of `id.timestamp.body`. */
export function signatureMatches(secret: string, id: string, timestamp: string, body: string, header: string): boolean {
  const key = Buffer.from(secret.startsWith("whsec_") ? secret.slice(6) : secret, "base64");
  const want = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest();
  return header.split(" ").some((s) => {
    const [v, sig] = s.split(",", 2);
    if (v !== "v1" || !sig) return false;
    const got = Buffer.from(sig, "base64");
    return got.length === want.length && timingSafeEqual(got, want);
  });
}

export class WebhookReceiver {
  readonly attempts: ReceivedAttempt[] = [];
  /** Stretches the receiver was down, ms since the run's start. */
  readonly downtimes: Array<{ from_ms: number; to_ms: number | null }> = [];
  private server: ReturnType<typeof Bun.serve> | null = null;
  private port = 0;
  private secret: string | null = null;
  private verifier: Webhook | null = null;
  private readonly random: () => number;
  /** Requests being handled, to close them as "no answer" when the receiver goes down. */
  private readonly open = new Set<{ done: boolean; rec: ReceivedAttempt }>();

  constructor(private readonly o: ReceiverOptions) {
    this.random = mulberry32(mixSeed(o.seed, 0x77_68));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks/valerix`;
  }

  get up(): boolean {
    return this.server !== null;
  }

  /** The subscription's secret, once the subscription answered with it. */
  setSecret(secret: string): void {
    this.secret = secret;
    this.verifier = new Webhook(secret);
  }

  /** Listens (again) on its port; the first call picks one. */
  start(): void {
    if (this.server) return;
    this.server = Bun.serve({ hostname: "127.0.0.1", port: this.port, fetch: (req) => this.handle(req) });
    this.port = this.server.port!;
    const last = this.downtimes[this.downtimes.length - 1];
    if (last && last.to_ms === null) last.to_ms = Math.round(this.o.elapsed());
  }

  /** Goes away: the port is closed (connection refused) and requests in flight are cut off. */
  stop(): void {
    if (!this.server) return;
    const at = this.o.elapsed();
    for (const h of this.open) {
      if (h.done) continue;
      h.done = true;
      h.rec.end_ms = at;
      h.rec.status = 0;
    }
    this.server.stop(true);
    this.server = null;
    this.downtimes.push({ from_ms: Math.round(at), to_ms: null });
  }

  private async handle(req: Request): Promise<Response> {
    const start = this.o.elapsed();
    const id = req.headers.get("webhook-id") ?? "";
    const timestamp = req.headers.get("webhook-timestamp") ?? "";
    const signature = req.headers.get("webhook-signature") ?? "";
    // The dice are thrown on arrival, so one attempt's fate does not depend on how long its body took.
    const fail = this.random() < this.o.failRate;
    const slow = this.random() < this.o.slowRate ? Math.round(this.o.slowMs[0] + this.random() * (this.o.slowMs[1] - this.o.slowMs[0])) : 0;
    const rec: ReceivedAttempt = { id, timestamp, start_ms: start, end_ms: start, body_sha256: "", status: 0, signature_ok: false, order_id: null, seq: null, type: null, order_status: null };
    const h = { done: false, rec };
    this.open.add(h);
    this.attempts.push(rec);
    const hangUp = () => {
      if (h.done) return;
      h.done = true;
      rec.end_ms = this.o.elapsed();
      rec.status = 0;
    };
    req.signal.addEventListener("abort", hangUp, { once: true });
    try {
      const body = await req.text();
      rec.body_sha256 = createHash("sha256").update(body).digest("hex");
      let libOk = false;
      try {
        this.verifier?.verify(body, { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signature });
        libOk = !!this.verifier;
      } catch {
        libOk = false;
      }
      rec.signature_ok = libOk && !!this.secret && signatureMatches(this.secret, id, timestamp, body, signature);
      try {
        const ev = JSON.parse(body) as { type?: unknown; data?: { order_id?: unknown; seq?: unknown; status?: unknown } };
        rec.type = typeof ev.type === "string" ? ev.type : null;
        rec.order_id = typeof ev.data?.order_id === "string" ? ev.data.order_id : null;
        rec.seq = typeof ev.data?.seq === "number" ? ev.data.seq : null;
        rec.order_status = typeof ev.data?.status === "string" ? ev.data.status : null;
      } catch {
        // an unparsable body names no order; the checker reports it
      }
      if (slow) {
        rec.slow_ms = slow;
        await Bun.sleep(slow);
      }
      const status = fail ? 503 : 204;
      if (h.done) return new Response(null, { status });
      h.done = true;
      rec.end_ms = this.o.elapsed();
      rec.status = status;
      return new Response(null, { status });
    } catch {
      hangUp();
      return new Response(null, { status: 500 });
    } finally {
      this.open.delete(h);
      req.signal.removeEventListener("abort", hangUp);
    }
  }
}
