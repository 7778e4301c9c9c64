import { describe, expect, test } from "bun:test";
import { InventoryUnavailableError } from "../modules/inventory/index.ts";
import { createMemoryStore } from "../platform/kv/memory.ts";
import { createChaosInjector } from "./injector.ts";
import { withChaos } from "./in-process.ts";
import { ManualClock } from "../tests/support/manual-clock.ts";
// A test double of our own port (not of anything outside our control): see its comment.
import { createMemoryInventory } from "./testing/memory-inventory.ts";

async function setup(body: unknown | null) {
  const clock = new ManualClock();
  const chaos = createChaosInjector({ kv: createMemoryStore({ clock }), clock });
  if (body !== null) {
    const r = await chaos.configure(body);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
  }
  const real = createMemoryInventory({ ps5: 10, xbox: 5 });
  return { clock, chaos, real, inventory: withChaos(real, chaos) };
}

const deductPs5 = (orderId: string) => ({ order_id: orderId, lines: [{ item_id: "ps5", quantity: 1 }] });

async function rejection(p: Promise<unknown>): Promise<InventoryUnavailableError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(InventoryUnavailableError);
    return err as InventoryUnavailableError;
  }
  throw new Error("expected the call to fail");
}

describe("withChaos around the in-process port", () => {
  test("without an experiment every call passes through", async () => {
    const { inventory, real } = await setup(null);
    expect(await inventory.deduct(deductPs5("o1"))).toMatchObject({ outcome: "applied", lines: [{ remaining: 9 }] });
    expect(await inventory.get("ps5")).toMatchObject({ quantity: 9 });
    expect((await inventory.list()).length).toBe(2);
    expect(await inventory.release("o1")).toMatchObject({ restored: true });
    expect((await inventory.health()).ok).toBe(true);
    expect(real.calls).toEqual(["deduct:o1", "get:ps5", "list", "release:o1", "health"]);
  });

  test("a crash throws the port's transport error before any work", async () => {
    const { inventory, real } = await setup({ crash_rate: 1, crash_mode: 503 });
    const err = await rejection(inventory.deduct(deductPs5("o1")));
    expect(err.kind).toBe("server_error");
    expect(err.code).toBe("inventory_unavailable");
    expect(real.calls).toEqual([]);
    expect(real.stock("ps5")).toBe(10);
  });

  test("a reset is a transport error", async () => {
    const { inventory } = await setup({ crash_rate: 1, crash_mode: "reset" });
    expect((await rejection(inventory.deduct(deductPs5("o1")))).kind).toBe("transport");
  });

  test("a partial failure commits, then loses the answer; a retry replays and deducts nothing more", async () => {
    const { inventory, real, chaos } = await setup({ partial_failure_rate: 1, crash_mode: 500 });
    const err = await rejection(inventory.deduct(deductPs5("o1")));
    expect(err.kind).toBe("server_error");
    expect(real.stock("ps5")).toBe(9);
    expect(real.deductions("o1")).toBe(1);

    await chaos.disable();
    expect(await inventory.deduct(deductPs5("o1"))).toMatchObject({ outcome: "applied", replayed: true });
    expect(real.stock("ps5")).toBe(9);
    expect(real.deductions("o1")).toBe(1);
  });

  test("targeting deduct leaves reads alone", async () => {
    const { inventory } = await setup({ crash_rate: 1 });
    expect(await inventory.get("ps5")).toMatchObject({ quantity: 10 });
    await rejection(inventory.deduct(deductPs5("o1")));
  });

  test('"all" reaches release too, with the order id in the event log', async () => {
    const { inventory, real, chaos } = await setup({ routes: "all", partial_failure_rate: 1, crash_mode: "reset" });
    await rejection(inventory.release("o7", { requestId: "req-7" }));
    expect(real.calls).toEqual(["release:o7"]);
    expect((await chaos.events(1))[0]).toMatchObject({ type: "partial_failure", route: "release", order_id: "o7", request_id: "req-7" });
  });

  test("latency delays the call by the injected clock", async () => {
    const { inventory, real, clock } = await setup({ latency_ms: 2_000 });
    let done = false;
    const call = inventory.deduct(deductPs5("o1")).then((r) => ((done = true), r));
    await clock.waitForSleepers(1);
    expect(clock.sleeps).toEqual([2_000]);
    await clock.advance(1_999);
    await Promise.resolve();
    expect(done).toBe(false);
    expect(real.calls).toEqual([]);
    await clock.advance(1);
    expect(await call).toMatchObject({ outcome: "applied" });
  });

  test("latency honors the caller's abort: a timeout, and no work done", async () => {
    const { inventory, real, clock } = await setup({ latency_ms: 5_000 });
    const ctrl = new AbortController();
    const call = inventory.deduct(deductPs5("o1"), { signal: ctrl.signal });
    await clock.waitForSleepers(1);
    ctrl.abort(new Error("caller timeout"));
    const err = await rejection(call);
    expect(err.kind).toBe("timeout");
    expect(real.calls).toEqual([]);
    expect(clock.pendingSleeps).toBe(0);
  });

  test("an already aborted call fails at once", async () => {
    const { inventory } = await setup({ latency_ms: 5_000 });
    expect((await rejection(inventory.deduct(deductPs5("o1"), { signal: AbortSignal.abort() }))).kind).toBe("timeout");
  });

  test("a hang lasts until the caller gives up", async () => {
    const { inventory, real, clock } = await setup({ hang_rate: 1, hang_ms: 60_000 });
    const ctrl = new AbortController();
    const call = inventory.deduct(deductPs5("o1"), { signal: ctrl.signal });
    await clock.waitForSleepers(1);
    await clock.advance(59_000);
    expect(clock.pendingSleeps).toBe(1);
    ctrl.abort();
    expect((await rejection(call)).kind).toBe("timeout");
    expect(real.calls).toEqual([]);
  });

  test("a hang nobody aborts ends as a dropped connection at its cap", async () => {
    const { inventory, clock } = await setup({ hang_rate: 1, hang_ms: 1_000 });
    const call = rejection(inventory.deduct(deductPs5("o1")));
    await clock.waitForSleepers(1);
    await clock.advance(1_000);
    expect((await call).kind).toBe("transport");
  });

  test("a business rejection behind injected latency is still an answer, not a fault", async () => {
    const { inventory, clock } = await setup({ latency_ms: 10 });
    const call = inventory.deduct({ order_id: "o1", lines: [{ item_id: "nope", quantity: 1 }] });
    await clock.waitForSleepers(1);
    await clock.advance(10);
    expect(await call).toMatchObject({ outcome: "rejected", reason: "unknown_item" });
  });
});
