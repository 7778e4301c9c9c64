import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { OPS, readYaml, ROOT } from "./support.ts";

// No Docker engine runs in CI, so the Dockerfile and the compose file are checked by reading
// them: structure, and that every path, name and port they share with the rest agrees.

type Any = any;

interface Instruction {
  stage: string;
  op: string;
  args: string;
}

interface Dockerfile {
  directives: Record<string, string>;
  stages: { name: string; from: string }[];
  instructions: Instruction[];
}

/** Reads a Dockerfile: parser directives, line continuations, comments, one entry per instruction. */
function parseDockerfile(text: string): Dockerfile {
  const directives: Record<string, string> = {};
  const lines = text.split("\n");
  let i = 0;
  for (; i < lines.length; i++) {
    const d = /^#\s*([a-z]+)\s*=\s*(\S+)\s*$/.exec(lines[i]!);
    if (!d) break;
    directives[d[1]!] = d[2]!;
  }
  const logical: string[] = [];
  let current = "";
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\s*#/.test(line)) continue;
    if (line.endsWith("\\")) {
      current += line.slice(0, -1) + " ";
      continue;
    }
    current += line;
    if (current.trim()) logical.push(current.trim());
    current = "";
  }
  const stages: Dockerfile["stages"] = [];
  const instructions: Instruction[] = [];
  for (const l of logical) {
    const m = /^([A-Za-z]+)\s+([\s\S]*)$/.exec(l);
    if (!m) throw new Error(`unreadable Dockerfile line: ${l}`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!.replace(/\s+/g, " ").trim();
    if (op === "FROM") {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!f) throw new Error(`unreadable FROM: ${args}`);
      stages.push({ from: f[1]!, name: f[2] ?? `#${stages.length}` });
    }
    instructions.push({ stage: stages.at(-1)?.name ?? "", op, args });
  }
  return { directives, stages, instructions };
}

/** Whether .dockerignore leaves `path` in the build context (last matching pattern wins). */
function sentToBuilder(patterns: string[], path: string): boolean {
  let included = true;
  const parts = path.split("/");
  for (const raw of patterns) {
    const negate = raw.startsWith("!");
    const pattern = (negate ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, "");
    const glob = new Bun.Glob(pattern);
    // A pattern matching a parent folder covers everything inside it.
    const hit = parts.some((_, k) => glob.match(parts.slice(0, k + 1).join("/")));
    if (hit) included = negate;
  }
  return included;
}

const dockerfile = parseDockerfile(await Bun.file(join(ROOT, "Dockerfile")).text());
const stage = (name: string) => dockerfile.instructions.filter((i) => i.stage === name);
const last = (name: string, op: string) => stage(name).filter((i) => i.op === op).at(-1);
const execForm = (args: string): string[] => JSON.parse(args.replace(/^CMD\s+/, ""));

