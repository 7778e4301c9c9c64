import { join } from "node:path";
import { parseManifests, type K8sObject } from "../../ops/k8s/validate.ts";
import { OPS, run, tool } from "./support.ts";

export const kubectl = tool("kubectl", "KUBECTL");

/** Renders a kustomization under ops/k8s with `kubectl kustomize`; throws with its stderr on failure. */
export async function render(dir: string): Promise<K8sObject[]> {
  const { code, stdout, stderr } = await run([kubectl.need(), "kustomize", join(OPS, "k8s", dir)]);
  if (code !== 0) throw new Error(`kubectl kustomize ${dir} failed (${code}):\n${stderr}`);
  return parseManifests(stdout) as K8sObject[];
}

export const find = (objs: K8sObject[], kind: string, name: string): K8sObject => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind}/${name} among: ${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(", ")}`);
  return o;
};

export const ofKind = (objs: K8sObject[], kind: string) => objs.filter((o) => o.kind === kind);

type Any = any;

/** The pod template spec of a workload (Deployment, StatefulSet, Job, CronJob), else undefined. */
export function podTemplate(o: K8sObject): { metadata: Any; spec: Any } | undefined {
  const spec = o.spec as Any;
  switch (o.kind) {
    case "Pod":
      return { metadata: o.metadata, spec };
    case "Deployment":
    case "StatefulSet":
    case "DaemonSet":
    case "Job":
      return spec.template;
    case "CronJob":
      return spec.jobTemplate.spec.template;
    default:
      return undefined;
  }
}

export const workloads = (objs: K8sObject[]) => objs.filter((o) => podTemplate(o) !== undefined);

/** Label selector semantics (matchLabels and matchExpressions); an empty selector matches all. */
export function selects(selector: Any, labels: Record<string, string> = {}): boolean {
  if (!selector) return true;
  const matchLabels: Record<string, string> = selector.matchLabels ?? (selector.matchExpressions ? {} : selector);
  for (const [k, v] of Object.entries(matchLabels)) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels;
    const value = labels[e.key];
    if (e.operator === "In" && !(has && e.values.includes(value))) return false;
    if (e.operator === "NotIn" && has && e.values.includes(value)) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

export interface Peer {
  namespace: string;
  namespaceLabels: Record<string, string>;
  labels: Record<string, string>;
}

/**
 * Whether NetworkPolicies let `from` open a TCP connection to `to` on `port`, following the
 * Kubernetes rules for ingress: a pod selected by no ingress policy accepts everything; a pod
 * selected by some accepts what at least one of their rules allows.
 */
export function ingressAllowed(policies: K8sObject[], from: Peer, to: Peer, port: number, portNames: Record<string, number> = {}): boolean {
  const applying = policies.filter((p) => {
    const spec = p.spec as Any;
    const types: string[] = spec.policyTypes ?? ["Ingress"];
    return (p.metadata.namespace ?? to.namespace) === to.namespace && types.includes("Ingress") && selects(spec.podSelector, to.labels);
  });
  if (applying.length === 0) return true;
  return applying.some((p) =>
    ((p.spec as Any).ingress ?? []).some((rule: Any) => {
      const portOk =
        !rule.ports ||
        rule.ports.some((rp: Any) => (rp.protocol ?? "TCP") === "TCP" && (rp.port === undefined || rp.port === port || portNames[rp.port] === port));
      if (!portOk) return false;
      if (!rule.from) return true;
      return rule.from.some((peer: Any) => {
        if (peer.ipBlock) return false; // no pod-to-pod question here is answered by CIDRs
        const nsOk = peer.namespaceSelector
          ? selects(peer.namespaceSelector, from.namespaceLabels)
          : from.namespace === (p.metadata.namespace ?? to.namespace);
        const podOk = peer.podSelector ? selects(peer.podSelector, from.labels) : true;
        return nsOk && podOk;
      });
    }),
  );
}
