import { describe, expect, test } from "bun:test";
import { adminVerdict, bearerToken } from "./admin-auth.ts";
import { adminCookie, createAdminGuard } from "./app-context.ts";

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

  test("lets the token through from the header or the cookie, with or without Elysia's parsed cookies", () => {
    expect(guard({ request: req({ authorization: "Bearer tok" }) })).toBeUndefined();
    expect(guard({ request: req({ cookie: "valerix_admin=tok" }) })).toBeUndefined();
    expect(guard({ request: req({}), cookie: { valerix_admin: { value: "tok" } } })).toBeUndefined();
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
