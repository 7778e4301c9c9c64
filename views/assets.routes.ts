import { Elysia } from "elysia";
// Served from the binary itself: the pages work with no network beyond this server.
import htmxPath from "htmx.org/dist/htmx.min.js" with { type: "file" };
import cssPath from "./assets/app.css" with { type: "file" };
import countdownPath from "./assets/countdown.js" with { type: "file" };

// Drawn here rather than shipped as a file: one small shape, no extra embedded asset.
const FAVICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#1d4ed8"/><path d="M9 9l7 15 7-15" fill="none" stroke="#fff" stroke-width="3.2" stroke-linecap="round" stroke-linejoin="round"/></svg>`;

// URLs carry the version (see layout.ts), so a long cache lifetime is safe.
const CACHE = "public, max-age=86400, immutable";

const file = (path: string, type: string) => () =>
  new Response(Bun.file(path), { headers: { "content-type": type, "cache-control": CACHE } });

export function assetRoutes() {
  return new Elysia({ name: "views-assets", detail: { hide: true } })
    .get("/ui/assets/htmx.min.js", file(htmxPath, "text/javascript; charset=utf-8"))
    .get("/ui/assets/app.css", file(cssPath, "text/css; charset=utf-8"))
    .get("/ui/assets/countdown.js", file(countdownPath, "text/javascript; charset=utf-8"))
    .get("/ui/assets/favicon.svg", () => new Response(FAVICON, { headers: { "content-type": "image/svg+xml", "cache-control": CACHE } }))
    // Browsers ask for this whatever the page says; answer instead of logging a 404.
    .get("/favicon.ico", () => new Response(FAVICON, { headers: { "content-type": "image/svg+xml", "cache-control": CACHE } }));
}
