import { randomUUID } from "node:crypto";
import type { Database } from "../../../platform/db.ts";
import { InvalidRequestError, NotFoundError } from "../../../platform/errors.ts";
import { systemClock, type Clock } from "../../../platform/clock.ts";
import type { KeyValueStore } from "../../../platform/kv/kv.port.ts";
import { InventoryUnavailableError, linesProblem, type DeductResult, type InventoryPort, type OrderLine } from "../../inventory/index.ts";
import * as repo from "./order.repository.ts";
import type { OrderView } from "./order.model.ts";
import { cancelFingerprint, fingerprint, IdempotencyKeyInUseError, IdempotencyKeyReusedError, lineFields, messageFor, responseBodyFor, statusCodeFor, toView, type OrderResponse } from "./order.reply.ts";
import { CANCELLABLE_STATUSES, type OrderStatus } from "./order.tables.ts";
import { problemFor } from "../../../platform/problems.ts";
import { groupCommitLimits, type GroupCommitSettings } from "../../../platform/group-commit.ts";
import { noteOrderId } from "../../../platform/log-context.ts";
import { DatabaseUnavailableError } from "../../../platform/db-errors.ts";
import { AbandonedKeys } from "./abandoned-keys.ts";

/**
 * What the orders module needs from the resilience layer: run a call under timeout and breaker,
 * and say whether the breaker would refuse a call right now (checked before any write).
 */
export interface CallPolicy {
  execute<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T>;
  isOpen(): boolean;
}

/** No timeout, no breaker: for tests that exercise the order flow alone. */
export const directPolicy: CallPolicy = {
  execute: (fn) => fn(new AbortController().signal),
  isOpen: () => false,
};



export interface OrderOutcomeEvent {
  outcome: "confirmed" | "rejected" | "queued" | "replayed" | "conflict";
  status: number;
  durationMs: number;
  cacheHit?: boolean;
}

export interface OrderServiceDeps {
  database: Database;
  inventory: InventoryPort;
  kv: KeyValueStore;
  policy?: CallPolicy;
  /** Called with every order that must be retried; a failure here is survivable (the sweeper). */
  enqueue?: (orderId: string, requestId: string | null) => Promise<void>;
  idempotencyTtlS: number;
  clock?: Clock;
  /**
   * A key still in flight after this long belongs to a request that died; answer from the order.
   * A live request holds its key for one inventory call and a few statements, so the server sets
   * it to the inventory timeout plus a margin. A key whose request failed here on the database is
   * answered from the order at once.
   */
  inFlightLeaseMs?: number;
  onError?: (err: unknown, context: string) => void;
  /** Group commit on the order path (default: `groupCommitLimits` for the database). */
  groupCommit?: GroupCommitSettings;
}

const CACHE_PREFIX = "idem:";

/** How a cancel request ended: done, left to the retry worker, refused, or replayed from its key. */
export type CancelOutcome = "cancelled" | "cancelling" | "not_cancellable" | "replayed";

/** What an order asks for: lines, or the seed's one item (one line). */
export type OrderInput = { lines: readonly OrderLine[] } | { item_id: string; quantity: number };

export class OrderService {
  private readonly clock: Clock;
  private readonly policy: CallPolicy;
  private readonly leaseMs: number;
  private readonly listeners = new Set<(e: OrderOutcomeEvent) => void>();
  private readonly lookupListeners = new Set<() => void>();
  private readonly cancelListeners = new Set<(outcome: CancelOutcome) => void>();
  private readonly writer: repo.OrderWriter;
  private readonly abandoned: AbandonedKeys;

  constructor(private readonly deps: OrderServiceDeps) {
    this.writer = new repo.OrderWriter(deps.database, deps.groupCommit ?? groupCommitLimits(deps.database.kind));
    this.clock = deps.clock ?? systemClock;
    this.policy = deps.policy ?? directPolicy;
    this.leaseMs = deps.inFlightLeaseMs ?? 30_000;
    this.abandoned = new AbandonedKeys(this.leaseMs);
  }

