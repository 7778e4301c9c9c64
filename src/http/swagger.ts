import { Elysia } from "elysia";
// Served from the binary itself: Swagger UI must work with no network at all.
import bundlePath from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "file" };
import cssPath from "swagger-ui-dist/swagger-ui.css" with { type: "file" };

const INIT_JS = `window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/swagger/json", dom_id: "#swagger-ui", deepLinking: true });
});`;

const asset = (path: string, type: string) => () =>
  new Response(Bun.file(path), { headers: { "content-type": type, "cache-control": "public, max-age=86400" } });

/** Swagger UI at /swagger, every asset local; the init script is a file, so the CSP needs no 'unsafe-inline'. */
export function swaggerRoutes() {
  // A fixed page with nothing interpolated, so nothing to escape: the pages' html tag is not needed here.
  const page = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Valerix API — Swagger UI</title>
  <link rel="stylesheet" href="/swagger/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/swagger/assets/swagger-ui-bundle.js"></script>
  <script src="/swagger/assets/init.js"></script>
</body>
</html>`;
  return new Elysia({ name: "swagger-ui", detail: { hide: true } })
    .get("/swagger", () => new Response(page, { headers: { "content-type": "text/html; charset=utf-8" } }))
    .get("/swagger/assets/swagger-ui-bundle.js", asset(bundlePath, "text/javascript; charset=utf-8"))
    .get("/swagger/assets/swagger-ui.css", asset(cssPath, "text/css; charset=utf-8"))
    .get("/swagger/assets/init.js", () => new Response(INIT_JS, { headers: { "content-type": "text/javascript; charset=utf-8" } }));
}
