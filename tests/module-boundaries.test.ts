import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, dirname, sep } from "node:path";

/**
 * A module's index.ts is its only door: code outside `modules/X/` may import `modules/X/index.ts`
 * (or the folder) and nothing deeper. This test reads every import in the project and fails the
 * build on a violation.
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
