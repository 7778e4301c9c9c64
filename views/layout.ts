import { html, type Html } from "./html.ts";
import { VERSION } from "../src/version.ts";

export type Section = "products" | "orders" | "status" | "chaos" | "webhooks";

const NAV: Array<{ section: Section; href: string; label: string }> = [
  { section: "products", href: "/", label: "Products" },
  { section: "orders", href: "/orders", label: "Orders" },
  { section: "status", href: "/status", label: "Status" },
  { section: "chaos", href: "/chaos", label: "Chaos" },
  { section: "webhooks", href: "/webhooks", label: "Webhooks" },
];

/** Asset URLs carry the version, so a new binary's files are never mixed with an old cache. */
export const ASSET = {
  css: `/ui/assets/app.css?v=${VERSION}`,
  htmx: `/ui/assets/htmx.min.js?v=${VERSION}`,
  icon: `/ui/assets/favicon.svg?v=${VERSION}`,
  countdown: `/ui/assets/countdown.js?v=${VERSION}`,
};

export interface PageOptions {
  title: string;
  section: Section | null;
  banner: Html;
  body: Html;
  /** Same-origin scripts this page needs besides htmx (`ASSET.countdown`); none by default. */
  scripts?: readonly string[];
}

/**
 * The page shell. htmx's own indicator stylesheet is turned off (the CSP allows no injected
 * styles; app.css carries the rule), and the only scripts are same-origin files.
 */
export function page(opts: PageOptions): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<meta name="htmx-config" content='{"includeIndicatorCSS": false}'>
<title>${opts.title} · Valerix</title>
<link rel="icon" href="${ASSET.icon}" type="image/svg+xml">
<link rel="stylesheet" href="${ASSET.css}">
<script src="${ASSET.htmx}" defer></script>
${(opts.scripts ?? []).map((src) => html`<script src="${src}" defer></script>\n`)}</head>
<body>
<a class="skip-link" href="#main">Skip to content</a>
<header class="site-header">
  <div class="site-header__inner">
    <a class="brand" href="/"><span class="brand__mark" aria-hidden="true"></span>Valerix</a>
    <nav class="nav" aria-label="Main">
      <ul>
        ${NAV.map((n) => html`<li><a href="${n.href}"${n.section === opts.section ? html` aria-current="page"` : ""}>${n.label}</a></li>`)}
      </ul>
    </nav>
  </div>
</header>
${opts.banner}
<main id="main" class="main" tabindex="-1">
${opts.body}
</main>
<footer class="site-footer">
  <span>Valerix ${VERSION}</span>
  <a href="/swagger">API reference</a>
  <a href="/health/deep">Health JSON</a>
  <a href="/metrics">Metrics</a>
</footer>
</body>
</html>`;
}
