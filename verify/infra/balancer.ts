import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { trackChild } from "../processes.ts";
import { freePort, waitFor } from "./util.ts";

/**
 * HAProxy in front of each role, as a Kubernetes Service or an ingress would be: round robin over
 * the replicas, health checks on `/health/ready`, a replica that stops answering them taken out
 * within about a second and put back once it passes twice. Only connection failures are retried
 * on another replica (HAProxy's default `retry-on conn-failure`): a request that reached a replica
 * is never sent twice by the balancer, so an order's fate stays with its key and its client.
 * With no replica ready, the balancer answers 503 with `Retry-After: 1` and a problem body.
 */

export interface Backend {
  name: "orders" | "inventory";
  /** The frontend's port on 127.0.0.1. */
  port: number;
  servers: Array<{ name: string; host: string; port: number }>;
}

export const NO_READY_REPLICA =
  '{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"No replica behind the load balancer is ready; try again shortly."}';

/** The 503 the balancer answers when no replica is ready, as HAProxy's `errorfile` takes it (a raw HTTP response). */
export function noReplicaResponse(): string {
  return [
    "HTTP/1.1 503 Service Unavailable",
    "content-type: application/problem+json",
    "retry-after: 1",
    "cache-control: no-store",
    "connection: close",
    `content-length: ${NO_READY_REPLICA.length}`,
    "",
    NO_READY_REPLICA,
  ].join("\r\n");
}

/**
 * `haproxyConfig([{ name: "orders", port: 8080, servers: [{ name: "orders-1", host: "127.0.0.1", port: 41000 }] }], "/tmp/x/503.http")`
 * → the configuration text. `timeout server` outlasts any answer a role gives within its own
 * deadlines (inventory's 3 s timeout, a request's database calls), so the balancer never cuts a
 * request that would have been answered.
 */
export function haproxyConfig(backends: readonly Backend[], errorFile: string, opts: { checkIntervalMs?: number } = {}): string {
  const inter = opts.checkIntervalMs ?? 500;
  const lines = [
    "global",
    "  maxconn 4096",
    "",
    "defaults",
    "  mode http",
    "  timeout connect 1s",
    "  timeout client 60s",
    "  timeout server 30s",
    "  timeout check 1s",
    "  timeout http-keep-alive 10s",
    "  retries 2",
    "  option redispatch",
    `  errorfile 503 ${errorFile}`,
    "",
  ];
  for (const b of backends) {
    lines.push(`frontend ${b.name}`, `  bind 127.0.0.1:${b.port}`, `  default_backend ${b.name}_replicas`, "");
    lines.push(
      `backend ${b.name}_replicas`,
      "  balance roundrobin",
      "  option httpchk GET /health/ready",
      "  http-check expect status 200",
      `  default-server check inter ${inter} fastinter ${inter} downinter ${inter} fall 2 rise 2 observe layer4 error-limit 3 on-error mark-down`,
      ...b.servers.map((s) => `  server ${s.name} ${s.host}:${s.port}`),
      "",
    );
  }
  return lines.join("\n");
}

export class Balancer {
  private proc: Subprocess | null = null;
  readonly ports = { orders: freePort(), inventory: freePort() };
  readonly configPath: string;

  constructor(
    private readonly dir: string,
    private readonly servers: { orders: Backend["servers"]; inventory: Backend["servers"] },
  ) {
    mkdirSync(dir, { recursive: true });
    this.configPath = join(dir, "haproxy.cfg");
  }

  static available(): boolean {
    return !!Bun.which("haproxy");
  }

  url(role: "orders" | "inventory"): string {
    return `http://127.0.0.1:${this.ports[role]}`;
  }

  /** Writes the configuration, checks it with `haproxy -c`, starts HAProxy in the foreground and waits for a ready replica of each role. */
  async start(logFile: string, timeoutMs = 30_000): Promise<void> {
    const errorFile = join(this.dir, "503.http");
    writeFileSync(errorFile, noReplicaResponse());
    const backends: Backend[] = [
      { name: "orders", port: this.ports.orders, servers: this.servers.orders },
      { name: "inventory", port: this.ports.inventory, servers: this.servers.inventory },
    ];
    writeFileSync(this.configPath, haproxyConfig(backends, errorFile));
    const check = Bun.spawnSync(["haproxy", "-c", "-q", "-f", this.configPath], { stdout: "pipe", stderr: "pipe" });
    if (!check.success) throw new Error(`haproxy -c refused the configuration:\n${check.stderr.toString()}${check.stdout.toString()}`);
    this.proc = Bun.spawn(["haproxy", "-db", "-f", this.configPath], { stdout: Bun.file(logFile), stderr: Bun.file(`${logFile}.err`), stdin: "ignore" });
    trackChild(this.proc);
    for (const role of ["orders", "inventory"] as const) {
      await waitFor(
        async () => {
          if (this.proc?.exitCode !== null) throw new Error(`haproxy exited with ${this.proc?.exitCode}`);
          const res = await fetch(`${this.url(role)}/health/ready`, { signal: AbortSignal.timeout(2_000) });
          await res.body?.cancel().catch(() => {});
          return res.ok;
        },
        timeoutMs,
        `HAProxy's ${role} frontend to reach a ready replica`,
      );
    }
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    p.kill("SIGKILL");
    await p.exited;
    this.proc = null;
  }
}
