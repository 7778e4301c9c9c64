import { describe, expect, test } from "bun:test";
import { CSRF_COOKIE, UiSecurity, parseCookies, sameOrigin } from "./ui-security.ts";

const req = (headers: Record<string, string>, url = "http://shop.example:3000/ui/orders") => new Request(url, { method: "POST", headers });

describe("sameOrigin", () => {
  test("Sec-Fetch-Site decides when the browser sends it", () => {
    expect(sameOrigin(req({ "sec-fetch-site": "same-origin" })).ok).toBe(true);
    for (const site of ["same-site", "cross-site", "none"]) {
      // A trusted-looking Origin does not rescue a request the browser itself calls foreign.
      expect(sameOrigin(req({ "sec-fetch-site": site, origin: "http://shop.example:3000", host: "shop.example:3000" })).ok).toBe(false);
    }
  });

  test("otherwise the Origin must name the host that was addressed", () => {
    expect(sameOrigin(req({ origin: "http://shop.example:3000", host: "shop.example:3000" })).ok).toBe(true);
    // Another port on the same host is the same site but another origin.
    expect(sameOrigin(req({ origin: "http://shop.example:4000", host: "shop.example:3000" })).ok).toBe(false);
    expect(sameOrigin(req({ origin: "http://evil.example", host: "shop.example:3000" })).ok).toBe(false);
    expect(sameOrigin(req({ origin: "null", host: "shop.example:3000" })).ok).toBe(false);
  });

  test("behind a TLS proxy the scheme differs but the host matches", () => {
    expect(sameOrigin(req({ origin: "https://shop.example", "x-forwarded-host": "shop.example", host: "10.0.0.5:3000" })).ok).toBe(true);
  });

  test("a request that names no origin at all is refused", () => {
    expect(sameOrigin(req({})).ok).toBe(false);
  });
});

describe("UiSecurity CSRF tokens", () => {
  const sec = new UiSecurity({ adminToken: undefined, nodeEnv: "test", csrfSecret: "k1" });
  const firstVisit = sec.session(new Request("http://a.test/"));
  const cookie = firstVisit.setCookies[0]!;
  const id = parseCookies(cookie.split(";")[0]!)[CSRF_COOKIE]!;
  const post = (token: unknown, cookieId = id, origin = "http://a.test") =>
    sec.verify(req({ origin, host: "a.test", cookie: `${CSRF_COOKIE}=${cookieId}` }, "http://a.test/ui/orders"), token);

  test("a first visit gets an HttpOnly, SameSite=Strict cookie; later visits reuse it", () => {
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).not.toContain("Secure");
    const again = sec.session(new Request("http://a.test/", { headers: { cookie: `${CSRF_COOKIE}=${id}` } }));
    expect(again.setCookies).toEqual([]);
    expect(again.csrfToken).toBe(firstVisit.csrfToken);
  });

  test("the cookie is Secure when the page was served over https", () => {
    const s = sec.session(new Request("http://a.test/", { headers: { "x-forwarded-proto": "https" } }));
    expect(s.setCookies[0]).toContain("Secure");
  });

  test("the form's token must be the HMAC of this browser's cookie", () => {
    expect(post(firstVisit.csrfToken).ok).toBe(true);
    expect(post(undefined).ok).toBe(false);
    expect(post("").ok).toBe(false);
    // One character changed (the first: the last one of base64url carries padding bits, and the
    // token is random, so a fixed replacement would sometimes be the character already there).
    const token = firstVisit.csrfToken;
    expect(post((token[0] === "A" ? "B" : "A") + token.slice(1)).ok).toBe(false);
    // A cookie planted by someone else does not go with this token.
    expect(post(firstVisit.csrfToken, "AAAAAAAAAAAAAAAAAAAAAAAA").ok).toBe(false);
    // Nor does a token the attacker minted for a cookie of their own choosing, without the key.
    const other = new UiSecurity({ adminToken: undefined, nodeEnv: "test", csrfSecret: "k2" });
    const forged = other.session(new Request("http://a.test/", { headers: { cookie: `${CSRF_COOKIE}=${id}` } })).csrfToken;
    expect(post(forged).ok).toBe(false);
  });

  test("a valid token from another origin is still refused", () => {
    expect(post(firstVisit.csrfToken, id, "http://evil.test").ok).toBe(false);
  });

  test("replicas sharing the admin token accept each other's tokens", () => {
    const a = new UiSecurity({ adminToken: "s3cret", nodeEnv: "production" });
    const b = new UiSecurity({ adminToken: "s3cret", nodeEnv: "production" });
    const headers = { cookie: `${CSRF_COOKIE}=${id}` };
    expect(a.session(new Request("http://a.test/", { headers })).csrfToken).toBe(b.session(new Request("http://a.test/", { headers })).csrfToken);
  });
});

describe("UiSecurity admin rule", () => {
  test("the cookie or a bearer token, compared like the API does", () => {
    const sec = new UiSecurity({ adminToken: "s3cret", nodeEnv: "production" });
    expect(sec.admin(new Request("http://a.test/")).ok).toBe(false);
    expect(sec.admin(new Request("http://a.test/", { headers: { cookie: "valerix_admin=s3cret" } })).ok).toBe(true);
    expect(sec.admin(new Request("http://a.test/", { headers: { cookie: "valerix_admin=wrong" } })).ok).toBe(false);
    expect(sec.admin(new Request("http://a.test/", { headers: { authorization: "Bearer s3cret" } })).ok).toBe(true);
    const cookie = sec.adminCookie(new Request("http://a.test/"), "s3cret");
    expect(cookie).toMatch(/^valerix_admin=s3cret; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    expect(sec.clearAdminCookie(new Request("http://a.test/"))).toContain("Max-Age=0");
  });

  test("production without a token is closed; development without one is open", () => {
    expect(new UiSecurity({ adminToken: undefined, nodeEnv: "production" }).admin(new Request("http://a.test/"))).toEqual({ ok: false, code: "admin_closed" });
    expect(new UiSecurity({ adminToken: undefined, nodeEnv: "development" }).admin(new Request("http://a.test/")).ok).toBe(true);
  });
});

describe("parseCookies", () => {
  test("first value wins, quotes and percent-encoding are undone, junk is skipped", () => {
    expect(parseCookies('a=1; b="two"; a=3; junk; c=%20x')).toEqual({ a: "1", b: "two", c: " x" });
    expect(parseCookies(null)).toEqual({});
  });
});
