import { AsyncLocalStorage } from "node:async_hooks";

/**
 * The ids every log line written on behalf of one request (or one retry of an order) carries:
 * `request_id` from the HTTP edge, `order_id` once the order has one. Kept in AsyncLocalStorage so
 * that lines written far from the edge (a callback wired in the composition root, an adapter)
 * carry them without every signature passing them along. The logger reads it in its mixin.
 */
export interface LogContext {
  request_id?: string | undefined;
  order_id?: string | undefined;
}

const storage = new AsyncLocalStorage<LogContext>();

/**
 * Runs `fn` with `context` as the log context of everything it starts, awaits included.
 *
 * `withLogContext({ request_id: "0b6f…" }, () => handle(request))`
 */
export function withLogContext<T>(context: LogContext, fn: () => T): T {
  return storage.run(context, fn);
}

/** The current log context, if any; the logger's mixin copies it onto each line. */
export function currentLogContext(): LogContext | undefined {
  return storage.getStore();
}

/**
 * Names the order the current request (or retry) works on, once it is known; lines written from
 * then on in this context carry it. Outside a context it does nothing.
 *
 * `noteOrderId(order.orderId)`
 */
export function noteOrderId(orderId: string | null | undefined): void {
  const store = storage.getStore();
  if (store && orderId) store.order_id = orderId;
}
