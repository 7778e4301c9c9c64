import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { formatAddress, inRange, parseAddress, parseRange } from "../../../platform/net/ip-address.ts";
import { InvalidRequestError } from "../../../platform/errors.ts";

/**
 * Where a webhook may point. `http(s)` only, always. With `refusePrivate` (production unless
 * WEBHOOK_ALLOW_PRIVATE=true), a host that resolves to a loopback, link-local, private, shared or
 * unspecified address is refused: checked when the subscription is made and again before every
 * attempt (DNS may have changed). Redirects are never followed, so a 3xx cannot lead inside.
 */

const PRIVATE_RANGES = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "224.0.0.0/4",
  "240.0.0.0/4",
  "::/128",
  "::1/128",
  "fc00::/7",
  "fe80::/10",
  "ff00::/8",
].map(parseRange);

export class WebhookUrlRefusedError extends InvalidRequestError {}

/** `isPrivateAddress("10.1.2.3")` → true; `isPrivateAddress("93.184.216.34")` → false. */
export function isPrivateAddress(text: string): boolean {
  const a = parseAddress(text.replace(/^\[|\]$/g, ""));
  if (!a) return true; // what cannot be read is not trusted
  return PRIVATE_RANGES.some((r) => inRange(a, r));
}

export type Resolver = (host: string) => Promise<string[]>;
export const dnsResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((r) => r.address);

/** The URL's syntax: absolute, `http:` or `https:`, no credentials. Throws a 400 error. */
export function parseWebhookUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new WebhookUrlRefusedError("url must be an absolute http(s) URL.", { field: "url" });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new WebhookUrlRefusedError("url must use http or https.", { field: "url" });
  if (url.username || url.password) throw new WebhookUrlRefusedError("url must not carry credentials.", { field: "url" });
  return url;
}

/**
 * Resolves the host and refuses it when any address it names is private. Throws
 * `WebhookUrlRefusedError` (a 400 at registration, a failed attempt at delivery).
 */
export async function checkDestination(url: URL, resolve: Resolver = dnsResolver): Promise<void> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = await resolve(host);
    } catch {
      throw new WebhookUrlRefusedError(`The host "${host}" does not resolve.`, { field: "url" });
    }
  }
  const bad = addresses.find(isPrivateAddress);
  if (addresses.length === 0 || bad !== undefined) {
    const shown = bad === undefined ? "no address" : formatAddress(parseAddress(bad) ?? new Uint8Array(16));
    throw new WebhookUrlRefusedError(`The host "${host}" resolves to ${shown}, a loopback, link-local or private address; refused in production (WEBHOOK_ALLOW_PRIVATE=true allows it).`, { field: "url" });
  }
}
