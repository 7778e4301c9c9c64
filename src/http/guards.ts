import { adminVerdict, bearerToken, type AdminAuthConfig } from "./admin-auth.ts";
import { problem } from "./problem.ts";

/**
 * An Elysia beforeHandle hook: returns a problem response to refuse, nothing to let through.
 * It takes the request alone: Elysia decides what to parse from the parameters its hooks and
 * handlers name, app-wide, so one hook naming `cookie` made every request to every route parse
 * its cookies.
 */
export type AdminGuard = (ctx: { request: Request }) => Response | undefined;

export const ADMIN_COOKIE = "valerix_admin";

/** The admin cookie straight from the header (Elysia's cookie parsing is never asked for). */
export function adminCookie(header: string | null): string | null {
  if (!header) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== ADMIN_COOKIE) continue;
    const raw = part.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1");
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw;
    }
  }
  return null;
}

/**
 * The admin check as a hook. Used twice: by `createFetch` for every path under `/api/admin`
 * before the body is read (so an anonymous client learns nothing from validation and costs no
 * parsing), and by each admin route, so a route mounted elsewhere is still guarded.
 */
export function createAdminGuard(cfg: AdminAuthConfig): AdminGuard {
  return ({ request }) => {
    const presented = bearerToken(request.headers.get("authorization")) ?? adminCookie(request.headers.get("cookie"));
    const v = adminVerdict(cfg, presented);
    if (v.ok) return undefined;
    return v.code === "unauthorized"
      ? problem("unauthorized", "Send Authorization: Bearer <ADMIN_TOKEN>.", {}, { "www-authenticate": 'Bearer realm="valerix-admin"' })
      : problem("admin_closed", "Set ADMIN_TOKEN to use the admin API in production.");
  };
}

export interface ServiceAuthConfig extends AdminAuthConfig {
  inventoryToken: string | undefined;
}

/** The token a caller of inventory's write routes presents: its own, or the admin token when none is set. */
export function serviceToken(cfg: ServiceAuthConfig): string | undefined {
  return cfg.inventoryToken ?? cfg.adminToken;
}

/**
 * Guards inventory's internal writes (`deduct`, `release`), which only the orders role calls:
 * the bearer INVENTORY_TOKEN (or, without one, ADMIN_TOKEN); with neither set, open in
 * development and closed in production. In the `all` role orders never uses these routes (its
 * port is in-process), so closing them costs nothing.
 */
export function createServiceGuard(cfg: ServiceAuthConfig): AdminGuard {
  const token = serviceToken(cfg);
  return ({ request }) => {
    const v = adminVerdict({ adminToken: token, nodeEnv: cfg.nodeEnv }, bearerToken(request.headers.get("authorization")));
    if (v.ok) return undefined;
    return v.code === "unauthorized"
      ? problem("unauthorized", "Send Authorization: Bearer <INVENTORY_TOKEN>.", {}, { "www-authenticate": 'Bearer realm="valerix-inventory"' })
      : problem("inventory_writes_closed", "Set INVENTORY_TOKEN (or ADMIN_TOKEN) to use inventory's write routes in production.");
  };
}
