import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, dirname, sep } from "node:path";

/**
 * Two rules, checked over every import in the project:
 * - a module's index.ts is its only door: code outside `modules/X/` may import `modules/X/index.ts`
 *   (or the folder) and nothing deeper;
 * - floors: a lower floor never imports a higher one (the `LAYERS` table below). Test files are
 *   exempt from the floors (a suite may start a whole system to check one module), not from doors.
 */
const ROOT = resolve(import.meta.dir, "..");
const MODULES = readdirSync(join(ROOT, "modules")).filter((d) => statSync(join(ROOT, "modules", d)).isDirectory());
const SCANNED = ["platform", "src", "modules", "views", "chaos", "verify", "bench", "tests", "migrations"];

function* files(dir: string): Generator<string> {
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    if (e === "node_modules") continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (/\.tsx?$/.test(e)) yield p;
  }
}

const IMPORT_RE = /(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

/** Returns "modules/X/<rest>" for a resolved path inside a module, else null. */
function moduleOf(absPath: string): { module: string; rest: string } | null {
  const rel = relative(join(ROOT, "modules"), absPath);
  if (rel.startsWith("..")) return null;
  const [module, ...rest] = rel.split(sep);
  return { module: module!, rest: rest.join("/") };
}

export function violations(fileContents: Array<{ path: string; source: string }>): string[] {
  const out: string[] = [];
  for (const { path, source } of fileContents) {
    const from = moduleOf(path);
    for (const m of source.matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[2]!;
      if (!spec.startsWith(".")) continue;
      const target = moduleOf(resolve(dirname(path), spec));
      if (!target || target.module === from?.module) continue;
      const door = target.rest === "" || target.rest === "index.ts" || target.rest === "index";
      if (!door) out.push(`${relative(ROOT, path)} imports ${spec} (inside modules/${target.module})`);
    }
  }
  return out;
}

/** A path relative to the root, `/`-separated, is under one of these folders or is one of these files. */
const under =
  (...places: string[]) =>
  (rel: string) =>
    places.some((p) => rel === p || rel.startsWith(`${p}/`));

const isTestFile = (rel: string) => /\.(test|contract)\.ts$/.test(rel) || rel.startsWith("tests/");

const HTTP = under("src/http");
const COMPOSITION = under("src/compose", "src/server.ts", "src/main.ts");
const CONFIG = under("src/config.ts");
const VIEWS = under("views");
const CHAOS = under("chaos");
const RUNNER = under("verify");
const MODULE_CODE = under("modules");
const TOOLS = under("bench", "tests");

/**
 * The forbidden imports, floor by floor (see "Layout" in the README). Each row: which files, and
 * for each thing they must never import, a name for the message and a matcher.
 */
export const LAYERS: ReadonlyArray<{ floor: string; files: (rel: string) => boolean; never: Record<string, (rel: string) => boolean> }> = [
  {
    floor: "platform",
    files: under("platform"),
    never: { modules: MODULE_CODE, "the HTTP layer": HTTP, "the composition root": COMPOSITION, config: CONFIG, views: VIEWS, chaos: CHAOS, "the verification runner": RUNNER, "bench or tests": TOOLS },
  },
  {
    floor: "modules",
    files: MODULE_CODE,
    never: { "the HTTP layer": HTTP, "the composition root": COMPOSITION, config: CONFIG, views: VIEWS, chaos: CHAOS, "the verification runner": RUNNER, "bench or tests": TOOLS },
  },
  {
    floor: "the HTTP layer",
    files: HTTP,
    never: { views: VIEWS, "the composition root": COMPOSITION, "the verification runner": RUNNER, "bench or tests": TOOLS },
  },
  {
    floor: "chaos (ships in the binary)",
    files: CHAOS,
    never: { "the composition root": COMPOSITION, "the verification runner": RUNNER, "bench or tests": TOOLS },
  },
  {
    floor: "views",
    files: VIEWS,
    never: { "the composition root": COMPOSITION, "the verification runner": RUNNER, "bench or tests": TOOLS },
  },
];

export function layerViolations(fileContents: Array<{ path: string; source: string }>): string[] {
  const out: string[] = [];
  for (const { path, source } of fileContents) {
    const from = relative(ROOT, path).split(sep).join("/");
    if (isTestFile(from)) continue;
    const rules = LAYERS.filter((l) => l.files(from));
    if (!rules.length) continue;
    for (const m of source.matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[2]!;
      if (!spec.startsWith(".")) continue;
      const target = relative(ROOT, resolve(dirname(path), spec)).split(sep).join("/");
      for (const rule of rules) {
        for (const [what, match] of Object.entries(rule.never)) {
          if (match(target)) out.push(`${from} (${rule.floor}) imports ${spec}: ${rule.floor} never imports ${what}`);
        }
      }
    }
  }
  return out;
}

describe("module boundaries", () => {
  test("no file imports another module's internals", () => {
    const all = SCANNED.flatMap((d) => [...files(join(ROOT, d))]).map((path) => ({ path, source: readFileSync(path, "utf8") }));
    expect(all.length).toBeGreaterThan(10);
    expect(MODULES).toEqual(expect.arrayContaining(["orders", "inventory"]));
    expect(violations(all)).toEqual([]);
  });

  test("the check catches orders importing inventory internals, and the reverse", () => {
    const fake = (module: string, spec: string) => ({
      path: join(ROOT, "modules", module, "internal", "x.ts"),
      source: `import { y } from "${spec}";\n`,
    });
    expect(violations([fake("orders", "../../inventory/internal/inventory.service.ts")])).toHaveLength(1);
    expect(violations([fake("inventory", "../../orders/internal/order.repository.ts")])).toHaveLength(1);
    expect(violations([fake("orders", "../../inventory/index.ts")])).toHaveLength(0);
    expect(violations([fake("orders", "./order.model.ts")])).toHaveLength(0);
  });
});

describe("floors", () => {
  const all = () => SCANNED.flatMap((d) => [...files(join(ROOT, d))]).map((path) => ({ path, source: readFileSync(path, "utf8") }));

  test("no file imports a floor above its own", () => {
    const sources = all();
    expect(sources.some((f) => f.path.startsWith(join(ROOT, "platform") + sep))).toBe(true);
    expect(layerViolations(sources)).toEqual([]);
  });

  /** A planted production file at `at` importing `target` (both relative to the root). */
  const plant = (at: string, target: string) => {
    const path = join(ROOT, at);
    let spec = relative(dirname(path), join(ROOT, target)).split(sep).join("/");
    if (!spec.startsWith(".")) spec = `./${spec}`;
    return { path, source: `import { x } from "${spec}";\nexport const y = await import("${spec}");\n` };
  };

  test.each([
    ["a module importing the HTTP layer", "modules/orders/internal/x.ts", "src/http/problem.ts", "the HTTP layer"],
    ["a module importing the composition root", "modules/inventory/internal/x.ts", "src/compose/orders.ts", "the composition root"],
    ["a module importing the server", "modules/orders/x.ts", "src/server.ts", "the composition root"],
    ["a module importing config", "modules/orders/internal/x.ts", "src/config.ts", "config"],
    ["a module importing views", "modules/orders/internal/x.ts", "views/html.ts", "views"],
    ["a module importing the verification runner", "modules/inventory/adapters/x.ts", "verify/stats.ts", "the verification runner"],
    ["a module importing chaos", "modules/inventory/internal/x.ts", "chaos/injector.ts", "chaos"],
    ["the platform importing a module", "platform/resilience/x.ts", "modules/inventory/index.ts", "modules"],
    ["the platform importing the HTTP layer", "platform/x.ts", "src/http/problem.ts", "the HTTP layer"],
    ["the platform importing views", "platform/kv/x.ts", "views/html.ts", "views"],
    ["the platform importing config", "platform/x.ts", "src/config.ts", "config"],
    ["the platform importing the composition root", "platform/x.ts", "src/compose/observability.ts", "the composition root"],
    ["the HTTP layer importing views", "src/http/x.ts", "views/html.ts", "views"],
    ["the HTTP layer importing the composition root", "src/http/x.ts", "src/server.ts", "the composition root"],
    ["chaos importing the verification runner", "chaos/x.ts", "verify/stats.ts", "the verification runner"],
    ["views importing the composition root", "views/x.ts", "src/compose/orders.ts", "the composition root"],
  ])("the check catches %s", (_, at, target, what) => {
    const found = layerViolations([plant(at, target)]);
    // Both forms are caught: the static import and the dynamic one.
    expect(found).toHaveLength(2);
    for (const v of found) expect(v).toEndWith(`never imports ${what}`);
  });

  test("the check lets allowed imports through, and test files reach any floor", () => {
    expect(layerViolations([plant("modules/orders/internal/x.ts", "platform/db.ts")])).toEqual([]);
    expect(layerViolations([plant("modules/orders/internal/x.ts", "modules/inventory/index.ts")])).toEqual([]);
    expect(layerViolations([plant("src/compose/x.ts", "modules/orders/index.ts")])).toEqual([]);
    expect(layerViolations([plant("src/http/x.ts", "platform/problems.ts")])).toEqual([]);
    expect(layerViolations([plant("views/x.ts", "src/http/health.ts")])).toEqual([]);
    expect(layerViolations([plant("src/config.ts", "platform/net/ip-address.ts")])).toEqual([]);
    expect(layerViolations([plant("modules/orders/internal/x.test.ts", "tests/support/system.ts")])).toEqual([]);
    expect(layerViolations([plant("platform/x.test.ts", "tests/support/manual-clock.ts")])).toEqual([]);
  });
});
