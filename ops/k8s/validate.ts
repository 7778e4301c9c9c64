/**
 * Offline schema validation of rendered Kubernetes manifests, against the OpenAPI schemas
 * packaged in `kubernetes-models` (and `@kubernetes-models/prometheus-operator` for the
 * ServiceMonitor and PrometheusRule). No cluster is contacted.
 *
 *   kubectl kustomize ops/k8s/overlays/split | bun ops/k8s/validate.ts
 *   bun ops/k8s/validate.ts rendered.yaml
 *
 * Exits 0 when every object is valid, 1 with one line per problem otherwise. A kind with no
 * known schema is a problem, not a pass.
 */

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface ValidationProblem {
  /** "Kind/name" of the object. */
  object: string;
  message: string;
}

/** Parses a multi-document YAML stream, document by document, dropping empty ones. */
export function parseManifests(text: string): unknown[] {
  return text
    .split(/^---[ \t]*$/m)
    .map((doc) => Bun.YAML.parse(doc) as unknown)
    .filter((doc) => doc !== null && doc !== undefined);
}

const CRD_PACKAGES: Record<string, string> = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};

/** The module exporting the model class for an apiVersion, e.g. "apps/v1" -> "kubernetes-models/apps/v1". */
export function modelModule(apiVersion: string): string {
  const slash = apiVersion.indexOf("/");
  if (slash === -1) return `kubernetes-models/${apiVersion}`;
  const group = apiVersion.slice(0, slash);
  return `${CRD_PACKAGES[group] ?? "kubernetes-models"}/${apiVersion}`;
}

interface ModelClass {
  new (data: unknown): { validate(): void };
}

function describe(obj: unknown): string {
  const o = obj as Partial<K8sObject> | null;
  return `${o?.kind ?? "?"}/${o?.metadata?.name ?? "?"}`;
}

/**
 * Validates one object against its schema.
 * @example
 *   const problems = await validateObject({ apiVersion: "v1", kind: "Service", metadata: { name: "x" }, spec: {} });
 */
export async function validateObject(obj: unknown): Promise<ValidationProblem[]> {
  const object = describe(obj);
  const o = obj as Partial<K8sObject> | null;
  if (!o || typeof o !== "object" || typeof o.apiVersion !== "string" || typeof o.kind !== "string") {
    return [{ object, message: "not a Kubernetes object (apiVersion and kind are required)" }];
  }
  if (!o.metadata || typeof o.metadata.name !== "string" || o.metadata.name === "") {
    return [{ object, message: "metadata.name is required" }];
  }
  const specifier = `${modelModule(o.apiVersion)}/${o.kind}`;
  let Model: ModelClass | undefined;
  try {
    const mod = (await import(specifier)) as Record<string, unknown>;
    Model = mod[o.kind] as ModelClass | undefined;
  } catch {
    return [{ object, message: `no schema for ${o.apiVersion} ${o.kind} (no module ${specifier})` }];
  }
  if (typeof Model !== "function") return [{ object, message: `no schema for ${o.apiVersion} ${o.kind}` }];
  try {
    new Model(o).validate();
    return [];
  } catch (err) {
    const errors = (err as { errors?: { instancePath?: string; message?: string }[] }).errors;
    if (Array.isArray(errors) && errors.length > 0) {
      return errors.map((e) => ({ object, message: `${e.instancePath || "/"} ${e.message ?? "is invalid"}` }));
    }
    return [{ object, message: (err as Error).message }];
  }
}

/** Validates every object; the result is empty when all are valid. */
export async function validateAll(objects: unknown[]): Promise<ValidationProblem[]> {
  const problems: ValidationProblem[] = [];
  for (const obj of objects) problems.push(...(await validateObject(obj)));
  return problems;
}

/** Whether the schema packages can be loaded at all (they are devDependencies). */
export function schemasInstalled(): boolean {
  try {
    Bun.resolveSync("kubernetes-models/v1/Service", import.meta.dir);
    return true;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  if (!schemasInstalled()) {
    console.error("validate: the kubernetes-models package is not installed (npm ci installs it)");
    process.exit(2);
  }
  const file = process.argv[2];
  const text = file && file !== "-" ? await Bun.file(file).text() : await new Response(Bun.stdin.stream()).text();
  const objects = parseManifests(text);
  if (objects.length === 0) {
    console.error("validate: no objects in the input");
    process.exit(1);
  }
  const problems = await validateAll(objects);
  for (const p of problems) console.error(`validate: ${p.object}: ${p.message}`);
  if (problems.length > 0) process.exit(1);
  console.error(`validate: ${objects.length} objects valid`);
}