describe("Dockerfile", () => {
  test("three named stages; the last, the default target, is the runtime", () => {
    expect(dockerfile.stages.map((s) => s.name)).toEqual(["build", "backup", "runtime"]);
    // COPY --chmod needs the BuildKit front end the directive pins.
    expect(dockerfile.directives.syntax).toMatch(/^docker\/dockerfile:1/);
    for (const s of dockerfile.stages) {
      expect(s.from).toMatch(/:[\w][\w.-]*$/);
      expect(s.from).not.toEndWith(":latest");
    }
  });

  test("build: dependencies from the lock file with npm ci, then the package's build script", async () => {
    const pkg = await Bun.file(join(ROOT, "package.json")).json();
    const build = stage("build");
    const node = /^node:(\d+)/.exec(dockerfile.stages[0]!.from);
    // Several pinned dependencies declare node >= 22 (see DESIGN.md).
    expect(Number(node?.[1])).toBeGreaterThanOrEqual(22);
    const at = (pred: (i: Instruction) => boolean) => build.findIndex(pred);
    const copyLock = at((i) => i.op === "COPY" && i.args.includes("package.json") && i.args.includes("package-lock.json"));
    const ci = at((i) => i.op === "RUN" && /\bnpm ci\b/.test(i.args));
    const copyAll = at((i) => i.op === "COPY" && /^\.\s+\.$/.test(i.args));
    const runBuild = at((i) => i.op === "RUN" && i.args.includes("npm run build"));
    expect(copyLock).toBeGreaterThanOrEqual(0);
    expect([copyLock < ci, ci < copyAll, copyAll < runBuild]).toEqual([true, true, true]);
    expect(build.some((i) => i.op === "RUN" && /npm install\b/.test(i.args))).toBe(false);
    // The binary the build script writes is the one copied out.
    const outfile = /--outfile\s+(\S+)/.exec(pkg.scripts.build)?.[1];
    expect(outfile).toBe("dist/valerix");
    expect(build.find((i) => i.op === "RUN" && i.args.includes("npm run build"))!.args).toContain(`cp ${outfile} /out/valerix`);
  });

  test("runtime: distroless, non-root, health-checked by the binary itself", () => {
    const runtime = stage("runtime");
    expect(dockerfile.stages[2]!.from).toMatch(/^gcr\.io\/distroless\/cc-debian\d+:nonroot$/);
    const user = last("runtime", "USER")!.args;
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(":")[0])).toBeGreaterThan(0);
    const copies = runtime.filter((i) => i.op === "COPY");
    expect(copies.some((c) => c.args.includes("--from=build") && c.args.endsWith("/out/valerix /app/valerix"))).toBe(true);
    const entrypoint = execForm(last("runtime", "ENTRYPOINT")!.args);
    expect(entrypoint).toEqual(["/app/valerix"]);
    const health = last("runtime", "HEALTHCHECK")!.args;
    expect(health).toMatch(/--interval=\d+s/);
    expect(health).toMatch(/--start-period=\d+s/);
    expect(execForm(health.slice(health.indexOf("CMD ")))).toEqual(["/app/valerix", "healthcheck"]);
    const env = last("runtime", "ENV")!.args;
    const port = /PORT=(\d+)/.exec(env)?.[1];
    expect(last("runtime", "EXPOSE")!.args).toBe(port!);
    expect(env).toContain("NODE_ENV=production");
    // Data folder owned by the runtime user: the only place it writes besides /tmp.
    expect(copies.some((c) => c.args.includes(`--chown=${user}`) && / \/data$/.test(c.args))).toBe(true);
    expect(env).toContain("VALERIX_DATA_DIR=/data");
  });

  test("backup: the scripts the CronJobs run, as the postgres user, with a tidy apt layer", async () => {
    const backup = stage("backup");
    expect(dockerfile.stages[1]!.from).toMatch(/^postgres:\d+-bookworm$/);
    const copy = backup.find((i) => i.op === "COPY")!.args.split(" ").filter((a) => !a.startsWith("--"));
    const dest = copy.at(-1)!;
    expect(dest).toBe("/opt/valerix/backup/");
    for (const src of copy.slice(0, -1)) expect(existsSync(join(ROOT, src))).toBe(true);
    expect(copy.slice(0, -1).map((s) => s.split("/").at(-1)).sort()).toEqual(["backup.sh", "restore.sh", "ship-daily.sh"]);
    const run = backup.find((i) => i.op === "RUN")!.args;
    expect(run).toContain("--no-install-recommends");
    expect(run).toContain("rm -rf /var/lib/apt/lists/*");
    expect(last("backup", "USER")!.args).toBe("999:999");
    // The server image and the dump tool share a major version: pg_dump refuses newer servers.
    const server = Bun.YAML.parse(await Bun.file(join(OPS, "k8s/base/postgres.yaml")).text()) as Any[];
    const image = server.find((o) => o.kind === "StatefulSet").spec.template.spec.containers[0].image;
    expect(image.split(":")[1].split("-")[0]).toBe(dockerfile.stages[1]!.from.split(":")[1]!.split("-")[0]);
  });

  test("both images carry OCI labels, version, revision and source from build arguments with neutral defaults", async () => {
    for (const name of ["runtime", "backup"]) {
      const args = Object.fromEntries(
        stage(name)
          .filter((i) => i.op === "ARG")
          .map((i) => [i.args.split("=")[0], i.args.includes("=") ? i.args.slice(i.args.indexOf("=") + 1) : undefined]),
      );
      const labels: Record<string, string> = {};
      for (const l of stage(name).filter((i) => i.op === "LABEL")) {
        for (const m of l.args.matchAll(/([\w.-]+)="([^"]*)"/g)) labels[m[1]!] = m[2]!;
      }
      expect({ name, version: labels["org.opencontainers.image.version"], revision: labels["org.opencontainers.image.revision"], source: labels["org.opencontainers.image.source"] }).toEqual({
        name,
        version: "${VERSION}",
        revision: "${REVISION}",
        source: "${SOURCE}",
      });
      expect(labels["org.opencontainers.image.title"]).toBeTruthy();
      expect(labels["org.opencontainers.image.licenses"]).toBe((await Bun.file(join(ROOT, "package.json")).json()).license);
      // Declared in the stage (an ARG before FROM is not visible inside it), with defaults that name no host.
      expect(Object.keys(args).sort()).toEqual(["REVISION", "SOURCE", "VERSION"]);
      for (const v of Object.values(args)) expect(v ?? "").not.toMatch(/:\/\//);
      // After the last RUN and COPY: a new revision must not rebuild a layer.
      const at = (op: string) => stage(name).findLastIndex((i) => i.op === op);
      expect(stage(name).findIndex((i) => i.op === "ARG")).toBeGreaterThan(Math.max(at("RUN"), at("COPY")));
    }
    // deploy.sh fills them in when it builds.
    const deploy = await Bun.file(join(OPS, "deploy.sh")).text();
    for (const arg of ["VERSION", "REVISION", "SOURCE"]) expect(deploy).toContain(`--build-arg ${arg}=`);
  });

  test("no remote ADD, no piped installers, no secrets in ENV or ARG", () => {
    for (const i of dockerfile.instructions) {
      if (i.op === "ADD") expect(i.args).not.toMatch(/https?:\/\//);
      if (i.op === "RUN") expect(i.args).not.toMatch(/(curl|wget)[^|]*\|\s*(ba)?sh/);
      if (i.op === "ENV" || i.op === "ARG") expect(i.args).not.toMatch(/(TOKEN|PASSWORD|SECRET|KEY)\s*=/i);
    }
  });

  test(".dockerignore sends the builder what npm ci, the build and the backup stage read, and no more", async () => {
    const patterns = (await Bun.file(join(ROOT, ".dockerignore")).text())
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    for (const needed of ["package.json", "package-lock.json", "bunfig.toml", "tsconfig.json", "src/main.ts", "platform/db.ts", "modules/orders/index.ts", "views/layout.ts", "migrations/index.ts", "ops/backup/backup.sh", "ops/backup/ship-daily.sh", "ops/backup/restore.sh"]) {
      expect({ needed, sent: sentToBuilder(patterns, needed) }).toEqual({ needed, sent: true });
    }
    for (const excluded of [".git/HEAD", "node_modules/pg/package.json", "dist/valerix", ".valerix-data/pg/x", "tests/ops/scripts.test.ts", "src/config.test.ts", "ops/k8s/base/postgres.yaml", "ops/compose.yaml"]) {
      expect({ excluded, sent: sentToBuilder(patterns, excluded) }).toEqual({ excluded, sent: false });
    }
  });
});

