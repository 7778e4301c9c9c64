import { resolve } from "node:path";
import type { Subprocess } from "bun";

const ROOT = resolve(import.meta.dir, "../..");

// The same helpers the verification run's infrastructure pieces use.
import { freePort, waitFor } from "../../verify/infra/util.ts";
export { freePort, waitFor };

/** One role of the real executable (`bun src/main.ts`) as a child process. */
export class RoleProcess {
  proc: Subprocess | undefined;
  readonly url: string;
  output = "";

  constructor(
    readonly name: string,
    readonly port: number,
    readonly env: Record<string, string>,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  async start(): Promise<void> {
    this.proc = Bun.spawn(["bun", "src/main.ts"], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: "warn", HOST: "127.0.0.1", PORT: String(this.port), ...this.env },
      stdout: "pipe",
      stderr: "pipe",
    });
    for (const stream of [this.proc.stdout, this.proc.stderr] as ReadableStream<Uint8Array>[]) {
      void (async () => {
        const reader = stream.getReader();
        const decoder = new TextDecoder();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          this.output = (this.output + decoder.decode(value)).slice(-20_000);
        }
      })().catch(() => {});
    }
    await waitFor(async () => (await fetch(`${this.url}/health/live`)).ok, 30_000, `${this.name} to start`).catch((err) => {
      throw new Error(`${err.message}\n${this.output}`);
    });
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): Promise<number | null> {
    this.proc?.kill(signal);
    return this.proc ? this.proc.exited : Promise.resolve(null);
  }
}
