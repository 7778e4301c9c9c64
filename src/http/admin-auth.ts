import { createHash, timingSafeEqual } from "node:crypto";

export interface AdminAuthConfig {
  adminToken: string | undefined;
  nodeEnv: string;
}

export type AdminVerdict = { ok: true } | { ok: false; code: "unauthorized" | "admin_closed" };

const digest = (s: string) => createHash("sha256").update(s).digest();

/**
 * The admin rule, shared by the API and the pages: with a token, only that bearer token (compared
 * in constant time over equal-length digests); in production without one, closed; in development
 * without one, open (and the start-up log says so loudly).
 */
export function adminVerdict(cfg: AdminAuthConfig, presented: string | null | undefined): AdminVerdict {
  if (!cfg.adminToken) return cfg.nodeEnv === "production" ? { ok: false, code: "admin_closed" } : { ok: true };
  if (!presented) return { ok: false, code: "unauthorized" };
  return timingSafeEqual(digest(presented), digest(cfg.adminToken)) ? { ok: true } : { ok: false, code: "unauthorized" };
}

export function bearerToken(header: string | null | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S.*)$/i.exec(header.trim());
  return m ? m[1]!.trim() : null;
}
