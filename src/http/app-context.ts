import { adminVerdict, bearerToken, type AdminAuthConfig } from "./admin-auth.ts";
import { problem } from "./problem.ts";

/** An Elysia beforeHandle hook: returns a problem response to refuse, nothing to let through. */
export type AdminGuard = (ctx: { request: Request; cookie?: Record<string, { value?: unknown }> }) => Response | undefined;

export const ADMIN_COOKIE = "valerix_admin";

export function createAdminGuard(cfg: AdminAuthConfig): AdminGuard {
  return ({ request, cookie }) => {
    const fromCookie = cookie?.[ADMIN_COOKIE]?.value;
    const presented = bearerToken(request.headers.get("authorization")) ?? (typeof fromCookie === "string" ? fromCookie : null);
    const v = adminVerdict(cfg, presented);
    if (v.ok) return undefined;
    return v.code === "unauthorized"
      ? problem("unauthorized", "Send Authorization: Bearer <ADMIN_TOKEN>.", {}, { "www-authenticate": 'Bearer realm="valerix-admin"' })
      : problem("admin_closed", "Set ADMIN_TOKEN to use the admin API in production.");
  };
}
