import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { clientAddress } from "./client-address.ts";
import { formatAddress, inRange, parseAddress, parseRange, TrustedProxies } from "../../platform/net/ip-address.ts";

const within = (address: string, range: string) => inRange(parseAddress(address)!, parseRange(range));

describe("parseAddress / formatAddress", () => {
  test("IPv4, IPv6 in its spellings, and IPv4-mapped IPv6 come out in one canonical form", () => {
    const canonical = (s: string) => formatAddress(parseAddress(s)!);
    expect(canonical("192.0.2.1")).toBe("192.0.2.1");
    expect(canonical("::ffff:192.0.2.1")).toBe("192.0.2.1");
    expect(canonical("::FFFF:c000:0201")).toBe("192.0.2.1");
    expect(canonical("2001:db8::1")).toBe("2001:db8:0:0:0:0:0:1");
    expect(canonical("2001:0DB8:0000:0000:0000:0000:0000:0001")).toBe("2001:db8:0:0:0:0:0:1");
    expect(canonical("::")).toBe("0:0:0:0:0:0:0:0");
    expect(canonical("::1")).toBe("0:0:0:0:0:0:0:1");
    expect(canonical("fe80::")).toBe("fe80:0:0:0:0:0:0:0");
    expect(canonical("64:ff9b::192.0.2.1")).toBe("64:ff9b:0:0:0:0:c000:201");
  });

  test.each([
    "",
    "localhost",
    "192.0.2",
    "192.0.2.256",
    "192.0.2.01",
    "192.0.2.1.5",
    " 192.0.2.1",
    "1.2.3.-4",
    "0x7f.0.0.1",
    ":::",
    ":1",
    "1:",
    "1::2::3",
    "1:2:3:4:5:6:7:8:9",
    "1::2:3:4:5:6:7:8",
    "12345::",
    "g::1",
    "::ffff:192.0.2",
    "::192.0.2.1:1",
    "fe80::1%eth0",
    "[::1]",
    "::ffff:1.2.3.4".repeat(4),
  ])("%p is not an address", (text) => {
    expect(parseAddress(text)).toBeNull();
  });
});

describe("parseRange and matching", () => {
  test("IPv4 ranges", () => {
    expect(within("10.255.3.4", "10.0.0.0/8")).toBe(true);
    expect(within("11.0.0.0", "10.0.0.0/8")).toBe(false);
    expect(within("9.255.255.255", "10.0.0.0/8")).toBe(false);
    expect(within("172.16.0.1", "172.16.0.0/12")).toBe(true);
    expect(within("172.31.255.255", "172.16.0.0/12")).toBe(true);
    expect(within("172.32.0.0", "172.16.0.0/12")).toBe(false);
    expect(within("192.0.2.7", "192.0.2.7")).toBe(true);
    expect(within("192.0.2.8", "192.0.2.7")).toBe(false);
    expect(within("192.0.2.8", "192.0.2.7/32")).toBe(false);
    expect(within("203.0.113.9", "0.0.0.0/0")).toBe(true);
    // 0.0.0.0/0 is every IPv4 address, not every address.
    expect(within("2001:db8::1", "0.0.0.0/0")).toBe(false);
  });

  test("IPv6 ranges", () => {
    expect(within("2001:db8:ffff::1", "2001:db8::/32")).toBe(true);
    expect(within("2001:db9::", "2001:db8::/32")).toBe(false);
    expect(within("fd12:3456:789a:1::5", "fc00::/7")).toBe(true);
    expect(within("fe00::1", "fc00::/7")).toBe(false);
    expect(within("2001:db8::1", "2001:db8::1/128")).toBe(true);
    expect(within("2001:db8::2", "2001:db8::1")).toBe(false);
    expect(within("2001:db8::a", "2001:db8::8/125")).toBe(true);
    expect(within("2001:db8::10", "2001:db8::8/125")).toBe(false);
    expect(within("::1", "::/0")).toBe(true);
  });

  test("IPv4-mapped IPv6: a peer Bun reports as ::ffff:a.b.c.d matches IPv4 entries, and the other way round", () => {
    expect(within("::ffff:127.0.0.1", "127.0.0.1")).toBe(true);
    expect(within("::ffff:10.1.2.3", "10.0.0.0/8")).toBe(true);
    expect(within("::ffff:11.1.2.3", "10.0.0.0/8")).toBe(false);
    expect(within("10.1.2.3", "::ffff:10.0.0.0/104")).toBe(true);
    expect(within("11.1.2.3", "::ffff:10.0.0.0/104")).toBe(false);
    // ::1 and 127.0.0.1 are both loopback, but not the same address.
    expect(within("::1", "127.0.0.1")).toBe(false);
  });

  test.each([
    ["10.0.0.0/33", "prefix length must be 0–32"],
    ["2001:db8::/129", "prefix length must be 0–128"],
    ["10.0.0.0/", "prefix length"],
    ["10.0.0.0/8/8", "prefix length"],
    ["10.0.0.0/-1", "prefix length"],
    ["10.0.0.0/ 8", "prefix length"],
    ["10.1.0.0/8", "the range is 10.0.0.0/8"],
    ["2001:db8::1/64", "the range is 2001:db8:0:0:0:0:0:0/64"],
    ["10.0.0", "not an IPv4 or IPv6 address"],
    ["/8", "not an IPv4 or IPv6 address"],
    ["ingress-nginx", "not an IPv4 or IPv6 address"],
    ["*", "not an IPv4 or IPv6 address"],
  ])("%p is refused: %s", (entry, message) => {
    expect(() => parseRange(entry)).toThrow(RangeError);
    expect(() => parseRange(entry)).toThrow(message);
  });
});

