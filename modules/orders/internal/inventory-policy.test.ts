import { beforeEach, describe, expect, test } from "bun:test";
import { TaskCancelledError } from "cockatiel";
import { InventoryUnavailableError, type DeductResult } from "../../inventory/index.ts";
import {
  createInventoryPolicy,
  type BreakerStateChange,
  type InventoryPolicy,
  type InventoryPolicyOptions,
  type PolicyFailureEvent,
} from "./inventory-policy.ts";
import { ManualClock, settle } from "../../../tests/support/manual-clock.ts";

class OutOfStockError extends Error {
  readonly code = "out_of_stock";
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Settles to the rejection reason, or fails the test if the call succeeded. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected the call to fail");
}

let clock: ManualClock;
let policy: InventoryPolicy;
let calls: number;

function make(opts: InventoryPolicyOptions = {}) {
  policy = createInventoryPolicy({ clock, ...opts });
  return policy;
}

const succeed = () =>
  policy.execute(async () => {
    calls++;
    return "ok";
  });

const failTransient = (kind: InventoryUnavailableError["kind"] = "server_error") =>
  rejection(
    policy.execute(async () => {
      calls++;
      throw new InventoryUnavailableError("inventory answered 503", undefined, kind);
    }),
  );

async function succeedTimes(n: number) {
  for (let i = 0; i < n; i++) await succeed();
}

async function failTimes(n: number) {
  for (let i = 0; i < n; i++) await failTransient();
}

/** Opens the breaker the cheapest way the default options allow. */
async function trip() {
  await failTimes(10);
  expect(policy.state).toBe("open");
}

beforeEach(() => {
  clock = new ManualClock();
  calls = 0;
  make();
});

describe("timeout", () => {
  test("surfaces as InventoryUnavailableError('timeout') and aborts the signal at the deadline", async () => {
    let seen: AbortSignal | undefined;
    let settled = false;
    // Ignores the signal, like work that commits anyway: the policy must stop waiting regardless.
    const call = policy
      .execute((signal) => {
        seen = signal;
        return new Promise<never>(() => {});
      })
      .finally(() => (settled = true));
    call.catch(() => {});

    await clock.advance(2999);
    expect(settled).toBe(false);
    expect(seen?.aborted).toBe(false);

    await clock.advance(1);
    const err = await rejection(call);
    expect(err).toBeInstanceOf(InventoryUnavailableError);
    expect((err as InventoryUnavailableError).kind).toBe("timeout");
    expect((err as InventoryUnavailableError).cause_).toBeInstanceOf(TaskCancelledError);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBeInstanceOf(TaskCancelledError);
  });

  test("work that finishes after the deadline does not change the answer the caller got", async () => {
    const work = deferred<string>();
    const failed = deferred<string>();
    const late = rejection(policy.execute(() => work.promise));
    const lateFailure = rejection(policy.execute(() => failed.promise));
    await clock.advance(3000);
    expect(((await late) as InventoryUnavailableError).kind).toBe("timeout");
    expect(((await lateFailure) as InventoryUnavailableError).kind).toBe("timeout");

    work.resolve("committed");
    failed.reject(new Error("connection reset after the deadline"));
    await settle();
    expect(clock.pendingSleeps).toBe(0);
  });

  test("a call that answers in time disarms its timer and keeps its signal unaborted", async () => {
    let seen: AbortSignal | undefined;
    const value = await policy.execute(async (signal) => {
      seen = signal;
      return 42;
    });
    expect(value).toBe(42);
    expect(seen?.aborted).toBe(false);
    expect(clock.pendingSleeps).toBe(0);
  });

  test("timeouts count against the breaker", async () => {
    const pending = Array.from({ length: 10 }, () => rejection(policy.execute(() => new Promise<never>(() => {}))));
    await clock.advance(3000);
    for (const err of await Promise.all(pending)) expect((err as InventoryUnavailableError).kind).toBe("timeout");
    expect(policy.state).toBe("open");
  });

  test("a caller's own cancellation passes through as its reason and does not count", async () => {
    for (let i = 0; i < 12; i++) {
      const caller = new AbortController();
      let seen: AbortSignal | undefined;
      const call = policy.execute((signal) => {
        seen = signal;
        return new Promise<never>(() => {});
      }, caller.signal);
      await settle();
      caller.abort(new Error("shutting down"));
      const err = await rejection(call);
      expect((err as Error).message).toBe("shutting down");
      expect(seen?.aborted).toBe(true);
    }
    expect(policy.state).toBe("closed");
  });

  test("an already cancelled caller never starts the work", async () => {
    const caller = new AbortController();
    caller.abort(new Error("gone"));
    const err = await rejection(
      policy.execute(async () => {
        calls++;
        return 1;
      }, caller.signal),
    );
    expect((err as Error).message).toBe("gone");
    expect(calls).toBe(0);
  });
});

