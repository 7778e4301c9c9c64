import { randomUUID } from "node:crypto";
import type { Database } from "../../../platform/db.ts";
import { systemClock, type Clock, type Random } from "../../../platform/clock.ts";
import type { Delivery, RetryQueue } from "../../../platform/queue/queue.port.ts";
import { InventoryMisconfiguredError, InventoryUnavailableError, type DeductResult, type InventoryPort, type LineRejection } from "../../inventory/index.ts";
import * as repo from "./order.repository.ts";
import { linesOf, responseBodyFor, statusCodeFor, toView } from "./order.reply.ts";
import type { CallPolicy } from "./order.service.ts";
import type { OrderStatus } from "./order.tables.ts";
import { withLogContext } from "../../../platform/log-context.ts";

export interface RetryWorkerOptions {
  database: Database;
  inventory: InventoryPort;
  policy: CallPolicy;
  queue: RetryQueue;
  clock?: Clock;
  random?: Random;
  /** Attempts before the worker gives up, releases the order at inventory and marks it failed. */
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** How many deliveries are worked on at once. */
  concurrency?: number;
  sweepIntervalMs?: number;
  /** An unfinished order untouched this long has no one working on it (crash, lost message). */
  strandedAfterMs?: number;
  /**
   * How long one delivery may hold an order (two inventory calls and a few writes). Another
   * delivery of the same order waits until it is over; a worker that outlives it can no longer
   * move the order. Default 30 000 (the retry queue's visibility timeout is the natural value).
   */
  leaseMs?: number;
  onError?: (err: unknown, context: string) => void;
}

/** One delivery's hold on its order: the order as claimed, the lease token, the message. */
interface Lease {
  order: repo.OrderRow;
  leaseId: string;
  d: Delivery;
}

export type RetryResult =
  | "confirmed"
  | "rejected"
  | "failed"
  | "cancelled"
  | "retry"
  | "breaker_open"
  | "misconfigured"
  | "busy"
  | "already_final"
  | "missing"
  | "dead_letter";

/**
 * Finishes what the request path could not: takes queued orders from the retry queue, calls
 * inventory with the same order id (so a deduction that already committed is simply reported
 * again), backs off exponentially with jitter, respects the breaker, and moves each order to a
 * final state. An order becomes `failed` only after inventory has released its order id.
 *
 * Every delivery first claims the order with a lease (`claimForWork`) and moves it only through
 * transitions that carry that lease: a delivery acts only on transitions it actually made, so
 * two deliveries of one order (a duplicate message, a sweep) never both act, and a confirmed
 * order is never released. Attempts live on the order row, not in the message, so a sweep that
 * re-enqueues an order carries on its count rather than starting it again.
 */
export class RetryWorker {
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly o: Required<
    Pick<RetryWorkerOptions, "maxAttempts" | "baseDelayMs" | "maxDelayMs" | "concurrency" | "sweepIntervalMs" | "strandedAfterMs" | "leaseMs">
  >;
  private running = false;
  private loops: Promise<void>[] = [];
  private sweeper: ReturnType<typeof setInterval> | undefined;
  private readonly listeners = new Set<(r: RetryResult, orderId: string) => void>();

  constructor(private readonly deps: RetryWorkerOptions) {
    this.clock = deps.clock ?? systemClock;
    this.random = deps.random ?? Math.random;
    this.o = {
      maxAttempts: deps.maxAttempts ?? 15,
      baseDelayMs: deps.baseDelayMs ?? 500,
      maxDelayMs: deps.maxDelayMs ?? 30_000,
      concurrency: deps.concurrency ?? 4,
      sweepIntervalMs: deps.sweepIntervalMs ?? 5_000,
      strandedAfterMs: deps.strandedAfterMs ?? 60_000,
      leaseMs: deps.leaseMs ?? 30_000,
    };
  }

