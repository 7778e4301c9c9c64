import { Elysia } from "elysia";
import { describe, expect, test } from "bun:test";
import { adminVerdict, bearerToken } from "./admin-auth.ts";
import { adminCookie, createAdminGuard } from "./guards.ts";

describe("adminVerdict", () => {
  const token = "s3cret-token";
  test("with a token: only that token, in any environment", () => {
    for (const nodeEnv of ["development", "production"]) {
      expect(adminVerdict({ adminToken: token, nodeEnv }, token)).toEqual({ ok: true });
      for (const presented of [null, undefined, "", "s3cret-toke", `${token}x`, token.toUpperCase(), ` ${token}`]) {
        expect(adminVerdict({ adminToken: token, nodeEnv }, presented)).toEqual({ ok: false, code: "unauthorized" });
      }
    }
  });

  test("without a token: open in development, closed in production whatever is presented", () => {
    expect(adminVerdict({ adminToken: undefined, nodeEnv: "development" }, null)).toEqual({ ok: true });
    expect(adminVerdict({ adminToken: undefined, nodeEnv: "production" }, null)).toEqual({ ok: false, code: "admin_closed" });
    expect(adminVerdict({ adminToken: undefined, nodeEnv: "production" }, "anything")).toEqual({ ok: false, code: "admin_closed" });
  });
});

describe("bearerToken", () => {
  test("reads the Bearer scheme in any case, and nothing else", () => {
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bearer   abc  ")).toBe("abc");
    for (const h of [null, "", "abc", "Basic abc", "Bearer", "Bearer   ", "Token abc"]) expect(bearerToken(h)).toBeNull();
  });
});

describe("adminCookie", () => {
  test("finds the admin cookie among others, decoded, and only that one", () => {
    expect(adminCookie("a=1; valerix_admin=t%3Dx; b=2")).toBe("t=x");
    expect(adminCookie('valerix_admin="quoted"')).toBe("quoted");
    expect(adminCookie("valerix_admin=%E0%A4%A")).toBe("%E0%A4%A");
    for (const h of [null, "", "a=1", "xvalerix_admin=t", "valerix_adminx=t"]) expect(adminCookie(h)).toBeNull();
  });
});

describe("createAdminGuard", () => {
  const guard = createAdminGuard({ adminToken: "tok", nodeEnv: "production" });
  const req = (headers: Record<string, string>) => new Request("http://localhost/api/admin/x", { headers });

  test("lets the token through from the authorization header or the cookie header", () => {
    expect(guard({ request: req({ authorization: "Bearer tok" }) })).toBeUndefined();
    expect(guard({ request: req({ cookie: "valerix_admin=tok" }) })).toBeUndefined();
    expect(guard({ request: req({ cookie: "theme=dark; valerix_admin=tok" }) })).toBeUndefined();
  });

  test("names no Elysia context property but the request, so no route parses cookies for it", () => {
    // Elysia infers what to parse from the hook's source; a parameter named `cookie` would make
    // every request to every route parse its cookies.
    const app = new Elysia().use(new Elysia({ name: "admin-probe" }).onBeforeHandle(guard).get("/admin", () => "a")).post("/open", () => "o");
    const open = (app as unknown as { routes: Array<{ path: string; compile(): unknown }> }).routes.find((r) => r.path === "/open")!;
    expect(String(open.compile())).not.toContain("parseCookie");
  });

  test("refuses with a 401 problem and a Bearer challenge", async () => {
    const res = guard({ request: req({ authorization: "Bearer nope" }) })!;
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="valerix-admin"');
    expect((await res.json()).type).toEndWith("/unauthorized");
  });

  test("closed in production without a token: 403", () => {
    expect(createAdminGuard({ adminToken: undefined, nodeEnv: "production" })({ request: req({ authorization: "Bearer x" }) })?.status).toBe(403);
  });
});