  onOutcome(listener: (e: OrderOutcomeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Called each time an idempotency key turned out to exist already and was looked up (cache,
   * then database): the denominator of the cache's hit ratio.
   */
  onKeyLookup(listener: () => void): () => void {
    this.lookupListeners.add(listener);
    return () => this.lookupListeners.delete(listener);
  }

  private emit(e: OrderOutcomeEvent) {
    for (const l of this.listeners) l(e);
  }

  /**
   * Creates an order under an idempotency key. Exactly one order exists per live key, however
   * many duplicates race; a finished request is replayed byte for byte.
   */
  async create(key: string, input: OrderInput, requestId: string | null): Promise<OrderResponse> {
    const started = this.clock.now();
    const at = new Date(started);
    const lines = "lines" in input ? input.lines.map((l) => ({ item_id: l.item_id, quantity: l.quantity })) : [{ item_id: input.item_id, quantity: input.quantity }];
    const problem = linesProblem(lines);
    if (problem) {
      throw new InvalidRequestError(problem.detail, problem.item_id ? { item_id: problem.item_id } : {}, problem.item_id ? "duplicate_line_item" : "invalid_request");
    }
    const fp = fingerprint(lines);
    const order: repo.NewOrder = {
      key,
      fingerprint: fp,
      orderId: randomUUID(),
      lines,
      at,
      ttlS: this.deps.idempotencyTtlS,
      requestId,
    };
    const view: OrderView = {
      order_id: order.orderId,
      ...lineFields(lines),
      status: "pending",
      reason: null,
      message: messageFor({ status: "pending", reason: null, lines }),
      attempts: 0,
      created_at: at.toISOString(),
      updated_at: at.toISOString(),
    };

    try {
      return await this.place(order, view, requestId, started);
    } catch (err) {
      // The database went away mid-request: the client gets a 503 and will retry this key. No
      // request here holds it any more, whatever the claim did (it may have committed unseen).
      if (err instanceof DatabaseUnavailableError) this.abandoned.add(key, order.orderId, this.clock.now());
      throw err;
    }
  }

  private async place(order: repo.NewOrder, view: OrderView, requestId: string | null, started: number): Promise<OrderResponse> {
    const { key, fingerprint: fp } = order;
    // Breaker open: no point calling inventory. Record the order as queued, with its 202, in one statement.
    if (this.policy.isOpen()) {
      const queued = { ...view, status: "queued" as const, reason: "inventory_unavailable" };
      const body = responseBodyFor(queued);
      if (!(await this.writer.claimQueued(order, body, "inventory_unavailable"))) return this.existing(key, fp, started);
      noteOrderId(order.orderId);
      // Off the latency path: the order is durably queued in PostgreSQL, and the sweeper enqueues
      // any queued order whose message went missing.
      void this.enqueue(order.orderId, requestId);
      return this.finish({ status: 202, body, replayed: false, orderId: order.orderId }, "queued", started);
    }

    if (!(await this.writer.claim(order))) return this.existing(key, fp, started, order.orderId);
    noteOrderId(order.orderId);

    let result: DeductResult | null = null;
    let unavailable: string | null = null;
    try {
      result = await this.policy.execute((signal) =>
        this.deps.inventory.deduct({ order_id: order.orderId, lines: order.lines.map((l) => ({ ...l })) }, { requestId: requestId ?? undefined, signal }),
      );
    } catch (err) {
      // Anything but an answer leaves the outcome unknown: queue it; the retry reuses the order id.
      if (!(err instanceof InventoryUnavailableError)) this.deps.onError?.(err, "inventory deduct");
      unavailable = err instanceof InventoryUnavailableError ? err.kind : "unexpected_error";
    }

    const now = new Date(this.clock.now());
    const next: OrderView =
      result?.outcome === "applied"
        ? { ...view, status: "confirmed", updated_at: now.toISOString() }
        : result?.outcome === "rejected"
          ? { ...view, status: "rejected", reason: result.reason, ...(result.rejected_lines.length ? { rejected_lines: result.rejected_lines } : {}), updated_at: now.toISOString() }
          : { ...view, status: "queued", reason: `inventory_unavailable:${unavailable}`, updated_at: now.toISOString() };
    const response = { status: statusCodeFor(next.status), body: responseBodyFor(next) };
    const moved = await this.writer.transition({
      orderId: order.orderId,
      to: next.status,
      from: ["pending"],
      reason: next.reason,
      at: now,
      response,
      rejectedLines: result?.outcome === "rejected" ? result.rejected_lines : null,
    });
    if (!moved) {
      // The sweeper took this order over (we were slower than the lease): answer with what stands.
      return this.fromOrder(order.orderId, started);
    }
    if (next.status === "queued") await this.enqueue(order.orderId, requestId);
    return this.finish({ ...response, replayed: false, orderId: order.orderId }, next.status as "confirmed" | "rejected" | "queued", started);
  }

  // No cache write for a new order: PostgreSQL already holds its response, most keys are never
  // replayed, and on a loaded machine the write costs every order CPU in the app and in Redis.
  // The first replay reads the key row and fills the cache (see `existing`).
  private finish(res: OrderResponse, outcome: OrderOutcomeEvent["outcome"], started: number): OrderResponse {
    this.emit({ outcome, status: res.status, durationMs: this.clock.now() - started });
    return res;
  }

  private async enqueue(orderId: string, requestId: string | null) {
    try {
      await this.deps.enqueue?.(orderId, requestId);
    } catch (err) {
      // The order is safely `queued` in PostgreSQL; the sweeper will enqueue it again.
      this.deps.onError?.(err, "retry enqueue");
    }
  }

  /** The key was taken: replay, refuse as reused, or say it is still in flight. */
  private async existing(key: string, fp: string, started: number, ownOrderId?: string): Promise<OrderResponse> {
    for (const l of this.lookupListeners) l();
    const cached = await this.deps.kv.get(CACHE_PREFIX + key).catch(() => null);
    if (cached) {
      const c = JSON.parse(cached) as { fp: string; status: number; body: string; order_id: string | null };
      if (c.fp !== fp) throw this.reused(key);
      noteOrderId(c.order_id);
      this.emit({ outcome: "replayed", status: c.status, durationMs: this.clock.now() - started, cacheHit: true });
      return { status: c.status, body: c.body, replayed: true, orderId: c.order_id };
    }
    const row = await repo.findKey(this.deps.database, key);
    if (!row) {
      // Expired and deleted between our claim and this read: a rare race; the client may retry.
      throw new IdempotencyKeyInUseError("The key changed hands while this request ran; retry it.");
    }
    if (row.fingerprint !== fp) throw this.reused(key);
    noteOrderId(row.order_id);
    if (row.state === "done" && row.response_status !== null && row.response_body !== null) {
      const res = { status: row.response_status, body: row.response_body, replayed: true, orderId: row.order_id };
      void this.deps.kv
        .set(CACHE_PREFIX + key, JSON.stringify({ fp, status: res.status, body: res.body, order_id: res.orderId }), {
          ttlMs: Math.max(1000, new Date(row.expires_at).getTime() - this.clock.now()),
        })
        .catch(() => {});
      this.emit({ outcome: "replayed", status: res.status, durationMs: this.clock.now() - started, cacheHit: false });
      return res;
    }
    const now = this.clock.now();
    // Our own order under the key: a group-committed claim committed, but its answer was lost
    // with its connection, and the lone retry found the key taken. Nobody else holds it.
    const ours = row.order_id === ownOrderId;
    if (ours || now - new Date(row.updated_at).getTime() > this.leaseMs || this.abandoned.has(key, row.order_id, now)) {
      // The request that claimed it died mid-flight; the order itself tells the truth now, and a
      // pending one goes to the retry worker rather than wait for the sweeper.
      const r = await this.fromOrder(row.order_id, started, { recover: true });
      return { ...r, replayed: !ours };
    }
    this.emit({ outcome: "conflict", status: 409, durationMs: this.clock.now() - started });
    throw new IdempotencyKeyInUseError("A request with this Idempotency-Key is still being processed; retry shortly.", {
      order_id: row.order_id,
    });
  }

  private reused(key: string) {
    this.emit({ outcome: "conflict", status: 422, durationMs: 0 });
    return new IdempotencyKeyReusedError(`Idempotency-Key "${key}" was already used with a different request body.`);
  }

  private async fromOrder(orderId: string, started: number, opts: { recover?: boolean } = {}): Promise<OrderResponse> {
    const row = await repo.findOrder(this.deps.database, orderId);
    if (!row) throw new NotFoundError(`Order ${orderId} not found`);
    const view = toView(row);
    // The worker claims it under a lease (pending becomes queued, `recovered`); a duplicate
    // message finds it claimed or final and is dropped.
    if (opts.recover && view.status === "pending") void this.enqueue(orderId, row.request_id);
    const status = statusCodeFor(view.status);
    this.emit({ outcome: "replayed", status, durationMs: this.clock.now() - started });
    return { status, body: responseBodyFor(view), replayed: false, orderId };
  }

  /**
   * Cancels an order under an idempotency key: from `pending`, `queued` or `confirmed` it becomes
   * `cancelling`, inventory releases it (every line's stock back once, any later deduction
   * refused), and it becomes `cancelled` (200). If inventory cannot be reached the answer is 202
   * `cancelling` and the retry worker finishes it. A cancelled order answers 200 again and moves
   * nothing; a rejected or failed one is a 409. The key's first answer is replayed.
   */
  async cancel(orderId: string, key: string, input: { reason?: string | undefined }, requestId: string | null, actor: string): Promise<OrderResponse> {
    const db = this.deps.database;
    const row = await repo.findOrder(db, orderId);
    if (!row) throw new NotFoundError(`Order ${orderId} not found`, { order_id: orderId });
    noteOrderId(orderId);
    const note = input.reason ?? null;
    const fp = cancelFingerprint(orderId, note);
    const now = this.clock.now();
    if (!(await repo.claimKey(db, { key, fingerprint: fp, orderId, at: new Date(now), ttlS: this.deps.idempotencyTtlS }))) {
      const k = await repo.findKey(db, key);
      if (!k) throw new IdempotencyKeyInUseError("The key changed hands while this request ran; retry it.");
      if (k.fingerprint !== fp) throw this.reused(key);
      if (k.state === "done" && k.response_status !== null && k.response_body !== null) {
        this.emitCancel("replayed");
        return { status: k.response_status, body: k.response_body, replayed: true, orderId };
      }
      // Still in flight: a live request answers soon; one that died left a cancel that is safe to run again.
      if (now - new Date(k.updated_at).getTime() <= this.leaseMs) {
        throw new IdempotencyKeyInUseError("A cancel with this Idempotency-Key is still being processed; retry shortly.", { order_id: orderId });
      }
    }
    const res = await this.runCancel(row, { note, actor, requestId });
    await repo.storeKeyResponse(db, { key, orderId, status: res.status, body: res.body, at: new Date(this.clock.now()) });
    return res;
  }

  private async runCancel(row: repo.OrderRow, who: { note: string | null; actor: string; requestId: string | null }): Promise<OrderResponse> {
    const db = this.deps.database;
    const orderId = row.order_id;
    let current: repo.OrderRow | null = row;
    // A concurrent change (the request path confirming, the worker settling) can move the order
    // between the read and the write: read again and decide on what stands.
    for (let i = 0; i < 5 && current && (CANCELLABLE_STATUSES as readonly string[]).includes(current.status); i++) {
      const started = await repo.startCancel(db, { orderId, from: CANCELLABLE_STATUSES, at: new Date(this.clock.now()), actor: who.actor, note: who.note });
      current = started ? { ...current, status: "cancelling" } : await repo.findOrder(db, orderId);
    }
    if (!current) throw new NotFoundError(`Order ${orderId} not found`, { order_id: orderId });
    if (current.status === "rejected" || current.status === "failed") {
      this.emitCancel("not_cancellable");
      const view = toView(current);
      const body = JSON.stringify(
        problemFor("order_not_cancellable", `Order ${orderId} is ${current.status}: it took no stock and cannot be cancelled.`, { order_id: orderId, order_status: view.status }),
      );
      return { status: 409, body, replayed: false, orderId };
    }
    if (current.status === "cancelling") {
      if (await this.releaseForCancel(orderId, who.requestId)) {
        await repo.transition(db, { orderId, to: "cancelled", from: ["cancelling"], reason: "cancelled", at: new Date(this.clock.now()) });
      } else {
        await this.enqueue(orderId, who.requestId);
      }
      current = (await repo.findOrder(db, orderId)) ?? current;
    }
    const view = toView(current);
    this.emitCancel(view.status === "cancelled" ? "cancelled" : "cancelling");
    return { status: statusCodeFor(view.status), body: responseBodyFor(view), replayed: false, orderId };
  }

  /** Asks inventory to release the order; false when it could not be reached (the retry worker will). */
  private async releaseForCancel(orderId: string, requestId: string | null): Promise<boolean> {
    if (this.policy.isOpen()) return false;
    try {
      await this.policy.execute((signal) => this.deps.inventory.release(orderId, { requestId: requestId ?? undefined, signal }));
      return true;
    } catch (err) {
      if (!(err instanceof InventoryUnavailableError)) throw err;
      return false;
    }
  }

  onCancel(listener: (outcome: CancelOutcome) => void): () => void {
    this.cancelListeners.add(listener);
    return () => this.cancelListeners.delete(listener);
  }

  private emitCancel(outcome: CancelOutcome) {
    for (const l of this.cancelListeners) l(outcome);
  }

  async get(orderId: string): Promise<OrderView & { history: NonNullable<OrderView["history"]> }> {
    const row = await repo.findOrder(this.deps.database, orderId);
    if (!row) throw new NotFoundError(`Order ${orderId} not found`, { order_id: orderId });
    const history = await repo.orderHistory(this.deps.database, orderId);
    return {
      ...toView(row),
      history: history.map((h) => ({
        status: h.status,
        reason: h.reason,
        at: new Date(h.at).toISOString(),
        ...(h.actor ? { actor: h.actor } : {}),
        ...(h.note ? { note: h.note } : {}),
      })),
    };
  }

  async list(opts: { status?: OrderStatus; limit?: number }): Promise<OrderView[]> {
    const rows = await repo.listOrders(this.deps.database, { status: opts.status, limit: Math.min(opts.limit ?? 100, 100) });
    return rows.map(toView);
  }

  countByStatus() {
    return repo.countByStatus(this.deps.database);
  }
}
