import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import type { Database } from "../db.ts";
import type { Clock } from "../clock.ts";
import { openTestDatabase } from "../../tests/support/system.ts";
import { createPostgresQueue } from "./postgres.ts";

/** Time that moves only when told to, or when someone sleeps: waits cost no real time. */
function manualClock(start = Date.UTC(2030, 0, 1)) {
  let t = start;
  const clock: Clock & { advance(ms: number): void; slept: number } = {
    slept: 0,
    now: () => t,
    async sleep(ms, signal) {
      if (signal?.aborted) throw signal.reason;
      t += ms;
      clock.slept += ms;
    },
    advance(ms) {
      t += ms;
    },
  };
  return clock;
}

// Timing logic of the table adapter, driven by an injected clock on the embedded database.
describe("postgres queue with an injected clock", () => {
  let database: Database;
  let close: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    ({ database, close } = await openTestDatabase("pglite", ["orders"]));
  }, 60_000);
  afterAll(() => close?.());
  beforeEach(async () => {
    await database.query("t", "truncate orders.retry_queue, orders.retry_dead_letters", []);
  });

  const VISIBILITY = 30_000;
  const setup = () => {
    const clock = manualClock();
    const opts = { clock, visibilityTimeoutMs: VISIBILITY, pollMs: 250 };
    return { clock, a: createPostgresQueue(database, opts), b: createPostgresQueue(database, opts) };
  };

  test("a delayed message comes due exactly at its time", async () => {
    const { clock, a } = setup();
    const id = randomUUID();
    await a.enqueue({ orderId: id, attempt: 0 }, { delayMs: 60_000 });
    clock.advance(59_999);
    expect(await a.receive(1, 0)).toEqual([]);
    clock.advance(1);
    expect((await a.receive(1, 0)).map((d) => d.orderId)).toEqual([id]);
  });

  test("retryLater counts from the clock and bumps attempt", async () => {
    const { clock, a } = setup();
    await a.enqueue({ orderId: randomUUID(), attempt: 5 });
    const [d] = await a.receive(1, 0);
    await d!.retryLater(120_000);
    clock.advance(119_999);
    expect(await a.receive(1, 0)).toEqual([]);
    clock.advance(1);
    const [again] = await a.receive(1, 0);
    expect(again!.attempt).toBe(6);
  });

  test("a lease hides the message for exactly the visibility timeout", async () => {
    const { clock, a, b } = setup();
    await a.enqueue({ orderId: randomUUID(), attempt: 0 });
    const [first] = await a.receive(1, 0);
    clock.advance(VISIBILITY - 1);
    expect(await b.receive(1, 0)).toEqual([]);
    clock.advance(1);
    const [second] = await b.receive(1, 0);
    expect(second!.orderId).toBe(first!.orderId);
    expect(second!.id).not.toBe(first!.id);
    // The first holder's settle is stale now; the new holder's counts.
    await first!.retryLater(0);
    expect(await a.depth()).toEqual({ ready: 0, inFlight: 1, deadLetters: 0 });
    await second!.retryLater(0);
    const [third] = await a.receive(1, 0);
    expect(third!.attempt).toBe(1);
  });

  test("receive polls the clock's sleep until waitMs is used up", async () => {
    const { clock, a } = setup();
    const before = clock.now();
    expect(await a.receive(1, 5_000)).toEqual([]);
    expect(clock.slept).toBe(5_000);
    expect(clock.now() - before).toBe(5_000);
  });

  test("receive stops waiting once a poll finds a message", async () => {
    const { clock, a } = setup();
    await a.enqueue({ orderId: randomUUID(), attempt: 0 }, { delayMs: 1_000 });
    const got = await a.receive(1, 60_000);
    expect(got).toHaveLength(1);
    // Found on the first poll at or after the due time, not at the end of the wait.
    expect(clock.slept).toBe(1_000);
  });

  test("a dead letter records the clock's time and the attempt reached", async () => {
    const { clock, a } = setup();
    await a.enqueue({ orderId: randomUUID(), attempt: 7, requestId: "req" });
    const [d] = await a.receive(1, 0);
    clock.advance(1234);
    await d!.deadLetter("max attempts");
    const [dead] = await a.deadLetters(5);
    expect(dead).toMatchObject({ attempt: 7, requestId: "req", reason: "max attempts" });
    expect(dead!.at).toBe(new Date(clock.now()).toISOString());
  });

  test("enqueue does not pull an in-flight message forward, but does once its lease ran out", async () => {
    const { clock, a, b } = setup();
    const id = randomUUID();
    await a.enqueue({ orderId: id, attempt: 0 });
    await a.receive(1, 0);
    await b.enqueue({ orderId: id, attempt: 0 });
    expect(await b.receive(1, 0)).toEqual([]);
    clock.advance(VISIBILITY);
    await b.enqueue({ orderId: id, attempt: 0 });
    expect((await b.receive(1, 0)).map((d) => d.orderId)).toEqual([id]);
  });
});
