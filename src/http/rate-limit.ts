import { systemClock, type Clock } from "../../platform/clock.ts";
import { clientAddress } from "./client-address.ts";
import { formatAddress, parseAddress, TrustedProxies } from "../../platform/net/ip-address.ts";
import { problem } from "./problem.ts";

export type RateVerdict = { ok: true; remaining: number } | { ok: false; retryAfterS: number };

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Token buckets, one per client: `perMin` tokens of burst, refilled at `perMin` per minute.
 * Memory stays bounded two ways. A bucket left alone for a minute is full again, which is the
 * same as having none, so idle ones are dropped as requests pass (oldest first: the map keeps
 * least-recently-used order). And past `maxClients` the least recently seen client is forgotten,
 * which at worst hands that client a fresh bucket: lenient, never wrong the other way.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly fullAfterMs: number;

  constructor(
    readonly perMin: number,
    private readonly clock: Pick<Clock, "now"> = systemClock,
    readonly maxClients = 100_000,
  ) {
    if (!(perMin > 0)) throw new RangeError("perMin must be positive");
    this.perMs = perMin / 60_000;
    this.fullAfterMs = 60_000;
  }

  /**
   * Takes one token for `key` if there is one.
   *
   * @example buckets.take("203.0.113.7") // { ok: false, retryAfterS: 1 } once the burst is spent
   */
  take(key: string): RateVerdict {
    const now = this.clock.now();
    this.evictIdle(now);
    const prev = this.buckets.get(key);
    const bucket: Bucket = prev
      ? { tokens: Math.min(this.perMin, prev.tokens + Math.max(0, now - prev.at) * this.perMs), at: now }
      : { tokens: this.perMin, at: now };
    const ok = bucket.tokens >= 1;
    if (ok) bucket.tokens -= 1;
    // Delete then set: the map's order becomes least-recently-used first.
    this.buckets.delete(key);
    this.buckets.set(key, bucket);
    if (this.buckets.size > this.maxClients) this.buckets.delete(this.buckets.keys().next().value!);
    return ok ? { ok, remaining: Math.floor(bucket.tokens) } : { ok, retryAfterS: Math.max(1, Math.ceil((1 - bucket.tokens) / this.perMs / 1000)) };
  }

  /** Clients currently tracked. */
  get size(): number {
    return this.buckets.size;
  }

  private evictIdle(now: number): void {
    // A few per call keeps each request O(1); every bucket is touched once per insertion, so
    // eviction keeps pace with growth.
    for (let i = 0; i < 8; i++) {
      const first = this.buckets.entries().next();
      if (first.done || now - first.value[1].at < this.fullAfterMs) return;
      this.buckets.delete(first.value[0]);
    }
  }
}

/**
 * The bucket key for an address: IPv4 as is; IPv6 by its /64, since one host usually holds a whole
 * /64 and could otherwise take a fresh bucket per address; IPv4-mapped IPv6 as the IPv4 address.
 *
 * @example clientKey("2001:db8::1") // "2001:db8:0:0::/64"
 */
export function clientKey(ip: string): string {
  // Bun reports link-local peers with their zone (fe80::1%eth0); the zone is not part of the host.
  const address = parseAddress(ip.split("%")[0]!);
  if (!address) return ip;
  const text = formatAddress(address);
  return text.includes(".") ? text : `${text.split(":").slice(0, 4).join(":")}::/64`;
}

/** Order creation only: the one endpoint that writes for anyone and costs a database transaction. */
function isOrderCreation(request: Request): boolean {
  if (request.method !== "POST") return false;
  const path = new URL(request.url).pathname;
  return path === "/api/orders" || path === "/api/orders/";
}

export interface RateLimitOptions {
  maxClients?: number;
  /**
   * Addresses and CIDR ranges of proxies whose X-Forwarded-For is believed (see `clientAddress`).
   * None by default: the peer address is the client.
   */
  trustedProxies?: readonly string[];
  /**
   * Which client a request belongs to, given the client's address (the peer's, or the one found
   * through trusted proxies); by default that address's `clientKey`.
   */
  keyOf?: (request: Request, clientIp: string) => string;
}

/**
 * A `FetchOptions.gate` that limits order creation per client to `perMin` a minute (with a burst
 * of as many), answering 429 with `Retry-After`. `perMin` 0 turns it off. Keyed by the client's
 * address: the peer's, unless the peer is one of `trustedProxies`; then the first address in
 * X-Forwarded-For, read from the right, that is not a trusted proxy. Throws a RangeError for a
 * malformed `trustedProxies` entry.
 *
 * @example createFetch(app, deps, { isDraining, gate: createRateLimitGate(600, systemClock, { trustedProxies: ["10.0.0.0/8"] }) })
 */
export function createRateLimitGate(
  perMin: number,
  clock: Pick<Clock, "now"> = systemClock,
  opts: RateLimitOptions = {},
): (request: Request, clientIp: string) => Response | undefined {
  const trusted = new TrustedProxies(opts.trustedProxies);
  if (perMin <= 0) return () => undefined;
  const buckets = new TokenBuckets(perMin, clock, opts.maxClients);
  const keyOf = opts.keyOf ?? ((_request: Request, ip: string) => clientKey(ip));
  return (request, clientIp) => {
    if (!isOrderCreation(request)) return undefined;
    const client = clientAddress(clientIp, request.headers.get("x-forwarded-for"), trusted);
    const verdict = buckets.take(keyOf(request, client));
    if (verdict.ok) return undefined;
    return problem(
      "rate_limited",
      `Order creation is limited to ${perMin} per minute per client; retry in ${verdict.retryAfterS} s.`,
      { retry_after_s: verdict.retryAfterS },
      { "retry-after": String(verdict.retryAfterS) },
    );
  };
}
