import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { startSystem, type TestSystem } from "../support/system.ts";
import { CONFIG_BACKEND, expectSecurityHeaders, rawRequest } from "./support.ts";

/**
 * Static files come only from what the binary embeds, each at one fixed route. Paths are sent
 * over raw TCP, byte for byte, because `fetch` would normalise `..` and `%2e%2e` before sending.
 */
let sys: TestSystem;
beforeAll(async () => {
  sys = await startSystem(CONFIG_BACKEND);
}, 120_000);
afterAll(async () => {
  await sys?.stop();
});

/** What a leak would look like: this repository's manifest, the server's source, the system's users. */
const SECRETS = [/"name":\s*"valerix"/, /"devDependencies"/, /root:x:0:0/, /startServer/, /DATABASE_URL=/, /\[core\]/];

/** Where static files live, or might be guessed to. */
const PREFIXES = ["/swagger/assets/", "/swagger/", "/assets/", "/static/", "/public/", "/views/", "/"];
const TARGETS = ["package.json", "src/server.ts", ".env", ".git/config", "etc/passwd", "node_modules/swagger-ui-dist/package.json"];
const UP = ["../", "../../", "../../../../../../", "%2e%2e/", "%2E%2E%2F", "..%2f", "%2e%2e%2f%2e%2e%2f", "..%5c", "..\\", "....//", "%252e%252e/", "..;/", "%c0%ae%c0%ae/", ".%2e/", "%2e./"];

const get = (path: string) => rawRequest(sys.server.port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);

describe("path traversal", () => {
  test("no dot-dot path, in any encoding, under any prefix, reaches a file", async () => {
    let tried = 0;
    for (const prefix of PREFIXES) {
      for (const up of UP) {
        for (const target of TARGETS) {
          const path = `${prefix}${up.repeat(2)}${target}`;
          const res = await get(path);
          tried++;
          // A refusal, as a problem; Bun's parser may refuse the rawest ones itself with a bare 400.
          expect(res.status, path).toBeOneOf([400, 404]);
          if (res.status === 404) {
            expect(res.headers["content-type"], path).toBe("application/problem+json");
            expectSecurityHeaders(res, path);
          }
          for (const secret of SECRETS) expect(res.body, path).not.toMatch(secret);
        }
      }
    }
    expect(tried).toBe(PREFIXES.length * UP.length * TARGETS.length);
  });

  test("the exact path from the issue and its encoded forms are 404 problems", async () => {
    for (const path of [
      "/swagger/assets/../../package.json",
      "/swagger/assets/%2e%2e/%2e%2e/package.json",
      "/swagger/assets/%2E%2E/%2E%2E/package.json",
      "/swagger/assets/..%2f..%2fpackage.json",
      "/swagger/assets/%2e%2e%2f%2e%2e%2fpackage.json",
      "/swagger/assets/swagger-ui.css/../../../package.json",
      "/swagger/assets/swagger-ui-bundle.js%00.json",
      "//package.json",
      "/./package.json",
    ]) {
      const res = await get(path);
      expect(res.status, path).toBe(404);
      expect(JSON.parse(res.body).type, path).toEndWith("/not-found");
    }
  });

  test("an asset route does not take a suffix or a guess, and there is no directory listing", async () => {
    for (const path of ["/swagger/assets/", "/swagger/assets", "/swagger/assets/swagger-ui.css.map", "/swagger/assets/swagger-ui.css/x", "/swagger/assets/index.html", "/swagger/assets/SWAGGER-UI.CSS"]) {
      const res = await get(path);
      expect(res.status, path).toBe(404);
    }
  });
});

describe("the embedded assets themselves", () => {
  const ASSETS: Array<[string, string, string | null]> = [
    ["/swagger/assets/swagger-ui-bundle.js", "text/javascript; charset=utf-8", "node_modules/swagger-ui-dist/swagger-ui-bundle.js"],
    ["/swagger/assets/swagger-ui.css", "text/css; charset=utf-8", "node_modules/swagger-ui-dist/swagger-ui.css"],
    ["/swagger/assets/init.js", "text/javascript; charset=utf-8", null],
  ];

  test("are served byte for byte with their own content type and every security header", async () => {
    for (const [path, type, source] of ASSETS) {
      const res = await sys.get(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("content-type"), path).toBe(type);
      expectSecurityHeaders(res, path);
      const body = await res.text();
      if (source) expect(body === readFileSync(source, "utf8"), path).toBe(true);
    }
  });

  test("the Swagger page loads nothing from another host and no inline script", async () => {
    const html = await (await sys.get("/swagger")).text();
    const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(urls.length).toBeGreaterThan(0);
    for (const u of urls) expect(u, u).toStartWith("/");
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
  });
});