describe("what counts as a failure", () => {
  test("a thrown business error passes through untouched and never opens the breaker", async () => {
    const thrown = new OutOfStockError("only 2 left");
    for (let i = 0; i < 25; i++) {
      const err = await rejection(
        policy.execute(async () => {
          throw thrown;
        }),
      );
      expect(err).toBe(thrown);
    }
    expect(policy.state).toBe("closed");
    expect(policy.isOpen()).toBe(false);
  });

  test("business errors are not counted as calls either", async () => {
    await failTimes(9);
    for (let i = 0; i < 10; i++) await rejection(policy.execute(async () => Promise.reject(new OutOfStockError("no"))));
    // Had they counted as successes, 9 of 19 would be below 50 %; as failures, above. Neither: 9 < 10 calls.
    expect(policy.state).toBe("closed");
    await failTransient();
    expect(policy.state).toBe("open");
  });

  test("a 'rejected' outcome is an answer: returned as is, reported as success", async () => {
    const successes: number[] = [];
    policy.onSuccess((e) => successes.push(e.durationMs));
    const answer: DeductResult = {
      outcome: "rejected",
      order_id: "o1",
      lines: [{ item_id: "ps5", quantity: 3 }],
      reason: "insufficient_stock",
      rejected_lines: [{ item_id: "ps5", reason: "insufficient_stock" }],
      replayed: false,
    };
    for (let i = 0; i < 20; i++) expect(await policy.execute(async () => answer)).toBe(answer);
    expect(successes).toHaveLength(20);
    expect(policy.state).toBe("closed");
  });

  test("transport and server errors keep their kind and the same instance", async () => {
    for (const kind of ["transport", "server_error"] as const) {
      const thrown = new InventoryUnavailableError("nope", undefined, kind);
      const err = await rejection(policy.execute(() => Promise.reject(thrown)));
      expect(err).toBe(thrown);
    }
  });
});

describe("opening", () => {
  test("opens at exactly 50 % failures once the minimum number of calls is reached", async () => {
    await succeedTimes(5);
    await failTimes(4);
    expect(policy.state).toBe("closed");
    await failTransient(); // 5 of 10
    expect(policy.state).toBe("open");
    expect(policy.isOpen()).toBe(true);

    calls = 0;
    const err = await rejection(succeed());
    expect((err as InventoryUnavailableError).kind).toBe("breaker_open");
    expect(calls).toBe(0);
  });

  test("stays closed below 50 %", async () => {
    await succeedTimes(6);
    await failTimes(4); // 4 of 10
    expect(policy.state).toBe("closed");
    await failTransient(); // 5 of 11
    expect(policy.state).toBe("closed");
  });

  test("needs the minimum number of calls, not a rate", async () => {
    await failTimes(9);
    expect(policy.state).toBe("closed");
    await failTransient();
    expect(policy.state).toBe("open");

    clock = new ManualClock();
    make({ minimumCalls: 3 });
    await failTimes(2);
    expect(policy.state).toBe("closed");
    await failTransient();
    expect(policy.state).toBe("open");
  });

  test("failures from before an idle spell longer than the window do not count", async () => {
    await failTimes(9);
    await clock.advance(11_000);
    await failTransient();
    expect(policy.state).toBe("closed");
    await failTimes(8);
    expect(policy.state).toBe("closed");
    await failTransient(); // 10 fresh failures
    expect(policy.state).toBe("open");
  });

  test("failures still inside the window do count", async () => {
    await failTimes(5);
    await clock.advance(6000);
    await failTimes(4);
    expect(policy.state).toBe("closed");
    await failTransient();
    expect(policy.state).toBe("open");
  });

  test("old calls leave the window as it rolls", async () => {
    await succeedTimes(10); // t = 0
    await clock.advance(9500);
    await failTimes(9); // 9 of 19: closed
    expect(policy.state).toBe("closed");
    await clock.advance(1000); // the 10 successes age out
    await failTransient(); // 10 of 10
    expect(policy.state).toBe("open");
  });
});

