import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { schemasInstalled, validateAll, validateObject, type K8sObject } from "../../ops/k8s/validate.ts";
import { find, ingressAllowed, kubectl, ofKind, podTemplate, render, selects, workloads, type Peer } from "./k8s.ts";
import { inCI, OPS, readYaml, ROOT, run } from "./support.ts";
import { DEFAULT_POOL_SIZE, type Role } from "../../src/config.ts";

const schemas = { available: schemasInstalled(), skip: !schemasInstalled() && !inCI };
const README = join(OPS, "README.md");
type Any = any;

// Secrets are referenced, never rendered; each name and key must be documented in ops/README.md.
const SECRET_NAMES = ["valerix-app", "valerix-postgres", "valerix-redis", "valerix-backup"];
// (A *_FILE or *_DIR variable holds the path of a mounted Secret, which is how it should be.)
const SENSITIVE_ENV = /^(?!.*_(FILE|DIR)$).*(TOKEN|PASSWORD|SECRET|DATABASE_URL|REDIS_URL|UPLOAD_URL)/;

const RENDERED = ["overlays/single", "overlays/split", "monitoring", "tools"];

/**
 * What ops/README.md ("Sizing") measured, and what the manifests are sized for. Change these
 * with the table there: the tests below hold the manifests to them.
 */
const SIZING = {
  /** Highest peak RSS (VmHWM) of one process under load, MiB: the all role, 64 connections. */
  peakRssMiB: { all: 139, orders: 126, inventory: 111 } as Record<string, number>,
  /** CPU per order of the all role at ~2,000 orders/s on a quiet machine (npm run bench), upper end. */
  cpuMsPerOrder: 0.2,
  /** Orders/s one replica is planned to carry; the CPU request must cover it. */
  plannedOrdersPerS: 1000,
};

const mib = (q: string): number => {
  const m = /^(\d+(?:\.\d+)?)(Mi|Gi|M|G)?$/.exec(q);
  if (!m) throw new Error(`unreadable memory quantity ${q}`);
  const n = Number(m[1]);
  return { Mi: n, Gi: n * 1024, M: (n * 1e6) / 2 ** 20, G: (n * 1e9) / 2 ** 20 }[m[2] ?? ""] ?? n / 2 ** 20;
};
const cores = (q: string): number => (q.endsWith("m") ? Number(q.slice(0, -1)) / 1000 : Number(q));
const overlays: Record<string, K8sObject[]> = {};

/** Pod and container security settings and resources that every workload must carry. */
function expectLockedDown(objs: K8sObject[]) {
  for (const w of workloads(objs)) {
    const { spec } = podTemplate(w)!;
    const where = `${w.kind}/${w.metadata.name}`;
    expect({ where, automount: spec.automountServiceAccountToken }).toEqual({ where, automount: false });
    expect({ where, nonRoot: spec.securityContext?.runAsNonRoot, seccomp: spec.securityContext?.seccompProfile?.type }).toEqual({
      where,
      nonRoot: true,
      seccomp: "RuntimeDefault",
    });
    expect(spec.securityContext.runAsUser).toBeGreaterThan(0);
    for (const c of spec.containers) {
      const sc = c.securityContext ?? {};
      expect({ where, c: c.name, escalate: sc.allowPrivilegeEscalation, ro: sc.readOnlyRootFilesystem, drop: sc.capabilities?.drop }).toEqual({
        where,
        c: c.name,
        escalate: false,
        ro: true,
        drop: ["ALL"],
      });
      // Requests for the scheduler, a memory limit against leaks; a CPU limit is each workload's choice.
      expect({ where, c: c.name, cpu: !!c.resources?.requests?.cpu, memory: !!c.resources?.requests?.memory, limit: !!c.resources?.limits?.memory }).toEqual({
        where,
        c: c.name,
        cpu: true,
        memory: true,
        limit: true,
      });
      expect({ where, image: c.image }).toEqual({ where, image: expect.stringMatching(/:[\w][\w.-]*$/) });
      expect(c.image).not.toEndWith(":latest");
    }
  }
}

