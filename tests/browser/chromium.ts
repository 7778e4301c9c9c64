import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { inCI } from "../support/services.ts";

/** Debian's `chromium` package; `.ci/run` installs it. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export const hasChromium = (() => {
  if (existsSync(CHROMIUM)) return true;
  if (inCI) throw new Error(`Chromium is missing at ${CHROMIUM}; the browser suites cannot run`);
  return false;
})();

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A headless Chromium with a fresh profile of its own, removed on `close()`. */
export async function launchBrowser(opts: { javaScriptEnabled?: boolean } = {}): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), "valerix-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 860 },
    javaScriptEnabled: opts.javaScriptEnabled ?? true,
    // Reduced motion would switch the banner's pulse off; the tests look for it.
    reducedMotion: "no-preference",
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface Watch {
  /** Requests for any origin not allowed; each was aborted before leaving the browser. */
  foreign: string[];
  /** Console errors and uncaught page errors (CSP violations show up here too). */
  errors: string[];
  /** Lets requests to one more origin through (a test's own second server). */
  allow(origin: string): void;
  reset(): void;
}

/**
 * Fails nothing by itself; records what a test then asserts is empty: requests that would leave
 * the allowed origins (stopped at the browser) and console or page errors.
 */
export async function watch(context: BrowserContext, origins: string[]): Promise<Watch> {
  const allowed = new Set(origins);
  const w: Watch = {
    foreign: [],
    errors: [],
    allow: (o) => void allowed.add(o),
    reset() {
      w.foreign.length = 0;
      w.errors.length = 0;
    },
  };
  await context.route("**/*", (route) => {
    const url = route.request().url();
    let origin = "";
    try {
      origin = new URL(url).origin;
    } catch {
      // data: and about: URLs have no network origin.
    }
    if (url.startsWith("data:") || url.startsWith("about:") || allowed.has(origin)) return route.continue();
    w.foreign.push(url);
    return route.abort("blockedbyclient");
  });
  const attach = (page: Page) => {
    page.on("console", (m) => {
      if (m.type() === "error") w.errors.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => w.errors.push(`pageerror: ${e.message}`));
  };
  context.pages().forEach(attach);
  context.on("page", attach);
  return w;
}
