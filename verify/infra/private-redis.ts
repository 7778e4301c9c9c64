import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { redisAnswers } from "../backing-services.ts";
import { trackChild } from "../processes.ts";
import { freePort, waitFor } from "./util.ts";

/**
 * A redis-server of the run's own, on its own port and data folder, so the infra scenarios can
 * `kill -9` it mid-load and start it again without touching the machine's shared Redis. It keeps
 * an append-only file fsynced every second, as a deployment that uses Redis Streams as its retry
 * queue should: a kill loses at most the last second, which the sweeper then finds.
 */
export class PrivateRedis {
  private proc: Subprocess | null = null;
  readonly port = freePort();
  readonly dir = mkdtempSync(join(tmpdir(), "valerix-redis-"));
  private starts = 0;

  /** `bind`: the addresses it listens on, loopback first (a network namespace's side may follow). */
  constructor(private readonly bind: string[] = ["127.0.0.1"]) {}

  static available(): boolean {
    return !!Bun.which("redis-server");
  }

  url(host = "127.0.0.1"): string {
    return `redis://${host}:${this.port}`;
  }

  get pid(): number | null {
    return this.proc && this.proc.exitCode === null && !this.proc.killed ? this.proc.pid : null;
  }

  async start(timeoutMs = 15_000): Promise<void> {
    this.starts++;
    const proc = Bun.spawn(
      [
        "redis-server",
        "--port", String(this.port),
        "--bind", ...this.bind,
        "--protected-mode", "no",
        "--dir", this.dir,
        "--save", "",
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--logfile", join(this.dir, `redis.${this.starts}.log`),
        "--daemonize", "no",
      ],
      { stdout: "ignore", stderr: "ignore", stdin: "ignore" },
    );
    trackChild(proc);
    this.proc = proc;
    await waitFor(() => redisAnswers(this.url()), timeoutMs, `the private Redis on port ${this.port} to answer`);
  }

  /** `kill -9`: no shutdown save, connections cut mid-command. */
  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    p.kill("SIGKILL");
    await p.exited;
  }

  async destroy(): Promise<void> {
    await this.kill9().catch(() => {});
    this.proc = null;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
