import { join, resolve } from "node:path";

/**
 * Shared by the ops suites: where the repository is, which external tools this machine has,
 * and how to run them. `bash ops/ci-setup.sh` installs every tool named here. In CI a missing
 * tool fails its suite; on a laptop without it the suite is skipped.
 */
export const ROOT = resolve(import.meta.dir, "../..");
export const OPS = join(ROOT, "ops");
export const inCI = !!process.env.CI;

export interface Tool {
  name: string;
  path: string | null;
  /** Skip the suite: only outside CI, and only when the tool is missing. */
  skip: boolean;
  /** The tool's path, or an error telling how to install it. */
  need(): string;
}

export function tool(name: string, envOverride?: string): Tool {
  const path = (envOverride && process.env[envOverride]) || Bun.which(name);
  return {
    name,
    path,
    skip: !path && !inCI,
    need() {
      if (!path) throw new Error(`${name} is not installed; run: bash ops/ci-setup.sh`);
      return path;
    },
  };
}

/** Whether an npm package resolves from the repository (devDependencies). */
export function npmPackage(name: string): { available: boolean; skip: boolean } {
  let available = true;
  try {
    Bun.resolveSync(name, ROOT);
  } catch {
    available = false;
  }
  return { available, skip: !available && !inCI };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(cmd: string[], opts: { cwd?: string; env?: Record<string, string | undefined>; stdin?: string } = {}): Promise<RunResult> {
  // An undefined value removes the variable from the child's environment.
  const env = Object.fromEntries(Object.entries({ ...process.env, ...opts.env }).filter(([, v]) => v !== undefined)) as Record<string, string>;
  const proc = Bun.spawn(cmd, {
    cwd: opts.cwd ?? ROOT,
    env,
    stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

/**
 * Parses a stream of YAML documents (kubectl kustomize output) one by one: Bun.YAML.parse
 * returns an array for several documents, which a single document holding a list would
 * look just like.
 */
export function yamlDocuments(text: string): unknown[] {
  return text
    .split(/^---[ \t]*$/m)
    .map((doc) => Bun.YAML.parse(doc) as unknown)
    .filter((d) => d !== null && d !== undefined);
}

export async function readYaml<T = any>(path: string): Promise<T> {
  return Bun.YAML.parse(await Bun.file(path).text()) as T;
}

/** Every file under `dir` (relative to ROOT) whose name matches `pattern`, sorted. */
export async function filesUnder(dir: string, pattern: string): Promise<string[]> {
  const glob = new Bun.Glob(pattern);
  const found: string[] = [];
  for await (const f of glob.scan({ cwd: join(ROOT, dir), dot: false })) found.push(join(dir, f));
  return found.sort();
}
