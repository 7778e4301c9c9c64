/**
 * Keys whose request this process saw fail on the database after it had tried to claim them:
 * no request here holds them any more, so a retry need not wait out the in-flight lease. The
 * order row stays the truth; this only says "do not answer 409, read the order". Kept per key
 * and order id (a later claim of the same key by a new order is not abandoned), for one lease,
 * and bounded, oldest first out.
 */
export class AbandonedKeys {
  private readonly entries = new Map<string, { orderId: string; until: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly max = 10_000,
  ) {}

  add(key: string, orderId: string, now: number): void {
    this.entries.delete(key);
    this.entries.set(key, { orderId, until: now + this.ttlMs });
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }

  /** True when `key` was abandoned here with `orderId`, within the last lease. */
  has(key: string, orderId: string, now: number): boolean {
    const e = this.entries.get(key);
    if (!e) return false;
    if (e.until <= now) {
      this.entries.delete(key);
      return false;
    }
    return e.orderId === orderId;
  }
}
