/**
 * Which address a request comes from when proxies stand in front of us. Only proxies the operator
 * names are believed, and only about the hop before them: X-Forwarded-For is read from the right,
 * past the trusted proxies, and the first address no trusted proxy owns is the client. Everything
 * left of it was written by that client and proves nothing. Addresses and ranges themselves are
 * `platform/net/ip-address.ts`.
 */
import { formatAddress, parseAddress, parseV6, type Address, type TrustedProxies } from "../../platform/net/ip-address.ts";

/**
 * One X-Forwarded-For entry: a bare address, or the forms some proxies write, `192.0.2.1:4711`,
 * `[2001:db8::1]` and `[2001:db8::1]:4711`. Anything else is null.
 */
function parseHop(text: string): Address | null {
  const hop = text.trim();
  const bracketed = /^\[([^\]]*)\](?::\d{1,5})?$/.exec(hop);
  if (bracketed) return bracketed[1]!.includes(":") ? parseV6(bracketed[1]!) : null;
  const withPort = /^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}):\d{1,5}$/.exec(hop);
  return parseAddress(withPort ? withPort[1]! : hop);
}

/**
 * The client's address for a request that reached us from `peer`. An untrusted peer (or no
 * trusted proxies at all) is the client, whatever the headers say. A trusted peer's
 * X-Forwarded-For is walked from the right, skipping trusted addresses; the first untrusted one
 * is the client. A missing header, an entry that is not an address, or a chain of nothing but
 * trusted addresses ends the walk at the last address examined (the peer, if none was).
 * Never throws; never returns a header's text, only the peer as given or a formatted address.
 *
 * @example clientAddress("10.0.0.5", "198.51.100.1, 203.0.113.7, 10.0.0.4", new TrustedProxies(["10.0.0.0/8"])) // "203.0.113.7"
 */
export function clientAddress(peer: string, forwardedFor: string | null, trusted: TrustedProxies): string {
  if (trusted.isEmpty || !forwardedFor) return peer;
  // Bun reports link-local peers with their zone (fe80::1%eth0); the zone says nothing about trust.
  const peerAddress = parseAddress(peer.split("%")[0]!);
  if (!peerAddress || !trusted.has(peerAddress)) return peer;
  let last = peer;
  const hops = forwardedFor.split(",");
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = parseHop(hops[i]!);
    if (!hop) return last;
    last = formatAddress(hop);
    if (!trusted.has(hop)) return last;
  }
  return last;
}