describe("half-open", () => {
  test("stays open for the cool-down, then lets a call through", async () => {
    await trip();
    await clock.advance(9999);
    expect(policy.isOpen()).toBe(true);
    calls = 0;
    expect(((await rejection(succeed())) as InventoryUnavailableError).kind).toBe("breaker_open");
    expect(calls).toBe(0);

    await clock.advance(1);
    expect(policy.isOpen()).toBe(false);
    expect(policy.state).toBe("open"); // cockatiel switches on the next call, not on a timer
    expect(await succeed()).toBe("ok");
    expect(calls).toBe(1);
    expect(policy.state).toBe("closed");
  });

  test("admits a single probe; concurrent callers fail fast instead of waiting on it", async () => {
    await trip();
    await clock.advance(10_000);

    const probe = deferred<string>();
    let probes = 0;
    const first = policy.execute(() => {
      probes++;
      return probe.promise;
    });
    expect(policy.state).toBe("half-open");
    expect(policy.isOpen()).toBe(true);

    const others = Array.from({ length: 5 }, () =>
      policy.execute(async () => {
        probes++;
        return "should not run";
      }),
    );
    // The probe is still pending, yet every other caller already has its answer.
    const outcomes = await Promise.allSettled(others);
    for (const o of outcomes) {
      expect(o.status).toBe("rejected");
      expect(((o as PromiseRejectedResult).reason as InventoryUnavailableError).kind).toBe("breaker_open");
    }
    await settle();
    expect(probes).toBe(1);

    probe.resolve("ok");
    expect(await first).toBe("ok");
    expect(policy.state).toBe("closed");
  });

  test("callers arriving in the same tick after the cool-down make only one probe", async () => {
    await trip();
    await clock.advance(10_000);
    let probes = 0;
    const gate = deferred<void>();
    const all = Array.from({ length: 6 }, () =>
      policy.execute(async () => {
        probes++;
        await gate.promise;
        return "ok";
      }),
    );
    const early = await Promise.allSettled(all.slice(1));
    expect(early.every((o) => o.status === "rejected")).toBe(true);
    gate.resolve();
    expect(await all[0]).toBe("ok");
    expect(probes).toBe(1);
  });

  test("a successful probe closes the breaker and forgets the failures that opened it", async () => {
    await succeedTimes(5);
    await failTimes(5);
    expect(policy.state).toBe("open");
    await clock.advance(10_000);
    await succeed();
    expect(policy.state).toBe("closed");
    // Still within the original window: had the old failures stayed, this would reopen.
    // 1 + 4 calls since closing; with the 10 from before it would be 9 of 15 and open again.
    await failTimes(4);
    expect(policy.state).toBe("closed");
  });

  test("a failed probe reopens the breaker for another full cool-down", async () => {
    await trip();
    await clock.advance(10_000);
    await failTransient();
    expect(policy.state).toBe("open");
    await clock.advance(9999);
    expect(policy.isOpen()).toBe(true);
    await clock.advance(1);
    expect(policy.isOpen()).toBe(false);
  });

  test("a probe that times out reopens the breaker", async () => {
    await trip();
    await clock.advance(10_000);
    const probe = rejection(policy.execute(() => new Promise<never>(() => {})));
    expect(policy.state).toBe("half-open");
    await clock.advance(3000);
    expect(((await probe) as InventoryUnavailableError).kind).toBe("timeout");
    expect(policy.state).toBe("open");
    expect(policy.isOpen()).toBe(true);
  });

  test("a probe answered with a business error closes the breaker: inventory is reachable", async () => {
    await trip();
    await clock.advance(10_000);
    await rejection(policy.execute(() => Promise.reject(new OutOfStockError("no"))));
    expect(policy.state).toBe("closed");
  });
});