describe.skipIf(kubectl.skip)("kubectl kustomize", () => {
  beforeAll(async () => {
    for (const dir of RENDERED) overlays[dir] = await render(dir);
  });

  test("renders both overlays, the monitoring add-on and the restore tools", () => {
    expect(overlays["overlays/single"]!.length).toBeGreaterThan(10);
    expect(overlays["overlays/split"]!.length).toBeGreaterThan(10);
    expect(overlays["monitoring"]!.map((o) => o.kind).sort()).toEqual(["NetworkPolicy", "PrometheusRule", "ServiceMonitor"]);
    expect(overlays["tools"]!.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(["Pod/backup-shell"]);
  });

  describe.skipIf(schemas.skip)("schemas (kubernetes-models, offline)", () => {
    test("the schema packages are installed", () => {
      expect(schemas.available).toBe(true);
    });

    for (const dir of RENDERED) {
      test(`every object of ${dir} validates`, async () => {
        const problems = await validateAll(overlays[dir]!);
        expect(problems).toEqual([]);
      });
    }

    test("the validator rejects what the API server would (so a pass means something)", async () => {
      const deployment = structuredClone(find(overlays["overlays/split"]!, "Deployment", "valerix-orders")) as Any;
      deployment.spec.replicas = "two";
      deployment.spec.template.spec.containers[0].resources.limits.memory = "lots";
      const messages = (await validateObject(deployment)).map((p) => p.message);
      expect(messages).toContain("/spec/replicas must be integer");
      expect(messages.some((m) => m.includes("/resources/limits/memory"))).toBe(true);

      const unknown = await validateObject({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } });
      expect(unknown[0]?.message).toContain("no schema");
      const nameless = await validateObject({ apiVersion: "v1", kind: "Service", metadata: {} });
      expect(nameless[0]?.message).toContain("metadata.name");
    });
  });

  for (const overlay of ["overlays/single", "overlays/split"]) {
    describe(overlay, () => {
      const objs = () => overlays[overlay]!;

      test("everything lands in the valerix namespace, which enforces the restricted pod security level", () => {
        const ns = find(objs(), "Namespace", "valerix");
        expect((ns.metadata.labels ?? {})["pod-security.kubernetes.io/enforce"]).toBe("restricted");
        for (const o of objs()) if (o.kind !== "Namespace") expect(`${o.kind}/${o.metadata.name}:${o.metadata.namespace}`).toEndWith(":valerix");
      });

      test("no Secret is rendered and no sensitive variable is given inline", () => {
        expect(ofKind(objs(), "Secret")).toEqual([]);
        for (const w of workloads(objs())) {
          for (const c of podTemplate(w)!.spec.containers) {
            for (const e of c.env ?? []) {
              if (SENSITIVE_ENV.test(e.name)) expect({ where: `${w.metadata.name}/${e.name}`, inline: e.value }).toEqual({ where: `${w.metadata.name}/${e.name}`, inline: undefined });
            }
          }
        }
      });

      test("every Secret reference is one of the documented Secrets, and its key is in ops/README.md", async () => {
        const readme = await Bun.file(README).text();
        const refs = new Set<string>();
        for (const w of workloads(objs())) {
          const spec = podTemplate(w)!.spec;
          for (const c of spec.containers) {
            for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) refs.add(`${e.valueFrom.secretKeyRef.name} ${e.valueFrom.secretKeyRef.key}`);
          }
          for (const v of spec.volumes ?? []) if (v.secret) refs.add(`${v.secret.secretName} *`);
        }
        expect(refs.size).toBeGreaterThan(3);
        for (const ref of refs) {
          const [name, key] = ref.split(" ");
          expect(SECRET_NAMES).toContain(name!);
          expect(readme).toContain(name!);
          if (key !== "*") expect({ ref, documented: readme.includes(`\`${key}\``) }).toEqual({ ref, documented: true });
        }
      });

      test("every container is locked down and sized", () => {
        expectLockedDown(objs());
      });

      test("the app probes /health/live and /health/ready, and drains within its grace period", async () => {
        const apps = ofKind(objs(), "Deployment").filter((d) => d.metadata.labels?.["app.kubernetes.io/name"] === "valerix");
        expect(apps.length).toBe(overlay.endsWith("split") ? 2 : 1);
        const dockerUser = [...(await Bun.file(join(ROOT, "Dockerfile")).text()).matchAll(/^USER\s+(\d+)/gm)].at(-1)?.[1];
        for (const d of apps) {
          const { spec } = podTemplate(d)!;
          const c = spec.containers[0];
          const port = c.ports.find((p: Any) => p.name === "http");
          expect(port.containerPort).toBe(Number(c.env.find((e: Any) => e.name === "PORT").value));
          expect(c.livenessProbe.httpGet).toEqual({ path: "/health/live", port: "http" });
          expect(c.readinessProbe.httpGet).toEqual({ path: "/health/ready", port: "http" });
          expect(c.startupProbe.httpGet.path).toBe("/health/live");
          const drain = Number(c.env.find((e: Any) => e.name === "DRAIN_TIMEOUT_S").value);
          const preStop = c.lifecycle?.preStop?.sleep?.seconds ?? 0;
          expect(drain).toBeGreaterThan(0);
          // Kubernetes kills the pod terminationGracePeriodSeconds after it starts the preStop hook.
          expect(spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStop + drain + 1);
          // The same uid the image declares, so files it owns stay readable.
          expect(String(spec.securityContext.runAsUser)).toBe(dockerUser!);
          const tmp = c.volumeMounts.find((m: Any) => m.mountPath === "/tmp");
          expect(tmp).toBeDefined();
        }
      });

      test("the app is sized from the measurements: memory request over the peak RSS, a memory limit, no CPU limit", () => {
        const apps = ofKind(objs(), "Deployment").filter((d) => d.metadata.labels?.["app.kubernetes.io/name"] === "valerix");
        for (const d of apps) {
          const role = d.metadata.labels!["app.kubernetes.io/component"]!;
          const { requests, limits } = podTemplate(d)!.spec.containers[0].resources;
          const where = d.metadata.name;
          const peak = SIZING.peakRssMiB[role]!;
          expect({ where, peak }).toEqual({ where, peak: expect.any(Number) });
          // The request is what the scheduler sets aside: at least the measured peak, with 10 % to spare.
          expect({ where, request: requests.memory, peak, over: mib(requests.memory) >= peak * 1.1 }).toEqual({ where, request: requests.memory, peak, over: true });
          // The limit leaves room for bursts over the request, which a pod killed for memory would lose.
          expect({ where, limit: limits.memory, twice: mib(limits.memory) >= 2 * mib(requests.memory) }).toEqual({ where, limit: limits.memory, twice: true });
          // CPU is compressible: the request is the share under contention; a quota would throttle the event loop.
          expect({ where, cpuLimit: limits.cpu }).toEqual({ where, cpuLimit: undefined });
          expect(cores(requests.cpu)).toBeGreaterThanOrEqual((SIZING.plannedOrdersPerS * SIZING.cpuMsPerOrder) / 1000);
        }
      });

      test("the autoscaler's CPU target is a real load level below the planned one", () => {
        for (const hpa of ofKind(objs(), "HorizontalPodAutoscaler") as Any[]) {
          const d = find(objs(), "Deployment", hpa.spec.scaleTargetRef.name);
          const request = cores(podTemplate(d)!.spec.containers[0].resources.requests.cpu);
          const target = hpa.spec.metrics.find((m: Any) => m.type === "Resource" && m.resource.name === "cpu").resource.target;
          expect(target.type).toBe("Utilization");
          // The orders/s per replica at which it scales out: enough to mean load, below the plan.
          const ordersPerS = (request * (target.averageUtilization / 100) * 1000) / SIZING.cpuMsPerOrder;
          const where = hpa.metadata.name;
          expect({ where, ordersPerS, real: ordersPerS >= 500 && ordersPerS < SIZING.plannedOrdersPerS }).toEqual({ where, ordersPerS, real: true });
        }
      });

      test("at their autoscalers' maximum, during a rollout, the app's connections fit PostgreSQL's max_connections", () => {
        // Each process holds at most DATABASE_POOL_SIZE connections (both pools together), by
        // default its role's (src/config.ts); a rollout adds one surge pod per Deployment.
        const connections = (ofKind(objs(), "HorizontalPodAutoscaler") as Any[]).reduce((n, h) => {
          const env: Array<{ name: string; value?: string }> = podTemplate(find(objs(), "Deployment", h.spec.scaleTargetRef.name))!.spec.containers[0].env ?? [];
          const role = (env.find((e) => e.name === "VALERIX_ROLE")?.value ?? "all") as Role;
          const pool = Number(env.find((e) => e.name === "DATABASE_POOL_SIZE")?.value ?? DEFAULT_POOL_SIZE[role]);
          return n + (h.spec.maxReplicas + 1) * pool;
        }, 0);
        const pg = find(objs(), "StatefulSet", "postgres") as Any;
        const args: string[] = pg.spec.template.spec.containers[0].args ?? [];
        const max = Number(args.map((a) => /^max_connections=(\d+)$/.exec(a)?.[1]).find(Boolean) ?? 100);
        // Three are reserved for the superuser; the backup job and a restore shell take one each.
        expect(connections + 3 + 2).toBeLessThanOrEqual(max);
      });

      test("replicas spread over nodes (a hard rule, counted per rollout) and over zones (a wish)", () => {
        for (const d of ofKind(objs(), "Deployment")) {
          if (d.metadata.labels?.["app.kubernetes.io/name"] !== "valerix") continue;
          const { metadata, spec } = podTemplate(d)!;
          const byKey = Object.fromEntries((spec.topologySpreadConstraints ?? []).map((t: Any) => [t.topologyKey, t]));
          const host = byKey["kubernetes.io/hostname"];
          const zone = byKey["topology.kubernetes.io/zone"];
          expect({ where: d.metadata.name, host: !!host, zone: !!zone }).toEqual({ where: d.metadata.name, host: true, zone: true });
          expect([host.whenUnsatisfiable, host.maxSkew, host.nodeTaintsPolicy]).toEqual(["DoNotSchedule", 1, "Honor"]);
          expect([zone.whenUnsatisfiable, zone.maxSkew]).toEqual(["ScheduleAnyway", 1]);
          for (const t of [host, zone]) {
            expect(t.matchLabelKeys).toEqual(["pod-template-hash"]);
            // It counts this Deployment's pods and no one else's (split: orders and inventory apart).
            const counted = workloads(objs()).filter((w) => selects(t.labelSelector, podTemplate(w)!.metadata.labels)).map((w) => w.metadata.name);
            expect(counted).toEqual([d.metadata.name]);
            expect(selects(t.labelSelector, metadata.labels)).toBe(true);
          }
        }
      });

      test("every Deployment has an autoscaler and a disruption budget that select exactly its pods", () => {
        const deployments = ofKind(objs(), "Deployment");
        const allPods = workloads(objs()).map((w) => ({ owner: w.metadata.name, labels: podTemplate(w)!.metadata.labels }));
        for (const d of deployments) {
          const hpa = ofKind(objs(), "HorizontalPodAutoscaler").find((h) => (h.spec as Any).scaleTargetRef.name === d.metadata.name) as Any;
          expect(hpa).toBeDefined();
          expect(hpa.spec.scaleTargetRef.kind).toBe("Deployment");
          expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
          expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
          const pdbs = ofKind(objs(), "PodDisruptionBudget").filter((p) => selects((p.spec as Any).selector, podTemplate(d)!.metadata.labels));
          expect(pdbs.length).toBe(1);
          const covered = allPods.filter((p) => selects((pdbs[0]!.spec as Any).selector, p.labels)).map((p) => p.owner);
          expect(covered).toEqual([d.metadata.name]);
          expect((pdbs[0]!.spec as Any).minAvailable).toBeLessThan(hpa.spec.minReplicas);
        }
      });

      test("every Service selects pods and targets a port they expose", () => {
        for (const s of ofKind(objs(), "Service")) {
          const spec = s.spec as Any;
          const backing = workloads(objs()).filter((w) => selects(spec.selector, podTemplate(w)!.metadata.labels));
          expect({ service: s.metadata.name, backing: backing.length }).toEqual({ service: s.metadata.name, backing: 1 });
          const ports = podTemplate(backing[0]!)!.spec.containers.flatMap((c: Any) => c.ports ?? []);
          for (const p of spec.ports) {
            expect(ports.some((cp: Any) => cp.name === p.targetPort || cp.containerPort === p.targetPort)).toBe(true);
          }
        }
      });

      test("the Ingress publishes the orders side (role all or orders), never inventory", () => {
        const ingress = find(objs(), "Ingress", "valerix") as Any;
        const backends = ingress.spec.rules.flatMap((r: Any) => r.http.paths.map((p: Any) => p.backend.service));
        expect(backends.length).toBeGreaterThan(0);
        for (const b of backends) {
          const svc = find(objs(), "Service", b.name) as Any;
          expect(["all", "orders"]).toContain(svc.spec.selector["app.kubernetes.io/component"]);
          expect(svc.spec.ports.map((p: Any) => p.name)).toContain(b.port.name);
        }
      });

      test("PostgreSQL keeps its data on a volume and creates the databases from the mounted Secret", async () => {
        const pg = find(objs(), "StatefulSet", "postgres") as Any;
        expect(pg.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toMatch(/Gi$/);
        const mounts = pg.spec.template.spec.containers[0].volumeMounts.map((m: Any) => m.mountPath);
        expect(mounts).toContain("/var/lib/postgresql/data");
        expect(mounts).toContain("/docker-entrypoint-initdb.d");
        const initdb = pg.spec.template.spec.volumes.find((v: Any) => v.name === "initdb");
        const cm = find(objs(), "ConfigMap", initdb.configMap.name) as Any;
        expect(cm.data["init-databases.sh"]).toBe(await Bun.file(join(OPS, "k8s/base/postgres/init-databases.sh")).text());
        expect(initdb.configMap.defaultMode).toBe(0o555);
      });

      test("backups: frequent local dumps, and exactly one shipment a day that is never retried", () => {
        const backup = find(objs(), "CronJob", "postgres-backup") as Any;
        const ship = find(objs(), "CronJob", "postgres-backup-ship") as Any;
        const [minute, hour, ...rest] = ship.spec.schedule.split(/\s+/);
        expect(minute).toMatch(/^\d+$/);
        expect(hour).toMatch(/^\d+$/);
        expect(rest).toEqual(["*", "*", "*"]);
        expect(ship.spec.jobTemplate.spec.backoffLimit).toBe(0);
        expect(ship.spec.jobTemplate.spec.template.spec.restartPolicy).toBe("Never");
        expect(backup.spec.schedule).toMatch(/^\*\/\d+ /);
        for (const job of [backup, ship]) {
          expect(job.spec.concurrencyPolicy).toBe("Forbid");
          const pod = job.spec.jobTemplate.spec.template.spec;
          expect(pod.volumes.find((v: Any) => v.name === "backups").persistentVolumeClaim.claimName).toBe("postgres-backups");
          expect(pod.containers[0].env.find((e: Any) => e.name === "BACKUP_DIR").value).toBe(
            pod.containers[0].volumeMounts.find((m: Any) => m.name === "backups").mountPath,
          );
        }
        find(objs(), "PersistentVolumeClaim", "postgres-backups");
        expect(backup.spec.jobTemplate.spec.template.spec.containers[0].command).toEqual(["/opt/valerix/backup/backup.sh", "--all"]);
        expect(ship.spec.jobTemplate.spec.template.spec.containers[0].command).toEqual(["/opt/valerix/backup/ship-daily.sh"]);
      });
    });
  }

  test("kustomizations use no deprecated field, and kustomize warns of nothing", async () => {
    const files = (await Array.fromAsync(new Bun.Glob("k8s/**/kustomization.yaml").scan({ cwd: OPS }))).sort();
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) {
      const k = await readYaml(join(OPS, f));
      for (const field of ["bases", "commonLabels", "patchesStrategicMerge", "patchesJson6902", "vars"]) {
        expect({ file: f, field, present: field in (k ?? {}) }).toEqual({ file: f, field, present: false });
      }
    }
    for (const dir of RENDERED) {
      const { code, stderr } = await run([kubectl.need(), "kustomize", join(OPS, "k8s", dir)]);
      expect({ dir, code, warnings: stderr.split("\n").filter((l) => /warning|deprecated/i.test(l)) }).toEqual({ dir, code: 0, warnings: [] });
    }
  });

  test("ops/README.md states the Kubernetes version the manifests need", async () => {
    const readme = await Bun.file(README).text();
    // preStop's sleep action is on by default from 1.30; matchLabelKeys and nodeTaintsPolicy earlier.
    expect({ stated: /Kubernetes 1\.30 or later/.test(readme) }).toEqual({ stated: true });
  });

  test("tools: the restore shell is locked down like the backup jobs and may reach PostgreSQL", () => {
    expectLockedDown(overlays["tools"]!);
    const shell = find(overlays["tools"]!, "Pod", "backup-shell") as Any;
    const job = find(overlays["overlays/split"]!, "CronJob", "postgres-backup") as Any;
    const jobPod = job.spec.jobTemplate.spec.template;
    expect(shell.spec.containers[0].image).toBe(jobPod.spec.containers[0].image);
    expect(shell.metadata.labels["app.kubernetes.io/component"]).toBe(jobPod.metadata.labels["app.kubernetes.io/component"]);
    expect(shell.spec.volumes.find((v: Any) => v.name === "backups").persistentVolumeClaim.claimName).toBe("postgres-backups");
  });

  test("split: orders reaches inventory by its Service, and each role has its own database", () => {
    const objs = overlays["overlays/split"]!;
    const env = (name: string) => (podTemplate(find(objs, "Deployment", name))!.spec.containers[0].env as Any[]).reduce(
      (m, e) => ({ ...m, [e.name]: e }),
      {} as Record<string, Any>,
    );
    const orders = env("valerix-orders");
    const inventory = env("valerix-inventory");
    expect(orders.VALERIX_ROLE.value).toBe("orders");
    expect(inventory.VALERIX_ROLE.value).toBe("inventory");
    expect(inventory.INVENTORY_URL).toBeUndefined();
    const url = new URL(orders.INVENTORY_URL.value);
    const svc = find(objs, "Service", url.hostname) as Any;
    expect(svc.spec.selector["app.kubernetes.io/component"]).toBe("inventory");
    expect(svc.spec.ports.map((p: Any) => p.port)).toContain(Number(url.port));
    expect(orders.DATABASE_URL.valueFrom.secretKeyRef.key).toBe("orders-database-url");
    expect(inventory.DATABASE_URL.valueFrom.secretKeyRef.key).toBe("inventory-database-url");
  });

  describe("network policies", () => {
    const ns = { "kubernetes.io/metadata.name": "valerix" };
    const pod = (component: string, name = "valerix"): Peer => ({
      namespace: "valerix",
      namespaceLabels: ns,
      labels: { "app.kubernetes.io/name": name, "app.kubernetes.io/component": component },
    });
    const ingressController: Peer = {
      namespace: "ingress-nginx",
      namespaceLabels: { "kubernetes.io/metadata.name": "ingress-nginx" },
      labels: { "app.kubernetes.io/name": "ingress-nginx" },
    };
    const prometheus: Peer = {
      namespace: "monitoring",
      namespaceLabels: { "kubernetes.io/metadata.name": "monitoring" },
      labels: { "app.kubernetes.io/name": "prometheus" },
    };
    const stranger = pod("debug", "busybox");
    const postgres = pod("database", "postgres");
    const redis = pod("cache", "redis");
    const backup = pod("backup", "postgres-backup");

    test("split: only orders may call inventory; the world reaches orders only", () => {
      const policies = ofKind(overlays["overlays/split"]!, "NetworkPolicy");
      const orders = pod("orders");
      const inventory = pod("inventory");
      expect(ingressAllowed(policies, orders, inventory, 3000)).toBe(true);
      for (const other of [ingressController, stranger, backup, inventory, prometheus]) {
        expect(ingressAllowed(policies, other, inventory, 3000)).toBe(false);
      }
      expect(ingressAllowed(policies, ingressController, orders, 3000)).toBe(true);
      expect(ingressAllowed(policies, ingressController, orders, 5432)).toBe(false);
      for (const role of [orders, inventory]) {
        expect(ingressAllowed(policies, role, postgres, 5432)).toBe(true);
        expect(ingressAllowed(policies, role, redis, 6379)).toBe(true);
      }
      expect(ingressAllowed(policies, backup, postgres, 5432)).toBe(true);
      expect(ingressAllowed(policies, backup, redis, 6379)).toBe(false);
      for (const other of [stranger, ingressController]) {
        expect(ingressAllowed(policies, other, postgres, 5432)).toBe(false);
        expect(ingressAllowed(policies, other, redis, 6379)).toBe(false);
      }
    });

    test("single: the app is public and reaches its database and Redis; nothing else does", () => {
      const policies = ofKind(overlays["overlays/single"]!, "NetworkPolicy");
      const app = pod("all");
      expect(ingressAllowed(policies, ingressController, app, 3000)).toBe(true);
      expect(ingressAllowed(policies, app, postgres, 5432)).toBe(true);
      expect(ingressAllowed(policies, app, redis, 6379)).toBe(true);
      expect(ingressAllowed(policies, stranger, postgres, 5432)).toBe(false);
    });

    test("monitoring add-on: Prometheus may scrape inventory, still nobody else", () => {
      const policies = [...ofKind(overlays["overlays/split"]!, "NetworkPolicy"), ...ofKind(overlays["monitoring"]!, "NetworkPolicy")];
      expect(ingressAllowed(policies, prometheus, pod("inventory"), 3000)).toBe(true);
      expect(ingressAllowed(policies, ingressController, pod("inventory"), 3000)).toBe(false);
      expect(ingressAllowed(policies, prometheus, postgres, 5432)).toBe(false);
    });
  });

  test("monitoring: the ServiceMonitor scrapes every app Service by port name, and the PrometheusRule equals alerts.yml", async () => {
    const sm = find(overlays["monitoring"]!, "ServiceMonitor", "valerix") as Any;
    for (const overlay of ["overlays/single", "overlays/split"]) {
      const services = ofKind(overlays[overlay]!, "Service").filter((s) => selects(sm.spec.selector, s.metadata.labels));
      expect(services.length).toBe(overlay.endsWith("split") ? 2 : 1);
      for (const s of services) {
        expect((s.spec as Any).ports.map((p: Any) => p.name)).toContain(sm.spec.endpoints[0].port);
        expect(s.metadata.labels?.[sm.spec.jobLabel]).toBe("valerix");
      }
    }
    expect(sm.spec.endpoints[0].path).toBe("/metrics");
    const rule = find(overlays["monitoring"]!, "PrometheusRule", "valerix") as Any;
    const alerts = await readYaml(join(OPS, "prometheus/alerts.yml"));
    expect(rule.spec).toEqual(alerts);
  });
});
