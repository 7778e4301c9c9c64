import {
  InventoryUnavailableError,
  type CallContext,
  type InventoryPort,
} from "../modules/inventory/index.ts";
import type { Clock } from "../platform/clock.ts";
import type { ChaosInjector, CrashKind, FaultDecision, InventoryRoute } from "./injector.ts";

/**
 * Chaos for `VALERIX_ROLE=all`: wraps the in-process inventory adapter so the orders module sees
 * exactly what it would see over HTTP — a crash or a lost answer is an `InventoryUnavailableError`
 * (the outcome is unknown), a hang lasts until the caller's timeout aborts the call.
 *
 * `const inventory = withChaos(createInProcessInventory(db), chaos)`
 */
export function withChaos(port: InventoryPort, injector: ChaosInjector, clock: Clock = injector.clock): InventoryPort {
  const lost = (kind: CrashKind, what: string, cause?: unknown) =>
    new InventoryUnavailableError(
      kind === "reset" ? `chaos: connection reset (${what})` : `chaos: inventory answered ${kind} (${what})`,
      cause,
      kind === "reset" ? "transport" : "server_error",
    );

  const aborted = (signal: AbortSignal | undefined, what: string) =>
    new InventoryUnavailableError(`chaos: caller gave up during ${what}`, signal?.reason, "timeout");

  /** Waits `ms`, or until the caller aborts — which is how a timeout reaches a slow inventory. */
  const wait = async (ms: number, signal: AbortSignal | undefined, what: string) => {
    if (signal?.aborted) throw aborted(signal, what);
    try {
      await clock.sleep(ms, signal);
    } catch (err) {
      if (signal?.aborted) throw aborted(signal, what);
      throw err;
    }
  };

  async function run<T>(route: InventoryRoute, ctx: CallContext | undefined, orderId: string | undefined, call: () => Promise<T>): Promise<T> {
    const decision: FaultDecision | null = await injector.decide(route, { requestId: ctx?.requestId, orderId });
    if (!decision) return call();
    const signal = ctx?.signal;
    if (decision.latencyMs > 0) await wait(decision.latencyMs, signal, "injected latency");
    if (decision.hang) {
      await wait(decision.hangMs ?? 30_000, signal, "an injected hang");
      // Nobody aborted within the cap: answer as a dead connection would.
      throw lost("reset", `hang of ${decision.hangMs} ms`);
    }
    if (decision.crash !== undefined) throw lost(decision.crash, route);
    if (decision.partial !== undefined) {
      // The work commits; only its answer goes missing. The caller must not be able to tell
      // this apart from a crash before the work — that is the point of the experiment.
      await call();
      throw lost(decision.partial, `${route} committed, answer lost`);
    }
    return call();
  }

  return {
    deduct: (req, ctx) => run("deduct", ctx, req.order_id, () => port.deduct(req, ctx)),
    release: (orderId, ctx) => run("release", ctx, orderId, () => port.release(orderId, ctx)),
    pay: (orderId, paidAt, ctx) => run("pay", ctx, orderId, () => port.pay(orderId, paidAt, ctx)),
    expire: (orderId, ctx) => run("expire", ctx, orderId, () => port.expire(orderId, ctx)),
    movements: (itemId, page, ctx) => run("get", ctx, undefined, () => port.movements(itemId, page, ctx)),
    get: (itemId, ctx) => run("get", ctx, undefined, () => port.get(itemId, ctx)),
    list: (ctx) => run("list", ctx, undefined, () => port.list(ctx)),
    health: (ctx) => run("health", ctx, undefined, () => port.health(ctx)),
    // Not a route the Gremlin knows (nor does its HTTP classifier): passed through in both modes.
    stockEvents: (after, limit, ctx) => port.stockEvents(after, limit, ctx),
  };
}
