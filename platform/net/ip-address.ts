/**
 * IP addresses and ranges, for the configuration (TRUSTED_PROXIES) and for the HTTP layer's
 * `clientAddress` (`src/http/client-address.ts`), which decides whom to believe.
 *
 * Addresses are held as 16 bytes, IPv4 in its IPv4-mapped IPv6 form (::ffff:a.b.c.d), so one
 * comparison serves both families and a peer Bun reports as ::ffff:10.0.0.5 matches 10.0.0.0/8.
 */

export type Address = Uint8Array;

/** An address range: the first `bits` bits of `base` (base's remaining bits are zero). */
export interface AddressRange {
  base: Address;
  bits: number;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HEX_GROUP = /^[0-9a-f]{1,4}$/i;

/** Dotted quad, strictly: four decimal numbers 0–255, no leading zeros (which some parsers read as octal). */
function parseV4(text: string): number[] | null {
  const m = V4.exec(text);
  if (!m) return null;
  const parts = m.slice(1).map((p) => (p.length > 1 && p.startsWith("0") ? Number.NaN : Number(p)));
  return parts.every((n) => n <= 255) ? parts : null;
}

export function parseV6(text: string): Address | null {
  if (text.length > 45) return null;
  let hex = text;
  if (text.includes(".")) {
    // A trailing dotted quad stands for the last two groups (::ffff:192.0.2.1).
    const at = text.lastIndexOf(":");
    const quad = at < 0 ? null : parseV4(text.slice(at + 1));
    if (!quad) return null;
    hex = `${text.slice(0, at + 1)}${((quad[0]! << 8) | quad[1]!).toString(16)}:${((quad[2]! << 8) | quad[3]!).toString(16)}`;
  }
  const halves = hex.split("::");
  if (halves.length > 2) return null;
  const groupsOf = (h: string) => (h === "" ? [] : h.split(":"));
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i]!;
    if (!HEX_GROUP.test(g)) return null;
    const n = parseInt(g, 16);
    out[2 * i] = n >> 8;
    out[2 * i + 1] = n & 0xff;
  }
  return out;
}

function mapped(quad: number[]): Address {
  return Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...quad);
}

const isMapped = (a: Address) => a.subarray(0, 10).every((b) => b === 0) && a[10] === 0xff && a[11] === 0xff;

/**
 * A bare IPv4 or IPv6 address (no port, brackets or zone) as 16 bytes, or null.
 *
 * @example parseAddress("192.0.2.1") // the bytes of ::ffff:192.0.2.1
 */
export function parseAddress(text: string): Address | null {
  if (text.includes(":")) return parseV6(text);
  const quad = parseV4(text);
  return quad ? mapped(quad) : null;
}

/**
 * One canonical spelling per address: IPv4 (and IPv4-mapped IPv6) as a dotted quad, other IPv6 as
 * eight hex groups. Whatever a header said, the result is an address, never the header's text.
 */
export function formatAddress(a: Address): string {
  if (isMapped(a)) return `${a[12]}.${a[13]}.${a[14]}.${a[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((a[i]! << 8) | a[i + 1]!).toString(16));
  return groups.join(":");
}

/**
 * An address or CIDR range as an operator writes it: `10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`,
 * `::1`. Throws a RangeError saying what is wrong, including bits set past the prefix
 * (`10.1.0.0/8`), which usually means a typo.
 *
 * @example parseRange("10.0.0.0/8") // { base: ::ffff:10.0.0.0, bits: 104 }
 */
export function parseRange(entry: string): AddressRange {
  const slash = entry.indexOf("/");
  const addressText = slash < 0 ? entry : entry.slice(0, slash);
  const base = parseAddress(addressText);
  if (!base) throw new RangeError(`"${entry}" is not an IPv4 or IPv6 address or CIDR range`);
  const isV4 = !addressText.includes(":");
  const max = isV4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const prefix = entry.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) throw new RangeError(`"${entry}": the prefix length must be 0–${max}`);
    bits = Number(prefix);
  }
  const range = { base, bits: isV4 ? 96 + bits : bits };
  const network = Uint8Array.from(base, (b, i) => b & byteMask(range.bits, i));
  if (!network.every((b, i) => b === base[i])) {
    throw new RangeError(`"${entry}" has bits set past its /${bits} prefix; the range is ${formatAddress(network)}/${bits}`);
  }
  return range;
}

/** The mask byte `i` of a `bits`-long prefix keeps. */
function byteMask(bits: number, i: number): number {
  const left = bits - 8 * i;
  return left >= 8 ? 0xff : left <= 0 ? 0 : (0xff << (8 - left)) & 0xff;
}

export function inRange(a: Address, range: AddressRange): boolean {
  for (let i = 0; i < 16; i++) {
    const mask = byteMask(range.bits, i);
    if (mask === 0) return true;
    if ((a[i]! & mask) !== range.base[i]) return false;
  }
  return true;
}

/** Which peers may vouch for the hop before them; built once from the configured entries. */
export class TrustedProxies {
  private readonly ranges: readonly AddressRange[];

  /** Throws a RangeError for an entry `parseRange` refuses. */
  constructor(entries: readonly string[] = []) {
    this.ranges = entries.map(parseRange);
  }

  get isEmpty(): boolean {
    return this.ranges.length === 0;
  }

  has(a: Address): boolean {
    return this.ranges.some((r) => inRange(a, r));
  }
}
