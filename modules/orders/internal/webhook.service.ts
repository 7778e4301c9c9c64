import { createHash, randomUUID } from "node:crypto";
import type { Database } from "../../../platform/db.ts";
import { InvalidRequestError, NotFoundError } from "../../../platform/errors.ts";
import { systemClock, type Clock } from "../../../platform/clock.ts";
import * as repo from "./webhook.repository.ts";
import * as outbox from "./outbox.repository.ts";
import { newSecret } from "./webhook.signing.ts";
import { checkDestination, dnsResolver, parseWebhookUrl, type Resolver } from "./webhook.url.ts";

export interface WebhookSettings {
  /** Refuse private destinations (production unless WEBHOOK_ALLOW_PRIVATE=true). */
  refusePrivate: boolean;
  /** How long the previous secret still signs after a rotation. */
  rotationWindowMs: number;
  keyTtlMs: number;
  resolve?: Resolver;
  clock?: Clock;
}

export interface WebhookView {
  id: string;
  url: string;
  events: string[];
  description: string | null;
  created_at: string;
  /** Since when every attempt failed (null while healthy). */
  failing_since: string | null;
  disabled_at: string | null;
  disabled_reason: string | null;
  /** Until when the previous secret still signs, after a rotation. */
  previous_secret_expires_at: string | null;
  /** Deliveries to this endpoint not yet sent (due, waiting to be retried, or held while it is disabled). */
  pending_deliveries: number;
  /** When the oldest pending delivery was created (null: none pending). */
  oldest_pending_at: string | null;
}

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

export function webhookView(w: repo.WebhookRow, pending?: repo.PendingDeliveries): WebhookView {
  return {
    id: w.id,
    url: w.url,
    events: w.events,
    description: w.description,
    created_at: iso(w.created_at)!,
    failing_since: iso(w.failing_since),
    disabled_at: iso(w.disabled_at),
    disabled_reason: w.disabled_reason,
    previous_secret_expires_at: iso(w.previous_expires_at),
    pending_deliveries: pending?.count ?? 0,
    oldest_pending_at: iso(pending?.oldest ?? null),
  };
}

const fingerprint = (operation: string, request: unknown) => createHash("sha256").update(`${operation}\n${JSON.stringify(request)}`).digest("base64url");

/** Subscriptions and the outbox as the admin and catch-up APIs see them; no HTTP types. */
export class WebhookService {
  private readonly clock: Clock;
  constructor(
    private readonly database: Database,
    private readonly settings: WebhookSettings,
  ) {
    this.clock = settings.clock ?? systemClock;
  }

  /** `create("k1", { url: "https://shop.example/hooks", events: ["*"] })` → 201 with the secret, shown this once. */
  async create(key: string, body: { url: string; events: string[]; description?: string | undefined }): Promise<repo.StoredAnswer> {
    const url = parseWebhookUrl(body.url);
    const events = [...new Set(body.events)];
    for (const e of events) if (e !== "*" && !(outbox.EVENT_TYPES as readonly string[]).includes(e)) throw new InvalidRequestError(`Unknown event type "${e}".`, { field: "events" });
    const request = { url: url.href, events, description: body.description ?? null };
    // DNS first, outside the transaction; a refusal stores nothing, not even the key.
    if (this.settings.refusePrivate) await checkDestination(url, this.settings.resolve ?? dnsResolver);
    return repo.keyedWrite(this.database, { key, fingerprint: fingerprint("create", request), ttlMs: this.settings.keyTtlMs }, async (trx) => {
      const w = await repo.insertWebhook(trx, { id: `wh_${randomUUID().replaceAll("-", "")}`, url: url.href, events, description: request.description, secret: newSecret(), at: new Date(this.clock.now()) });
      return { status: 201, body: JSON.stringify({ ...webhookView(w), secret: w.secret }) };
    });
  }

  async list(): Promise<WebhookView[]> {
    const [rows, pending] = await Promise.all([repo.listWebhooks(this.database), repo.pendingDeliveries(this.database.db)]);
    return rows.map((w) => webhookView(w, pending.get(w.id)));
  }

  async get(id: string): Promise<WebhookView> {
    const w = await repo.findWebhook(this.database.db, id);
    if (!w) throw new NotFoundError(`No webhook with id "${id}"`, { id });
    return webhookView(w, (await repo.pendingDeliveries(this.database.db, id)).get(id));
  }

  remove(id: string, key: string): Promise<repo.StoredAnswer> {
    return repo.keyedWrite(this.database, { key, fingerprint: fingerprint("delete", { id }), ttlMs: this.settings.keyTtlMs }, async (trx) => {
      if (!(await repo.deleteWebhook(trx, id))) throw new NotFoundError(`No webhook with id "${id}"`, { id });
      return { status: 200, body: JSON.stringify({ id, deleted: true }) };
    });
  }

  rotate(id: string, key: string): Promise<repo.StoredAnswer> {
    return repo.keyedWrite(this.database, { key, fingerprint: fingerprint("rotate", { id }), ttlMs: this.settings.keyTtlMs }, async (trx) => {
      const w = await repo.rotateSecret(trx, id, newSecret(), new Date(this.clock.now() + this.settings.rotationWindowMs));
      if (!w) throw new NotFoundError(`No webhook with id "${id}"`, { id });
      return { status: 200, body: JSON.stringify({ ...webhookView(w, (await repo.pendingDeliveries(trx, id)).get(id)), secret: w.secret }) };
    });
  }

  /**
   * Sends to a disabled (or failing) endpoint again: clears `disabled_at`, `disabled_reason` and
   * `failing_since`; its pending deliveries go out as they fall due. `enable("wh_…", "k3")` → 200
   * with the endpoint; the same key again is replayed. Events written while it was disabled were
   * not queued for it (`GET /api/events` has them).
   */
  enable(id: string, key: string): Promise<repo.StoredAnswer> {
    return repo.keyedWrite(this.database, { key, fingerprint: fingerprint("enable", { id }), ttlMs: this.settings.keyTtlMs }, async (trx) => {
      const w = await repo.enableWebhook(trx, id);
      if (!w) throw new NotFoundError(`No webhook with id "${id}"`, { id });
      return { status: 200, body: JSON.stringify(webhookView(w, (await repo.pendingDeliveries(trx, id)).get(id))) };
    });
  }

  async deliveries(id: string, limit: number) {
    await this.get(id);
    const rows = await repo.listAttempts(this.database, id, limit);
    return { webhook_id: id, attempts: rows.map((r) => ({ ...r, at: iso(r.at)! })) };
  }

  async events(q: { after?: string | undefined; types?: string | undefined; limit?: number | undefined }) {
    const limit = q.limit ?? 100;
    const types = q.types ? q.types.split(",").map((s) => s.trim()).filter(Boolean) : null;
    const rows = await outbox.listEvents(this.database, { after: q.after ?? null, types, limit });
    if (rows === null) throw new NotFoundError(`No event with id "${q.after}"`, { after: q.after });
    const events = rows.map(outbox.eventView);
    return { events, next_after: events.at(-1)?.id ?? q.after ?? null };
  }

  redeliver(eventId: string, key: string): Promise<repo.StoredAnswer> {
    return repo.keyedWrite(this.database, { key, fingerprint: fingerprint("redeliver", { eventId }), ttlMs: this.settings.keyTtlMs }, async (trx) => {
      const n = await repo.redeliver(trx, eventId, new Date(this.clock.now()));
      if (n === null) throw new NotFoundError(`No event with id "${eventId}"`, { id: eventId });
      return { status: 202, body: JSON.stringify({ event_id: eventId, deliveries: n }) };
    });
  }
}