  onResult(listener: (r: RetryResult, orderId: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Exponential backoff with equal jitter: never zero, never above the cap. */
  backoffMs(attempt: number): number {
    const cap = Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** Math.min(attempt, 20));
    return Math.round(cap / 2 + this.random() * (cap / 2));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (let i = 0; i < this.o.concurrency; i++) this.loops.push(this.loop());
    void this.sweep().catch((err) => this.deps.onError?.(err, "sweep"));
    this.sweeper = setInterval(() => void this.sweep().catch((err) => this.deps.onError?.(err, "sweep")), this.o.sweepIntervalMs);
  }

  /** Stops taking new work and waits for what it holds to finish. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.sweeper) clearInterval(this.sweeper);
    await Promise.all(this.loops.splice(0));
  }

  private async loop(): Promise<void> {
    while (this.running) {
      // With the breaker open every delivery would only be pushed back (a read, a write and a
      // queue call each); leave the messages where they are until a probe may pass.
      if (this.deps.policy.isOpen()) {
        await this.clock.sleep(250).catch(() => {});
        continue;
      }
      try {
        const got = await this.deps.queue.receive(1, 1_000);
        for (const d of got) await this.handle(d);
      } catch (err) {
        this.deps.onError?.(err, "retry receive");
        // The queue is unreachable (Redis down): orders stay safe in PostgreSQL; try again soon.
        await this.clock.sleep(1_000).catch(() => {});
      }
    }
  }

  private emit(r: RetryResult, orderId: string) {
    for (const l of this.listeners) l(r, orderId);
  }

  /**
   * Works one delivery to its next step. Public so tests can drive the worker step by step. What
   * it logs carries the order id and the id of the request that placed the order, when known.
   */
  handle(d: Delivery): Promise<RetryResult> {
    return withLogContext({ order_id: d.orderId, request_id: d.requestId ?? undefined }, () => this.handleDelivery(d));
  }

  private async handleDelivery(d: Delivery): Promise<RetryResult> {
    const r = await this.work(d).catch(async (err) => {
      this.deps.onError?.(err, "retry handle");
      if (d.attempt + 1 >= this.o.maxAttempts) {
        await d.deadLetter(`unexpected error: ${(err as Error).message}`);
        return "dead_letter" as const;
      }
      await d.retryLater(this.backoffMs(d.attempt));
      return "retry" as const;
    });
    this.emit(r, d.orderId);
    return r;
  }

  private async work(d: Delivery): Promise<RetryResult> {
    const db = this.deps.database;
    const leaseId = randomUUID();
    const order = await repo.claimForWork(db, { orderId: d.orderId, at: this.now(), leaseId, leaseMs: this.o.leaseMs });
    if (!order) return this.unclaimed(d);
    const lease = { order, leaseId, d };

    if (this.deps.policy.isOpen()) {
      await repo.letGo(db, order.order_id, leaseId);
      await d.retryLater(this.backoffMs(order.attempts));
      return "breaker_open";
    }

    const ctx = (signal: AbortSignal) => ({ requestId: d.requestId ?? order.request_id ?? undefined, signal });
    // A cancel was asked for and inventory has not yet released the order: that is the work.
    if (order.status === "cancelling") return this.finishCancel(lease, ctx);
    const exhausted = order.attempts + 1 >= this.o.maxAttempts;
    let result: DeductResult | null = null;
    if (!exhausted) {
      try {
        result = await this.deps.policy.execute((signal) =>
          this.deps.inventory.deduct({ order_id: order.order_id, lines: linesOf(order) }, ctx(signal)),
        );
      } catch (err) {
        if (!(err instanceof InventoryUnavailableError)) throw err;
        return this.notYet(lease, err);
      }
    }

    if (result === null || (result.outcome === "rejected" && result.reason === "released")) {
      // Give up only once inventory has closed the order's account: a late deduction can then
      // never stand for a failed order (and a standing one is restored). The lease guarantees no
      // other delivery confirms the order meanwhile.
      try {
        await this.deps.policy.execute((signal) => this.deps.inventory.release(order.order_id, ctx(signal)));
      } catch (err) {
        if (!(err instanceof InventoryUnavailableError)) throw err;
        // Released or not, the order stays queued and this delivery comes back to release it.
        await repo.letGo(db, order.order_id, leaseId);
        await d.retryLater(err instanceof InventoryMisconfiguredError ? this.o.maxDelayMs : this.backoffMs(order.attempts));
        return err instanceof InventoryMisconfiguredError ? "misconfigured" : "retry";
      }
      return this.finish(lease, "failed", result === null ? "retries_exhausted" : "order_released");
    }
    if (result.outcome === "applied") return this.finish(lease, "confirmed", null);
    return this.finish(lease, "rejected", result.reason, result.rejected_lines);
  }

  /**
   * Finishes a cancel: inventory releases the order (idempotent: stock back once, later
   * deductions refused), then the order becomes `cancelled` under this delivery's lease. A cancel
   * never gives up: while inventory cannot be reached it waits, without using up attempts.
   */
  private async finishCancel(l: Lease, ctx: (signal: AbortSignal) => { requestId: string | undefined; signal: AbortSignal }): Promise<RetryResult> {
    const db = this.deps.database;
    try {
      await this.deps.policy.execute((signal) => this.deps.inventory.release(l.order.order_id, ctx(signal)));
    } catch (err) {
      if (!(err instanceof InventoryUnavailableError)) throw err;
      await repo.letGo(db, l.order.order_id, l.leaseId);
      const misconfigured = err instanceof InventoryMisconfiguredError;
      await l.d.retryLater(misconfigured ? this.o.maxDelayMs : this.backoffMs(l.order.attempts));
      return misconfigured ? "misconfigured" : "retry";
    }
    const moved = await repo.leasedTransition(db, {
      orderId: l.order.order_id,
      to: "cancelled",
      from: ["cancelling"],
      reason: "cancelled",
      at: this.now(),
      leaseId: l.leaseId,
    });
    if (!moved) return this.unclaimed(l.d);
    await l.d.ack();
    return "cancelled";
  }

  private now(): Date {
    return new Date(this.clock.now());
  }

  /** No claim: the order is gone, final, or another delivery holds it (that one will finish it). */
  private async unclaimed(d: Delivery): Promise<RetryResult> {
    const order = await repo.findOrder(this.deps.database, d.orderId);
    if (!order) {
      await d.ack();
      return "missing";
    }
    if (order.status !== "pending" && order.status !== "queued" && order.status !== "cancelling") {
      await d.ack();
      return "already_final";
    }
    await d.retryLater(this.backoffMs(order.attempts));
    return "busy";
  }

  /**
   * Inventory did not settle the order: back off and come again. An attempt that reached (or may
   * have reached) inventory counts toward giving up; one refused for this process's own
   * configuration does not, so orders wait, queued, for the operator's fix instead of failing.
   */
  private async notYet(l: Lease, err: InventoryUnavailableError): Promise<RetryResult> {
    const misconfigured = err instanceof InventoryMisconfiguredError;
    await repo.recordAttempt(this.deps.database, {
      orderId: l.order.order_id,
      leaseId: l.leaseId,
      reason: `inventory_unavailable:${err.kind}`,
      at: this.now(),
      counted: !misconfigured,
    });
    await l.d.retryLater(misconfigured ? this.o.maxDelayMs : this.backoffMs(l.order.attempts));
    return misconfigured ? "misconfigured" : "retry";
  }

  /** Moves the order to its final state under this delivery's lease; acks only a move it made. */
  private async finish(l: Lease, to: OrderStatus, reason: string | null, rejectedLines: readonly LineRejection[] = []): Promise<RetryResult> {
    const at = this.now();
    const view = {
      ...toView(l.order),
      status: to,
      reason,
      ...(rejectedLines.length ? { rejected_lines: rejectedLines.map((r) => ({ ...r })) } : {}),
      attempts: l.order.attempts + 1,
      updated_at: at.toISOString(),
    };
    const moved = await repo.leasedTransition(this.deps.database, {
      orderId: l.order.order_id,
      to,
      from: ["queued"],
      reason,
      at,
      attempt: 1,
      response: { status: statusCodeFor(to), body: responseBodyFor(view) },
      rejectedLines,
      leaseId: l.leaseId,
    });
    if (!moved) {
      // This delivery outlived its lease and another took the order over: what it learned is
      // stale, so it moves nothing and lets the holder (or a later delivery) settle the order.
      this.deps.onError?.(new Error(`lease on order ${l.order.order_id} was lost before it could become ${to}`), "retry finish");
      return this.unclaimed(l.d);
    }
    await l.d.ack();
    return to as "confirmed" | "rejected" | "failed";
  }

  /** Re-enqueues orders no one is working on. Returns how many it found. */
  async sweep(): Promise<number> {
    const stranded = await repo.findStranded(this.deps.database, new Date(this.clock.now()), this.o.strandedAfterMs, 200);
    for (const o of stranded) {
      await repo.touch(this.deps.database, o.order_id, new Date(this.clock.now()));
      // The count that decides giving up is the order's own; the message's is informational.
      await this.deps.queue.enqueue({ orderId: o.order_id, attempt: Math.min(o.attempts, this.o.maxAttempts - 1), requestId: o.request_id ?? undefined });
    }
    await repo.deleteExpiredKeys(this.deps.database, new Date(this.clock.now())).catch(() => 0);
    return stranded.length;
  }
}
