import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseManifests, schemasInstalled, type K8sObject } from "../../ops/k8s/validate.ts";
import { kubectl } from "./k8s.ts";
import { inCI, OPS, run } from "./support.ts";

// deploy.sh --dry-run must render and validate without touching a cluster. The cluster and
// DigitalOcean's API are outside our control, so doctl and docker are replaced by stubs that
// log their calls and fail, and kubectl by a wrapper that logs every call before running the
// real one against a kubeconfig that points nowhere.

const skip = (kubectl.skip || (!schemasInstalled() && !inCI));
const bun = process.execPath;

describe.skipIf(skip)("deploy.sh --dry-run", () => {
  let dir: string;
  let calls: string;
  let env: Record<string, string | undefined>;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "valerix-deploy-"));
    calls = join(dir, "calls.log");
    const bin = join(dir, "bin");
    Bun.spawnSync(["mkdir", "-p", bin]);
    const stub = (name: string, body: string) => {
      writeFileSync(join(bin, name), `#!/usr/bin/env bash\n${body}\n`);
      chmodSync(join(bin, name), 0o755);
    };
    stub("doctl", `echo "doctl $*" >>"${calls}"; exit 97`);
    stub("docker", `echo "docker $*" >>"${calls}"; exit 97`);
    stub("kubectl", `echo "kubectl $*" >>"${calls}"; exec "${kubectl.need()}" "$@"`);
    stub("bun", `exec "${bun}" "$@"`);
    env = {
      PATH: `${bin}:${process.env.PATH}`,
      KUBECONFIG: join(dir, "no-such-kubeconfig"),
    };
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const deploy = (args: string[]) => {
    rmSync(calls, { force: true });
    return run(["bash", join(OPS, "deploy.sh"), ...args], { env });
  };
  const called = () => (existsSync(calls) ? readFileSync(calls, "utf8").trim().split("\n") : []);

  test("renders and validates the split overlay with the chosen images, and calls nothing but kustomize", async () => {
    const r = await deploy(["--dry-run", "--overlay", "split", "--cluster", "prod-cluster", "--registry", "registry.example.com/acme", "--tag", "1.2.3", "--push"]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringContaining("objects valid") });
    const objs = parseManifests(r.stdout) as K8sObject[];
    const images = new Set(
      objs.flatMap((o: any) => {
        const pod = o.spec?.template?.spec ?? o.spec?.jobTemplate?.spec?.template?.spec;
        return pod ? pod.containers.map((c: any) => c.image) : [];
      }),
    );
    expect([...images].sort()).toEqual([
      "postgres:16-bookworm",
      "redis:7.4-bookworm",
      "registry.example.com/acme/valerix-backup:1.2.3",
      "registry.example.com/acme/valerix:1.2.3",
    ]);
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`)).toContain("Deployment/valerix-inventory");
    expect(called().every((c) => c.startsWith("kubectl kustomize "))).toBe(true);
    expect(called().length).toBe(1);
    // It says what a real run would do, including the steps it skipped.
    expect(r.stderr).toContain("doctl kubernetes cluster kubeconfig save prod-cluster");
    expect(r.stderr).toContain("docker build + push registry.example.com/acme/valerix:1.2.3");
  });

  test("single overlay plus monitoring, written to a file", async () => {
    const out = join(dir, "single.yaml");
    const r = await deploy(["--dry-run", "--overlay", "single", "--monitoring", "--output", out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    const kinds = (parseManifests(readFileSync(out, "utf8")) as K8sObject[]).map((o) => `${o.kind}/${o.metadata.name}`);
    expect(kinds).toContain("Deployment/valerix");
    expect(kinds).toContain("ServiceMonitor/valerix");
    expect(kinds).not.toContain("Deployment/valerix-orders");
    expect(called().every((c) => c.startsWith("kubectl kustomize "))).toBe(true);
  });

  test("refuses bad arguments before doing anything", async () => {
    for (const args of [["--overlay", "triple", "--dry-run"], ["--tag", "bad tag!", "--dry-run"], ["--push", "--dry-run"], ["--output", "x.yaml"], ["--bogus"]]) {
      const r = await deploy(args);
      expect({ args, failed: r.code !== 0 }).toEqual({ args, failed: true });
    }
    expect(called()).toEqual([]);
  });

  test("a real run without credentials stops at the first cluster call", async () => {
    const r = await deploy(["--overlay", "split", "--cluster", "prod-cluster"]);
    expect(r.code).not.toBe(0);
    // doctl (the stub) was asked for credentials and failed; nothing was applied.
    expect(called()).toContain("doctl kubernetes cluster kubeconfig save prod-cluster");
    expect(called().some((c) => c.startsWith("kubectl apply"))).toBe(false);
  });
});
