/**
 * What the pages need from the rest of the program. The pages call the same in-process services
 * and ports the JSON API uses, so a page and an API request can never disagree about an order.
 * Every member is structural: the composition root passes the real objects, tests pass theirs.
 */
import type { Clock } from "../platform/clock.ts";
import type { HealthStatus } from "../platform/response-window.ts";
import type { HealthRegistry } from "../src/http/health.ts";
import type { InventoryPort } from "../modules/inventory/index.ts";
import type { OrderInput, OrderOutcomeEvent, OrderStatus, OrderView, WebhookView } from "../modules/orders/index.ts";

export type BreakerState = "closed" | "open" | "half-open";

/** The rolling order-latency window behind the health banner (`ResponseTimeWindow` fits). */
export interface LatencyWindow {
  /** `window.snapshot()` → `{ averageMs: 734.2, count: 12, status: "warning" }`. */
  snapshot(): { averageMs: number | null; count: number; status: HealthStatus };
  /** `window.record(812)`: one finished order request and how long it took. */
  record(durationMs: number): void;
}

export interface OrderWithHistory extends OrderView {
  /** Oldest first; `actor` and `note` say who asked for a change and why (a cancellation). */
  history: Array<{ status: string; reason: string | null; at: string; actor?: string | undefined; note?: string | undefined }>;
}

/** What an order request is answered with: the API's status code and body, byte for byte. */
export interface OrderAnswer {
  status: number;
  body: string;
  replayed: boolean;
  orderId: string | null;
}

/** The order service, as the API uses it (`OrderService` fits). */
export interface OrdersAccess {
  /**
   * Creates an order under an idempotency key; a finished request under the same key is replayed.
   * `await orders.create("ui-3f…", { lines: [{ item_id: "ps5", quantity: 1 }] }, requestId)` →
   * `{ status: 201, body: "{…order…}", replayed: false, orderId: "0b6f…" }`.
   * Throws errors with a stable `code` for 400 (an item on two lines), 409 (key in flight) and 422 (key reused).
   */
  create(key: string, input: OrderInput, requestId: string | null): Promise<OrderAnswer>;
  /**
   * Cancels an order under an idempotency key: 200 cancelled, 202 cancelling, 409 not cancellable
   * (a problem body). `await orders.cancel(id, "ui-cancel-…", { reason: "too late" }, null, "web")`.
   * Throws `not_found`, and the key errors `create` throws.
   */
  cancel(orderId: string, key: string, input: { reason?: string | undefined }, requestId: string | null, actor: string): Promise<OrderAnswer>;
  /**
   * Pays for a reserved order under an idempotency key: 200 confirmed, 202 payment recorded
   * (confirmed from the retry queue), 409 `hold_expired` (the order is now expired) or
   * `order_not_payable` (problem bodies). `await orders.pay(id, "ui-pay-…", null)`.
   * Throws `not_found`, and the key errors `create` throws.
   */
  pay(orderId: string, key: string, requestId: string | null): Promise<OrderAnswer>;
  /** `await orders.list({ status: "queued", limit: 50 })` → newest first. */
  list(opts: { status?: OrderStatus; limit?: number }): Promise<OrderView[]>;
  /** `await orders.get(id)` → the order and its state history; throws a `not_found` error. */
  get(orderId: string): Promise<OrderWithHistory>;
  /** Every finished order request (feeds the order-rate and latency sparklines). */
  onOutcome?(listener: (e: OrderOutcomeEvent) => void): unknown;
}

/** The circuit breaker in front of inventory (`InventoryPolicy` fits). */
export interface BreakerView {
  readonly state: BreakerState;
  onStateChange?(listener: (e: { from: BreakerState; to: BreakerState }) => void): unknown;
}

export type ChaosPresetName = "mild" | "moderate" | "extreme";
export const CHAOS_PRESETS: readonly ChaosPresetName[] = ["mild", "moderate", "extreme"];

/** A custom experiment as the chaos form describes it; probabilities are in [0, 1]. */
export interface ChaosExperiment {
  latency?: { minMs: number; maxMs: number; probability: number };
  crash?: { probability: number; mode: "500" | "503" | "reset" };
  /** Commit the deduction, then lose the response. */
  partial?: { probability: number };
  pattern: { kind: "random"; seed?: number } | { kind: "every-nth"; n: number };
  durationS: number;
}

