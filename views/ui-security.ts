import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { adminVerdict, bearerToken, type AdminAuthConfig, type AdminVerdict } from "../src/http/admin-auth.ts";
import { ADMIN_COOKIE } from "../src/http/guards.ts";

/**
 * Forgery protection for the pages' state-changing requests, in two independent layers:
 *
 * 1. Same origin: browsers say where a request comes from (`Sec-Fetch-Site`, else `Origin`). A
 *    request that does not say so is refused too: every browser that can be tricked into a
 *    forged POST sends one of them, and scripts have the JSON API.
 * 2. A signed double-submit token: a random `valerix_csrf` cookie, and in each form an HMAC of it
 *    under a server key. A sibling subdomain that can plant cookies still cannot mint the token.
 *
 * `SameSite=Strict` on both cookies is a third layer, but not one to lean on alone: another port
 * on the same host is the same *site*, so the browser would send the cookie along.
 */
export const CSRF_COOKIE = "valerix_csrf";
export const CSRF_FIELD = "csrf_token";
/** The admin cookie lives as long as a working day; the token itself never changes hands again. */
const ADMIN_COOKIE_MAX_AGE_S = 8 * 3600;

export function parseCookies(header: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (!name || name in out) continue;
    const value = part.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1");
    try {
      out[name] = decodeURIComponent(value);
    } catch {
      out[name] = value;
    }
  }
  return out;
}

export type OriginVerdict = { ok: true } | { ok: false; reason: string };

/** The host the browser addressed, as a proxy in front of us saw it. */
function requestHost(request: Request): string {
  return request.headers.get("x-forwarded-host")?.split(",")[0]!.trim() || request.headers.get("host") || new URL(request.url).host;
}

/**
 * `sameOrigin(request)` → `{ ok: true }` only for requests a page of this origin made.
 * Schemes are not compared: behind a TLS-terminating proxy the page is https and we see http.
 */
export function sameOrigin(request: Request): OriginVerdict {
  const site = request.headers.get("sec-fetch-site");
  if (site !== null) {
    return site === "same-origin" ? { ok: true } : { ok: false, reason: `Sec-Fetch-Site is "${site}"` };
  }
  const origin = request.headers.get("origin");
  if (origin === null) return { ok: false, reason: "the request names no origin" };
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return { ok: false, reason: "the Origin header is malformed" };
  }
  return host !== "" && host === requestHost(request) ? { ok: true } : { ok: false, reason: `Origin ${origin} is another site` };
}

const isHttps = (request: Request) =>
  new URL(request.url).protocol === "https:" || request.headers.get("x-forwarded-proto")?.split(",")[0]!.trim() === "https";

export function serializeCookie(request: Request, name: string, value: string, maxAgeS?: number): string {
  const parts = [`${name}=${encodeURIComponent(value)}`, "Path=/", "HttpOnly", "SameSite=Strict"];
  if (maxAgeS !== undefined) parts.push(`Max-Age=${maxAgeS}`);
  if (isHttps(request)) parts.push("Secure");
  return parts.join("; ");
}

export interface UiSession {
  /** The token to put in this response's forms. */
  csrfToken: string;
  /** Set-Cookie values the response must carry (a fresh CSRF cookie on a first visit). */
  setCookies: string[];
  admin: AdminVerdict;
  /** True when an admin token is configured at all (so the page may offer to sign out). */
  tokenConfigured: boolean;
}

export class UiSecurity {
  private readonly key: Buffer;

  constructor(private readonly cfg: AdminAuthConfig & { csrfSecret?: string | undefined }) {
    const secret = cfg.csrfSecret ?? (cfg.adminToken ? `valerix-ui-csrf\0${cfg.adminToken}` : undefined);
    this.key = secret ? createHash("sha256").update(secret).digest() : randomBytes(32);
  }

  private sign(id: string): string {
    return createHmac("sha256", this.key).update(id).digest("base64url");
  }

  /** Reads (or starts) the browser's session: CSRF token and admin standing. */
  session(request: Request): UiSession {
    const cookies = parseCookies(request.headers.get("cookie"));
    const setCookies: string[] = [];
    let id = cookies[CSRF_COOKIE];
    if (!id || !/^[A-Za-z0-9_-]{16,64}$/.test(id)) {
      id = randomBytes(24).toString("base64url");
      setCookies.push(serializeCookie(request, CSRF_COOKIE, id));
    }
    return { csrfToken: this.sign(id), setCookies, admin: this.admin(request), tokenConfigured: !!this.cfg.adminToken };
  }

  /** The same rule as the admin API: a bearer token, or the cookie the login form set. */
  admin(request: Request): AdminVerdict {
    const cookie = parseCookies(request.headers.get("cookie"))[ADMIN_COOKIE];
    return adminVerdict(this.cfg, bearerToken(request.headers.get("authorization")) ?? cookie ?? null);
  }

  /** Checks a state-changing request: same origin, then the form's token against the cookie. */
  verify(request: Request, submittedToken: unknown): OriginVerdict {
    const origin = sameOrigin(request);
    if (!origin.ok) return origin;
    const id = parseCookies(request.headers.get("cookie"))[CSRF_COOKIE];
    if (!id) return { ok: false, reason: "the session cookie is missing; reload the page" };
    if (typeof submittedToken !== "string" || submittedToken === "") return { ok: false, reason: "the form carries no CSRF token" };
    const expected = Buffer.from(this.sign(id));
    const given = Buffer.from(submittedToken);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
      return { ok: false, reason: "the CSRF token does not match this session; reload the page" };
    }
    return { ok: true };
  }

  /** Whether a presented admin token is the right one. */
  checkToken(presented: string): AdminVerdict {
    return adminVerdict(this.cfg, presented);
  }

  adminCookie(request: Request, token: string): string {
    return serializeCookie(request, ADMIN_COOKIE, token, ADMIN_COOKIE_MAX_AGE_S);
  }

  clearAdminCookie(request: Request): string {
    return serializeCookie(request, ADMIN_COOKIE, "", 0);
  }
}
