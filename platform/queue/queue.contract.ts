import { afterEach, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import type { Delivery, RetryQueue } from "./queue.port.ts";

export interface QueueUnderTest {
  queue: RetryQueue;
  /** Another consumer of the same queue (another replica). Tests that need two are skipped without it. */
  makeSecondConsumer?: () => Promise<RetryQueue>;
  cleanup(): Promise<void>;
}

export interface QueueContractOptions {
  /** The visibility timeout the factory configured. Default 300 ms. */
  visibilityTimeoutMs?: number;
}

/**
 * The behaviour every retry queue adapter must show, run once per adapter (the way Kysely runs
 * each suite once per dialect). Timing checks are lower bounds (a message must not come early)
 * and generous upper bounds (it must come at all); the machine may be slow, never fast.
 *
 * `make` is called for every test and must return an empty queue.
 */
export function queueContract(name: string, make: () => Promise<QueueUnderTest>, opts: QueueContractOptions = {}): void {
  const visibilityMs = opts.visibilityTimeoutMs ?? 300;
  const generousMs = 10_000;
  // Explicit, because failures here should show as a failed expectation rather than a timeout.
  const testTimeoutMs = 30_000;

  describe(`retry queue contract: ${name}`, () => {
    let current: QueueUnderTest | null = null;
    const extra: RetryQueue[] = [];

    const setup = async () => {
      current = await make();
      return current.queue;
    };
    const second = async (): Promise<RetryQueue> => {
      if (!current?.makeSecondConsumer) throw new Error("this adapter's factory has no second consumer");
      const q = await current.makeSecondConsumer();
      extra.push(q);
      return q;
    };
    const needsSecond = async (fn: (a: RetryQueue, b: RetryQueue) => Promise<void>) => {
      const a = await setup();
      if (!current?.makeSecondConsumer) return; // nothing to check with a single consumer
      await fn(a, await second());
    };

    afterEach(async () => {
      for (const q of extra.splice(0)) await q.close();
      await current?.cleanup();
      current = null;
    });

    const order = () => randomUUID();
    const elapsedSince = (t0: number) => performance.now() - t0;
    /** Receives until `n` deliveries came or the generous bound passed. */
    const receiveAll = async (q: RetryQueue, n: number): Promise<Delivery[]> => {
      const got: Delivery[] = [];
      const t0 = performance.now();
      while (got.length < n && elapsedSince(t0) < generousMs) got.push(...(await q.receive(n - got.length, 200)));
      return got;
    };

    test("enqueue, receive, ack", async () => {
      const q = await setup();
      const id = order();
      await q.enqueue({ orderId: id, attempt: 0, requestId: "req-1" });
      const [d, ...more] = await q.receive(10, generousMs);
      expect(more).toEqual([]);
      expect(d).toMatchObject({ orderId: id, attempt: 0, requestId: "req-1" });
      expect(typeof d!.id).toBe("string");
      await d!.ack();
      expect(await q.receive(10, 0)).toEqual([]);
      expect(await q.depth()).toEqual({ ready: 0, inFlight: 0, deadLetters: 0 });
    }, testTimeoutMs);

    test("a message without a request id comes back without one", async () => {
      const q = await setup();
      await q.enqueue({ orderId: order(), attempt: 3 });
      const [d] = await q.receive(1, generousMs);
      expect(d!.attempt).toBe(3);
      expect(d!.requestId).toBeUndefined();
    }, testTimeoutMs);

    test("receive returns at most max", async () => {
      const q = await setup();
      const ids = [order(), order(), order()];
      for (const id of ids) await q.enqueue({ orderId: id, attempt: 0 });
      const first = await q.receive(2, generousMs);
      expect(first).toHaveLength(2);
      const rest = await q.receive(10, generousMs);
      expect(rest).toHaveLength(1);
      expect(new Set([...first, ...rest].map((d) => d.orderId))).toEqual(new Set(ids));
    }, testTimeoutMs);

    test("retryLater hides the message for the delay and increments attempt", async () => {
      const q = await setup();
      const id = order();
      await q.enqueue({ orderId: id, attempt: 0, requestId: "r" });
      const [d] = await q.receive(1, generousMs);
      const delayMs = 400;
      const t0 = performance.now();
      await d!.retryLater(delayMs);
      expect(await q.receive(1, 0)).toEqual([]);
      expect(await q.depth()).toEqual({ ready: 1, inFlight: 0, deadLetters: 0 });
      const [again] = await q.receive(1, generousMs);
      expect(elapsedSince(t0)).toBeGreaterThanOrEqual(delayMs - 5);
      expect(again).toMatchObject({ orderId: id, attempt: 1, requestId: "r" });
      await again!.retryLater(0);
      const [third] = await q.receive(1, generousMs);
      expect(third).toMatchObject({ orderId: id, attempt: 2 });
    }, testTimeoutMs);

    test("a delayed message is not delivered before it is due", async () => {
      const q = await setup();
      const id = order();
      const t0 = performance.now();
      await q.enqueue({ orderId: id, attempt: 0 }, { delayMs: 500 });
      expect(await q.receive(5, 100)).toEqual([]);
      expect((await q.depth()).ready).toBe(1);
      const [d] = await q.receive(5, generousMs);
      expect(elapsedSince(t0)).toBeGreaterThanOrEqual(500 - 5);
      expect(d!.orderId).toBe(id);
    }, testTimeoutMs);

    test("deadLetter moves the message out, newest first, and counts it", async () => {
      const q = await setup();
      const a = order();
      const b = order();
      await q.enqueue({ orderId: a, attempt: 4, requestId: "ra" });
      await q.enqueue({ orderId: b, attempt: 0 });
      const got = await receiveAll(q, 2);
      const da = got.find((d) => d.orderId === a)!;
      const db = got.find((d) => d.orderId === b)!;
      await da.deadLetter("max attempts");
      await db.deadLetter("released, inventory gave up");
      expect(await q.depth()).toEqual({ ready: 0, inFlight: 0, deadLetters: 2 });
      expect(await q.receive(10, 0)).toEqual([]);
      const dead = await q.deadLetters(10);
      expect(dead).toHaveLength(2);
      expect(dead[0]).toMatchObject({ orderId: b, attempt: 0, reason: "released, inventory gave up" });
      expect(dead[0]!.requestId).toBeUndefined();
      expect(dead[1]).toMatchObject({ orderId: a, attempt: 4, requestId: "ra", reason: "max attempts" });
      for (const x of dead) expect(Number.isNaN(Date.parse(x.at))).toBe(false);
      expect(await q.deadLetters(1)).toHaveLength(1);
    }, testTimeoutMs);

    test("an order dead-lettered earlier can be enqueued again", async () => {
      const q = await setup();
      const id = order();
      await q.enqueue({ orderId: id, attempt: 0 });
      await (await q.receive(1, generousMs))[0]!.deadLetter("gave up");
      await q.enqueue({ orderId: id, attempt: 0 });
      const [d] = await q.receive(1, generousMs);
      expect(d!.orderId).toBe(id);
      expect((await q.depth()).deadLetters).toBe(1);
    }, testTimeoutMs);

    test("depth counts ready (due and delayed), in flight and dead letters", async () => {
      const q = await setup();
      expect(await q.depth()).toEqual({ ready: 0, inFlight: 0, deadLetters: 0 });
      await q.enqueue({ orderId: order(), attempt: 0 });
      await q.enqueue({ orderId: order(), attempt: 0 });
      await q.enqueue({ orderId: order(), attempt: 0 }, { delayMs: 60_000 });
      expect(await q.depth()).toEqual({ ready: 3, inFlight: 0, deadLetters: 0 });
      const [d] = await q.receive(1, generousMs);
      expect(await q.depth()).toEqual({ ready: 2, inFlight: 1, deadLetters: 0 });
      await d!.deadLetter("test");
      expect(await q.depth()).toEqual({ ready: 2, inFlight: 0, deadLetters: 1 });
      const [e] = await q.receive(1, generousMs);
      await e!.ack();
      expect(await q.depth()).toEqual({ ready: 1, inFlight: 0, deadLetters: 1 });
    }, testTimeoutMs);

    test("two consumers receiving at once never get the same message", async () => {
      await needsSecond(async (a, b) => {
        const ids = Array.from({ length: 30 }, order);
        for (const id of ids) await a.enqueue({ orderId: id, attempt: 0 });
        const [fromA, fromB] = await Promise.all([a.receive(30, 0), b.receive(30, 0)]);
        const seenA = new Set(fromA.map((d) => d.orderId));
        expect(fromB.filter((d) => seenA.has(d.orderId))).toEqual([]);

        // Then many small receives racing each other; each delivery is acked at once, so no
        // visibility timeout can run out and a repeat would be a real double delivery.
        const seen = [...fromA, ...fromB].map((d) => d.orderId);
        await Promise.all([...fromA, ...fromB].map((d) => d.ack()));
        const t0 = performance.now();
        const drain = async (q: RetryQueue) => {
          while (seen.length < ids.length && elapsedSince(t0) < generousMs) {
            const batch = await q.receive(3, 50);
            seen.push(...batch.map((d) => d.orderId));
            await Promise.all(batch.map((d) => d.ack()));
          }
        };
        await Promise.all([drain(a), drain(b), drain(a), drain(b)]);
        expect(seen.length).toBe(ids.length);
        expect(new Set(seen)).toEqual(new Set(ids));
      });
    }, testTimeoutMs);

    test("a message not settled in time goes to another consumer; the late settle is ignored", async () => {
      await needsSecond(async (a, b) => {
        const id = order();
        await a.enqueue({ orderId: id, attempt: 2, requestId: "r" });
        const t0 = performance.now();
        const [stale] = await a.receive(1, generousMs);
        expect(stale!.orderId).toBe(id);
        // a "dies": it neither acks nor retries. While its lease lasts, nobody else gets it.
        expect(await b.receive(1, 0)).toEqual([]);
        expect((await b.depth()).inFlight).toBe(1);
        const [taken] = await b.receive(1, generousMs);
        expect(elapsedSince(t0)).toBeGreaterThanOrEqual(visibilityMs - 5);
        expect(taken).toMatchObject({ orderId: id, attempt: 2, requestId: "r" });
        // a wakes up and settles what it no longer owns: nothing happens.
        await stale!.deadLetter("late");
        await stale!.ack();
        expect(await b.depth()).toEqual({ ready: 0, inFlight: 1, deadLetters: 0 });
        await taken!.ack();
        expect(await a.depth()).toEqual({ ready: 0, inFlight: 0, deadLetters: 0 });
        expect(await a.deadLetters(10)).toEqual([]);
      });
    }, testTimeoutMs);

    test("receive waits up to waitMs and returns [] when nothing comes", async () => {
      const q = await setup();
      const t0 = performance.now();
      expect(await q.receive(5, 400)).toEqual([]);
      const took = elapsedSince(t0);
      expect(took).toBeGreaterThanOrEqual(400 - 5);
      expect(took).toBeLessThan(400 + generousMs);
      const t1 = performance.now();
      expect(await q.receive(5, 0)).toEqual([]);
      expect(elapsedSince(t1)).toBeLessThan(generousMs);
    }, testTimeoutMs);

    test("many receives waiting at once on an idle queue each return [] after about waitMs, none fails", async () => {
      // A process's retry worker runs several loops, each waiting in receive. Ten of them here,
      // so that waits made one after another (one blocking read after the other) show up as
      // receives far past waitMs, or as reads failing their own deadlines.
      const q = await setup();
      const waitMs = 1_000;
      const t0 = performance.now();
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, async () => {
          const got = await q.receive(1, waitMs).catch((err: unknown) => err);
          return { got, took: elapsedSince(t0) };
        }),
      );
      expect(outcomes.map((o) => o.got)).toEqual(Array.from({ length: 10 }, () => []));
      for (const { took } of outcomes) {
        expect(took).toBeGreaterThanOrEqual(waitMs - 5);
        // Room for a slow, shared machine; each wait is one waitMs, not a turn in a line of ten.
        expect(took).toBeLessThan(waitMs + 1_500);
      }
    }, testTimeoutMs);

    test("a waiting receive returns as soon as a message arrives", async () => {
      await needsSecond(async (a, b) => {
        const id = order();
        const t0 = performance.now();
        const waiting = a.receive(5, 30_000);
        await Bun.sleep(100);
        await b.enqueue({ orderId: id, attempt: 0 });
        const got = await waiting;
        expect(got.map((d) => d.orderId)).toEqual([id]);
        expect(elapsedSince(t0)).toBeLessThan(generousMs);
      });
    }, testTimeoutMs);

    test("enqueuing the same order twice delivers it once", async () => {
      const q = await setup();
      const id = order();
      await q.enqueue({ orderId: id, attempt: 0 });
      await q.enqueue({ orderId: id, attempt: 0 });
      expect(await q.depth()).toEqual({ ready: 1, inFlight: 0, deadLetters: 0 });
      const got = await q.receive(10, 300);
      expect(got.map((d) => d.orderId)).toEqual([id]);
      await got[0]!.ack();
      expect(await q.receive(10, 300)).toEqual([]);
    }, testTimeoutMs);

    test("a second enqueue brings a delayed message forward, never back", async () => {
      const q = await setup();
      const late = order();
      const soon = order();
      await q.enqueue({ orderId: late, attempt: 0 }, { delayMs: 60_000 });
      await q.enqueue({ orderId: late, attempt: 0 }); // now: wins over the later due time
      await q.enqueue({ orderId: soon, attempt: 0 });
      await q.enqueue({ orderId: soon, attempt: 0 }, { delayMs: 60_000 }); // stays due now
      const got = await receiveAll(q, 2);
      expect(new Set(got.map((d) => d.orderId))).toEqual(new Set([late, soon]));
      expect(await q.depth()).toEqual({ ready: 0, inFlight: 2, deadLetters: 0 });
    }, testTimeoutMs);

    test("enqueuing an order that is in flight does not hand it out twice", async () => {
      await needsSecond(async (a, b) => {
        const id = order();
        await a.enqueue({ orderId: id, attempt: 0 });
        const [d] = await a.receive(1, generousMs);
        await b.enqueue({ orderId: id, attempt: 0 }); // the sweeper, say, while a works on it
        expect(await b.receive(1, 0)).toEqual([]);
        await d!.retryLater(0);
        const [again] = await b.receive(5, generousMs);
        expect(again).toMatchObject({ orderId: id, attempt: 1 });
        await again!.ack();
        expect(await b.depth()).toEqual({ ready: 0, inFlight: 0, deadLetters: 0 });
      });
    }, testTimeoutMs);

    test("close ends a waiting receive with [] and is idempotent", async () => {
      const q = await setup();
      const t0 = performance.now();
      const waiting = q.receive(1, 30_000);
      await Bun.sleep(50);
      await q.close();
      expect(await waiting).toEqual([]);
      expect(elapsedSince(t0)).toBeLessThan(generousMs);
      await q.close();
      expect(await q.receive(1, 0)).toEqual([]);
      await expect(q.enqueue({ orderId: order(), attempt: 0 })).rejects.toMatchObject({ code: "QUEUE_CLOSED" });
    }, testTimeoutMs);
  });
}