export type ChaosRequest = { preset: ChaosPresetName } | { experiment: ChaosExperiment };

export interface ChaosActive {
  /** A short name for what runs: "moderate", or "custom". */
  label: string;
  /** The stored configuration, shown as a definition list (nested objects allowed). */
  config: Record<string, unknown>;
  secondsLeft: number;
}

export interface ChaosEventView {
  /** ISO 8601. */
  at: string;
  /** "latency", "crash", "partial", … */
  fault: string;
  detail?: string;
}

/**
 * The chaos injector's admin surface. `configure` validates and throws an error carrying a
 * readable `message` (and a `code`) when the input is refused.
 */
export interface ChaosControl {
  /** `await chaos.current()` → `{ label: "moderate", config: {…}, secondsLeft: 287 }`, or null when off. */
  current(): Promise<ChaosActive | null>;
  /** `await chaos.configure({ preset: "extreme" })` → what now runs; null when the request switched every fault off. */
  configure(request: ChaosRequest): Promise<ChaosActive | null>;
  /** `await chaos.disable()`; disabling when off is not an error. */
  disable(): Promise<void>;
  /** `await chaos.events(20)` → the newest injected faults, newest first. */
  events(limit: number): Promise<ChaosEventView[]>;
}

/** One endpoint as the Webhooks page shows it: the orders module's view, which never holds the secret. */
export type WebhookEndpointView = Omit<WebhookView, "previous_secret_expires_at">;

/** One delivery attempt to an endpoint. */
export interface WebhookAttemptView {
  /** ISO 8601. */
  at: string;
  event_id: string;
  attempt: number;
  status_code: number | null;
  duration_ms: number;
  error: string | null;
}

/** The webhook admin surface the page uses (`WebhookService` fits). */
export interface WebhooksAccess {
  /** `await webhooks.list()` → every endpoint, without secrets. */
  list(): Promise<WebhookEndpointView[]>;
  /** `await webhooks.deliveries("wh_…", 20)` → the newest attempts, newest first; throws `not_found`. */
  deliveries(id: string, limit: number): Promise<{ webhook_id: string; attempts: WebhookAttemptView[] }>;
  /**
   * Sends one event again to every endpoint it matches, under an idempotency key: the same key is
   * replayed, not redelivered. `await webhooks.redeliver("evt_…", "ui-redeliver-…")` →
   * `{ status: 202, body: '{"event_id":"evt_…","deliveries":1}', replayed: false }`; throws `not_found`.
   */
  redeliver(eventId: string, key: string): Promise<{ status: number; body: string; replayed: boolean }>;
  /**
   * Sends to a disabled endpoint again, under an idempotency key (the same key is replayed).
   * `await webhooks.enable("wh_…", "ui-enable-…")` → `{ status: 200, body: '{"id":"wh_…",…}', replayed: false }`; throws `not_found`.
   */
  enable(id: string, key: string): Promise<{ status: number; body: string; replayed: boolean }>;
}

/** This process's webhook relay, as the page asks it about endpoint breakers (`WebhookRelay` fits). */
export interface WebhookBreakers {
  /** `relay.openEndpoints()` → ids of the endpoints whose breaker is open now, in this process. */
  openEndpoints(): string[];
}

export interface ViewDeps {
  window: LatencyWindow;
  /** Length of `window`, for the banner's wording. Default 30. */
  windowSeconds?: number;
  /** Absent on an inventory-only instance: the catalog is shown, ordering is not. */
  orders?: OrdersAccess;
  inventory: Pick<InventoryPort, "list" | "get" | "movements">;
  health: HealthRegistry;
  breaker?: BreakerView;
  /** Absent until a chaos injector is wired: the chaos page says so. */
  chaos?: ChaosControl;
  /** Absent where no orders module sends events (an inventory-only instance): the page says so. */
  webhooks?: WebhooksAccess;
  /** Absent where this process runs no webhook relay: the page says breaker state is unknown here. */
  webhookBreakers?: WebhookBreakers;
  config: {
    adminToken: string | undefined;
    nodeEnv: string;
    /**
     * Key for the CSRF tokens. Replicas behind one load balancer need the same one; defaults to a
     * key derived from `adminToken`, or a random one per process when there is no token.
     */
    csrfSecret?: string | undefined;
  };
  clock?: Clock;
  /** Errors the pages recover from (shown as a generic message) are reported here for the log. */
  onError?(err: unknown, context: string): void;
}