describe("clientAddress", () => {
  const proxies = new TrustedProxies(["10.0.0.0/8", "2001:db8:a::/48"]);
  const peer = "10.0.0.5";

  test("no trusted proxies, or an untrusted peer: the peer is the client, whatever the header says", () => {
    expect(clientAddress(peer, "203.0.113.7", new TrustedProxies())).toBe(peer);
    expect(clientAddress("198.51.100.1", "203.0.113.7", proxies)).toBe("198.51.100.1");
    expect(clientAddress("198.51.100.1", "203.0.113.7, 10.0.0.4", proxies)).toBe("198.51.100.1");
    expect(clientAddress("2001:db8:b::1", "203.0.113.7", proxies)).toBe("2001:db8:b::1");
    // What Bun reports when there is no server to ask.
    expect(clientAddress("local", "203.0.113.7", proxies)).toBe("local");
  });

  test("a trusted peer: the header is walked from the right, past trusted proxies, to the first address that is not one", () => {
    expect(clientAddress(peer, "203.0.113.7", proxies)).toBe("203.0.113.7");
    expect(clientAddress(peer, "203.0.113.7, 10.0.0.4", proxies)).toBe("203.0.113.7");
    expect(clientAddress(peer, "203.0.113.7,10.0.0.4,10.9.9.9", proxies)).toBe("203.0.113.7");
    expect(clientAddress("::ffff:10.0.0.5", "203.0.113.7", proxies)).toBe("203.0.113.7");
    expect(clientAddress("2001:db8:a::5", "2001:db8:c::1, 2001:db8:a:1::1", proxies)).toBe("2001:db8:c:0:0:0:0:1");
    expect(clientAddress("fe80::1%eth0", "203.0.113.7", new TrustedProxies(["fe80::/10"]))).toBe("203.0.113.7");
  });

  test("entries the client wrote, left of its own address, change nothing", () => {
    expect(clientAddress(peer, "198.51.100.66, 203.0.113.7", proxies)).toBe("203.0.113.7");
    // Even when the client claims to be a trusted proxy, or the proxy's clients.
    expect(clientAddress(peer, "192.0.2.1, 10.0.0.4, 203.0.113.7, 10.0.0.4", proxies)).toBe("203.0.113.7");
    expect(clientAddress(peer, "garbage, 203.0.113.7", proxies)).toBe("203.0.113.7");
  });

  test("a chain of nothing but trusted proxies: the leftmost is the client", () => {
    expect(clientAddress(peer, "10.0.0.3, 10.0.0.4", proxies)).toBe("10.0.0.3");
    expect(clientAddress(peer, "10.0.0.3", proxies)).toBe("10.0.0.3");
  });

  test("a missing or empty header: the peer", () => {
    expect(clientAddress(peer, null, proxies)).toBe(peer);
    expect(clientAddress(peer, "", proxies)).toBe(peer);
  });

  test("an entry that is not an address ends the walk at the last address examined", () => {
    for (const header of ["   ", "unknown", "_hidden", "203.0.113.7 203.0.113.8", "203.0.113.7;", "203.0.113.07", "999.0.0.1", "203.0.113.7,", "for=203.0.113.7", "\u0000", "💥"]) {
      expect(clientAddress(peer, header, proxies), header).toBe(peer);
    }
    expect(clientAddress(peer, "203.0.113.7, nonsense, 10.0.0.4", proxies)).toBe("10.0.0.4");
    expect(clientAddress(peer, "203.0.113.7,,10.0.0.4", proxies)).toBe("10.0.0.4");
  });

  test("ports and brackets some proxies add are understood, and dropped", () => {
    expect(clientAddress(peer, "203.0.113.7:4711", proxies)).toBe("203.0.113.7");
    expect(clientAddress(peer, "[2001:db8:c::1]:4711, 10.0.0.4:80", proxies)).toBe("2001:db8:c:0:0:0:0:1");
    expect(clientAddress(peer, "[2001:db8:c::1]", proxies)).toBe("2001:db8:c:0:0:0:0:1");
    expect(clientAddress(peer, "[203.0.113.7]", proxies)).toBe(peer);
    expect(clientAddress(peer, "2001:db8:c::1:4711", proxies)).toBe("2001:db8:c:0:0:0:1:4711");
  });

  test("whatever a client prepends, the proxy's last word decides", () => {
    const address = fc.oneof(fc.ipV4(), fc.ipV6());
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.ipV4(), (prefix, client) => {
        fc.pre(!proxies.has(parseAddress(client)!));
        expect(clientAddress(peer, `${prefix}, ${client}, 10.0.0.4`, proxies)).toBe(formatAddress(parseAddress(client)!));
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string({ maxLength: 40 }), address), { maxLength: 8 }), fc.constantFrom(peer, "::ffff:10.0.0.5", "198.51.100.1"), (hops, from) => {
        const found = clientAddress(from, hops.join(","), proxies);
        // Never the header's text: the peer as given, or an address in its canonical spelling, so
        // a header yields no more distinct rate-limit keys than real addresses would.
        if (found !== from) expect(formatAddress(parseAddress(found)!)).toBe(found);
      }),
      { numRuns: 1_000 },
    );
  });

  test("never throws", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 300 }), (header) => {
        clientAddress(peer, header, proxies);
        clientAddress("2001:db8:a::1", header, proxies);
      }),
      { numRuns: 300 },
    );
  });
});
