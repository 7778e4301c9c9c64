import type { Database } from "../../../platform/db.ts";
import { systemClock, type Clock, type Random } from "../../../platform/clock.ts";
import type { Delivery, RetryQueue } from "../../../platform/queue/queue.port.ts";
import { InventoryUnavailableError, type DeductResult, type InventoryPort } from "../../inventory/index.ts";
import * as repo from "./order.repository.ts";
import { responseBodyFor, statusCodeFor, toView } from "./order.reply.ts";
import type { CallPolicy } from "./order.service.ts";
import type { OrderStatus } from "./order.tables.ts";

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
  onError?: (err: unknown, context: string) => void;
}

export type RetryResult = "confirmed" | "rejected" | "failed" | "retry" | "breaker_open" | "already_final" | "missing" | "dead_letter";

/**
 * Finishes what the request path could not: takes queued orders from the retry queue, calls
 * inventory with the same order id (so a deduction that already committed is simply reported
 * again), backs off exponentially with jitter, respects the breaker, and moves each order to a
 * final state. An order becomes `failed` only after inventory has released its order id.
 */
export class RetryWorker {
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly o: Required<Pick<RetryWorkerOptions, "maxAttempts" | "baseDelayMs" | "maxDelayMs" | "concurrency" | "sweepIntervalMs" | "strandedAfterMs">>;
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

  /** Works one delivery to its next step. Public so tests can drive the worker step by step. */
  async handle(d: Delivery): Promise<RetryResult> {
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
    const order = await repo.findOrder(db, d.orderId);
    if (!order) {
      await d.ack();
      return "missing";
    }
    if (order.status !== "pending" && order.status !== "queued") {
      await d.ack();
      return "already_final";
    }
    const now = () => new Date(this.clock.now());
    if (order.status === "pending") {
      // Left pending by a request that died: it joins the queued orders first.
      await repo.transition(db, { orderId: order.order_id, to: "queued", from: ["pending"], reason: "recovered", at: now() });
    } else {
      await repo.touch(db, order.order_id, now());
    }
    if (this.deps.policy.isOpen()) {
      await d.retryLater(this.backoffMs(d.attempt));
      return "breaker_open";
    }

    const exhausted = d.attempt + 1 >= this.o.maxAttempts;
    let result: DeductResult | null = null;
    if (!exhausted) {
      try {
        result = await this.deps.policy.execute((signal) =>
          this.deps.inventory.deduct(
            { order_id: order.order_id, item_id: order.item_id, quantity: order.quantity },
            { requestId: d.requestId ?? order.request_id ?? undefined, signal },
          ),
        );
      } catch (err) {
        if (!(err instanceof InventoryUnavailableError)) throw err;
        await repo.recordAttempt(db, order.order_id, `inventory_unavailable:${err.kind}`, now());
        await d.retryLater(this.backoffMs(d.attempt));
        return "retry";
      }
    }

    if (result === null || (result.outcome === "rejected" && result.reason === "released")) {
      // Give up only once inventory has closed the order's account: a late deduction can then
      // never stand for a failed order (and a standing one is restored).
      try {
        await this.deps.policy.execute((signal) => this.deps.inventory.release(order.order_id, { signal, requestId: d.requestId }));
      } catch (err) {
        if (!(err instanceof InventoryUnavailableError)) throw err;
        await d.retryLater(this.o.maxDelayMs);
        return "retry";
      }
      await this.finish(order, "failed", "retries_exhausted");
      await d.ack();
      return "failed";
    }
    if (result.outcome === "applied") {
      await this.finish(order, "confirmed", null);
      await d.ack();
      return "confirmed";
    }
    await this.finish(order, "rejected", result.reason);
    await d.ack();
    return "rejected";
  }

  private async finish(order: repo.OrderRow, to: OrderStatus, reason: string | null) {
    const at = new Date(this.clock.now());
    const view = { ...toView(order), status: to, reason, attempts: order.attempts + 1, updated_at: at.toISOString() };
    await repo.transition(this.deps.database, {
      orderId: order.order_id,
      to,
      from: ["queued"],
      reason,
      at,
      attempt: 1,
      response: { status: statusCodeFor(to), body: responseBodyFor(view) },
    });
  }

  /** Re-enqueues orders no one is working on. Returns how many it found. */
  async sweep(): Promise<number> {
    const stranded = await repo.findStranded(this.deps.database, new Date(this.clock.now()), this.o.strandedAfterMs, 200);
    for (const o of stranded) {
      await repo.touch(this.deps.database, o.order_id, new Date(this.clock.now()));
      await this.deps.queue.enqueue({ orderId: o.order_id, attempt: Math.min(o.attempts, this.o.maxAttempts - 1), requestId: o.request_id ?? undefined });
    }
    await repo.deleteExpiredKeys(this.deps.database, new Date(this.clock.now())).catch(() => 0);
    return stranded.length;
  }
}