describe("ops/compose.yaml", () => {
  const load = async () => readYaml<Any>(join(OPS, "compose.yaml"));

  test("one file starts the whole split stack, with no variable left to set", async () => {
    const c = await load();
    expect(Object.keys(c.services).sort()).toEqual(["backup", "grafana", "inventory", "orders", "postgres", "prometheus", "redis"]);
    expect(c.services.backup.profiles).toEqual(["backup"]);
    const text = await Bun.file(join(OPS, "compose.yaml")).text();
    for (const m of text.matchAll(/\$\{([^}]+)\}/g)) expect({ variable: m[1] }).toEqual({ variable: expect.stringMatching(/^\w+:-.+$/) });
  });

  test("the app services build this Dockerfile's runtime stage and run locked down", async () => {
    const c = await load();
    const user = last("runtime", "USER")!.args;
    for (const name of ["orders", "inventory"]) {
      const s = c.services[name];
      expect(resolve(OPS, s.build.context)).toBe(ROOT);
      expect(existsSync(join(ROOT, s.build.dockerfile))).toBe(true);
      expect(s.build.target).toBe("runtime");
      expect({ name, read_only: s.read_only, user: s.user, cap_drop: s.cap_drop, tmpfs: s.tmpfs }).toEqual({
        name,
        read_only: true,
        user,
        cap_drop: ["ALL"],
        tmpfs: ["/tmp"],
      });
      expect(parseInt(s.stop_grace_period)).toBeGreaterThan(Number(s.environment.DRAIN_TIMEOUT_S));
    }
    expect(c.services.backup.build.target).toBe("backup");
    expect(dockerfile.stages.map((s) => s.name)).toContain(c.services.backup.build.target);
  });

  test("roles are wired: orders calls inventory by service name, each role has its own database", async () => {
    const c = await load();
    const orders = c.services.orders.environment;
    const inventory = c.services.inventory.environment;
    expect([orders.VALERIX_ROLE, inventory.VALERIX_ROLE]).toEqual(["orders", "inventory"]);
    const inv = new URL(orders.INVENTORY_URL);
    expect(inv.hostname).toBe("inventory");
    expect(inv.port).toBe(inventory.PORT);
    const dbs = c.services.postgres.environment.VALERIX_DATABASES.split(" ");
    const urls = [orders.DATABASE_URL, inventory.DATABASE_URL].map((u: string) => new URL(u.replace(/\$\{[^}]+\}/, "pw")));
    expect(urls.map((u) => u.pathname.slice(1))).toEqual(["valerix_orders", "valerix_inventory"]);
    for (const u of urls) {
      expect(dbs).toContain(u.pathname.slice(1));
      // init-databases.sh makes one login role per database, named like it.
      expect(u.username).toBe(u.pathname.slice(1));
      expect(u.hostname).toBe("postgres");
    }
    expect(orders.DATABASE_URL).toContain(c.services.postgres.environment.VALERIX_DB_PASSWORD);
    expect(new URL(orders.REDIS_URL).hostname).toBe("redis");
  });

  test("start order waits on health, and every dependency it waits on has a health check", async () => {
    const c = await load();
    const healthChecked = (name: string) => !!c.services[name].healthcheck || (c.services[name].build?.target === "runtime" && !!last("runtime", "HEALTHCHECK"));
    for (const [name, s] of Object.entries<Any>(c.services)) {
      const deps = Array.isArray(s.depends_on) ? {} : (s.depends_on ?? {});
      for (const [dep, cond] of Object.entries<Any>(deps)) {
        expect(c.services[dep]).toBeDefined();
        if (cond.condition === "service_healthy") expect({ name, dep, checked: healthChecked(dep) }).toEqual({ name, dep, checked: true });
      }
    }
    expect(c.services.orders.depends_on.inventory.condition).toBe("service_healthy");
  });

  test("mounted files exist, ports are published on localhost only", async () => {
    const c = await load();
    for (const [name, s] of Object.entries<Any>(c.services)) {
      for (const v of s.volumes ?? []) {
        const source = v.split(":")[0];
        if (source.startsWith(".")) expect({ name, source, exists: existsSync(resolve(OPS, source)) }).toEqual({ name, source, exists: true });
        else expect(Object.keys(c.volumes)).toContain(source);
      }
      for (const p of s.ports ?? []) expect(p).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    }
    expect(c.services.postgres.volumes).toContain("./k8s/base/postgres/init-databases.sh:/docker-entrypoint-initdb.d/10-valerix-databases.sh:ro");
  });
});
