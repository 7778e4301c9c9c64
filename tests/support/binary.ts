import { rmSync } from "node:fs";
import { join, resolve } from "node:path";
import pkg from "../../package.json" with { type: "json" };

/**
 * The compiled executable for the end-to-end suites: built at most once per test run (the
 * suites share this module), by the steps of `npm run build` itself, so the tests run the flags
 * the release gets, only to file names of the run's own. The preload removes it when the run ends.
 */
const ROOT = resolve(import.meta.dir, "../..");
const OUT = join(ROOT, "dist", `test-${process.pid}`);
/** Where the build script writes what the tests rename. */
const RENAMED: Record<string, string> = {
  "dist/valerix": join(OUT, "valerix"),
  // Same file name as the real build's: the executable looks its template up by name.
  "dist/pglite-template.tar.gz": join(OUT, "pglite-template.tar.gz"),
};

let built: Promise<string> | undefined;

/** The binary's path, after building it if this run has not yet. */
export function compiledBinary(): Promise<string> {
  built ??= build();
  return built;
}

/** Removes what this run built (bun test fires no process "exit" event, so the preload calls this). */
export function removeCompiledBinary(): void {
  if (built) rmSync(OUT, { recursive: true, force: true });
}

async function build(): Promise<string> {
  for (const step of pkg.scripts.build.split("&&")) {
    const argv = step.trim().split(/\s+/).map((arg, i) => (i === 0 && arg === "bun" ? process.execPath : (RENAMED[arg] ?? arg)));
    const stray = argv.find((arg) => arg.startsWith("dist/"));
    if (stray) throw new Error(`the build script writes ${stray}, which the tests do not rename: add it to RENAMED`);
    const proc = Bun.spawn(argv, { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    // Read while it runs: a full pipe would stall the build.
    const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    if (code !== 0) throw new Error(`${step.trim()} failed (exit ${code}): ${err || out}`);
  }
  return RENAMED["dist/valerix"]!;
}
