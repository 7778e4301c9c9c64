import {
  InventoryMisconfiguredError,
  InventoryUnavailableError,
  type DeductRequest,
  type DeductResult,
  type InventoryPort,
} from "../../modules/inventory/index.ts";
import type { CallPolicy } from "../../modules/orders/index.ts";

/**
 * Faults at the inventory port's edge, where the chaos injector puts them too: the call never
 * arrives, or it commits and its answer is lost, or it waits at a gate the test opens. Wraps the
 * real in-process port, so what did happen happened in the database.
 */
export type Fault = "unavailable" | "lost_response" | "misconfigured";

export class FaultyInventory implements InventoryPort {
  readonly faults: Fault[] = [];
  /** While set, a deduct waits here: before reaching inventory ("before") or after it committed ("after"). */
  gate: { at: "before" | "after"; open: Promise<void>; arrived: () => void } | null = null;

  constructor(private readonly real: InventoryPort) {}

  async deduct(req: DeductRequest): Promise<DeductResult> {
    const fault = this.faults.shift();
    if (fault === "unavailable") throw new InventoryUnavailableError("injected: no answer", undefined, "timeout");
    if (fault === "misconfigured") throw new InventoryMisconfiguredError("injected: token refused", 401);
    const gate = this.gate;
    if (gate?.at === "before") {
      gate.arrived();
      await gate.open;
    }
    const r = await this.real.deduct(req);
    if (gate?.at === "after") {
      gate.arrived();
      await gate.open;
    }
    if (fault === "lost_response") throw new InventoryUnavailableError("injected: answer lost after commit", undefined, "transport");
    return r;
  }
  /** Faults for the next releases, as `faults` for deducts. */
  readonly releaseFaults: Fault[] = [];

  async release(orderId: string) {
    const fault = this.releaseFaults.shift();
    if (fault === "unavailable") throw new InventoryUnavailableError("injected: no answer", undefined, "timeout");
    const gate = this.releaseGate;
    if (gate) {
      gate.arrived();
      await gate.open;
    }
    const r = await this.real.release(orderId);
    if (fault === "lost_response") throw new InventoryUnavailableError("injected: answer lost after commit", undefined, "transport");
    return r;
  }
  /** Faults for the next payments and expiries, as `faults` for deducts. */
  readonly settleFaults: Fault[] = [];

  async pay(orderId: string, paidAt: string) {
    return this.settle(() => this.real.pay(orderId, paidAt));
  }
  async expire(orderId: string) {
    return this.settle(() => this.real.expire(orderId));
  }
  private async settle<T>(call: () => Promise<T>): Promise<T> {
    const fault = this.settleFaults.shift();
    if (fault === "unavailable") throw new InventoryUnavailableError("injected: no answer", undefined, "timeout");
    const r = await call();
    if (fault === "lost_response") throw new InventoryUnavailableError("injected: answer lost after commit", undefined, "transport");
    return r;
  }
  movements(itemId: string, page?: { limit?: number; before?: number }) {
    return this.real.movements(itemId, page);
  }
  get(itemId: string) {
    return this.real.get(itemId);
  }
  list() {
    return this.real.list();
  }
  /** While set, reading stock events fails as an unreachable inventory does. */
  stockEventsAway = false;
  /** While set, reading stock events waits here (a hanging inventory). */
  stockEventsGate: Promise<void> | null = null;
  async stockEvents(after: string | null, limit: number) {
    if (this.stockEventsAway) throw new InventoryUnavailableError("injected: inventory away", undefined, "transport");
    if (this.stockEventsGate) await this.stockEventsGate;
    return this.real.stockEvents(after, limit);
  }
  health() {
    return this.real.health();
  }

  /** While set, a release waits here before reaching inventory. */
  releaseGate: { open: Promise<void>; arrived: () => void } | null = null;

  /** Holds the next deducts at `at` (or, with "release", the next releases) until `open()` is called. */
  hold(at: "before" | "after" | "release") {
    let open!: () => void;
    let arrived!: () => void;
    const reached = new Promise<void>((r) => (arrived = r));
    const gate = { open: new Promise<void>((r) => (open = r)), arrived };
    if (at === "release") this.releaseGate = gate;
    else this.gate = { at, ...gate };
    return {
      reached,
      open: () => {
        if (at === "release") this.releaseGate = null;
        else this.gate = null;
        open();
      },
    };
  }
}

/** The breaker as the worker sees it, opened and closed by the test (the policy has its own suite). */
export class SwitchPolicy implements CallPolicy {
  open = false;
  execute<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.open) return Promise.reject(new InventoryUnavailableError("breaker open", undefined, "breaker_open"));
    return fn(new AbortController().signal);
  }
  isOpen() {
    return this.open;
  }
}