describe("events", () => {
  test("state changes are emitted with from and to; dispose stops them", async () => {
    const changes: BreakerStateChange[] = [];
    const sub = policy.onStateChange((c) => changes.push(c));

    await trip();
    await clock.advance(10_000);
    await failTransient(); // probe fails
    await clock.advance(10_000);
    await succeed(); // probe succeeds

    expect(changes).toEqual([
      { from: "closed", to: "open" },
      { from: "open", to: "half-open" },
      { from: "half-open", to: "open" },
      { from: "open", to: "half-open" },
      { from: "half-open", to: "closed" },
    ]);

    sub.dispose();
    await failTimes(10);
    expect(policy.state).toBe("open");
    expect(changes).toHaveLength(5);
  });

  test("failures are reported with their kind, fast failures included; durations use the clock", async () => {
    const failures: PolicyFailureEvent[] = [];
    const successes: number[] = [];
    policy.onFailure((f) => failures.push(f));
    policy.onSuccess((s) => successes.push(s.durationMs));

    const slow = policy.execute(async () => {
      await clock.sleep(120);
      return 1;
    });
    await clock.advance(120);
    await slow;
    expect(successes).toEqual([120]);

    const hang = rejection(policy.execute(() => new Promise<never>(() => {})));
    await clock.advance(3000);
    await hang;
    await failTimes(8); // 9 failures of 10 calls: open
    await rejection(succeed());

    const kinds = failures.map((f) => f.kind);
    expect(kinds).toEqual(["timeout", ...Array(8).fill("server_error"), "breaker_open"]);
    expect(failures[0]!.durationMs).toBe(3000);
    expect(failures[9]!.durationMs).toBe(0);
    expect(failures.every((f) => f.error instanceof InventoryUnavailableError)).toBe(true);
  });
});

describe("with the system clock", () => {
  test("answers quick calls and times out hung ones on real timers", async () => {
    const real = createInventoryPolicy({ timeoutMs: 20 });
    expect(await real.execute(async () => "fast")).toBe("fast");
    let seen: AbortSignal | undefined;
    const err = await rejection(
      real.execute((signal) => {
        seen = signal;
        return new Promise<never>(() => {});
      }),
    );
    expect((err as InventoryUnavailableError).kind).toBe("timeout");
    expect(seen?.aborted).toBe(true);
  });
});

describe("options", () => {
  test("rejects settings that cannot work", () => {
    expect(() => make({ failureThreshold: 0 })).toThrow(RangeError);
    expect(() => make({ failureThreshold: 1.5 })).toThrow(RangeError);
    expect(() => make({ minimumCalls: 0 })).toThrow(RangeError);
    expect(() => make({ timeoutMs: 0 })).toThrow(RangeError);
    expect(() => make({ windowMs: 0 })).toThrow(RangeError);
    expect(() => make({ halfOpenAfterMs: -1 })).toThrow(RangeError);
  });

  test("custom threshold and cool-down are honoured", async () => {
    make({ failureThreshold: 0.3, minimumCalls: 10, halfOpenAfterMs: 500 });
    await succeedTimes(7);
    await failTimes(3); // exactly 30 %
    expect(policy.state).toBe("open");
    await clock.advance(500);
    expect(policy.isOpen()).toBe(false);
  });
});
