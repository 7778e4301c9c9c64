/** Small helpers the infrastructure pieces share: ports, waiting, processes, commands. */

/** A free loopback port, chosen by the kernel. */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await Bun.sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs a command to its end: `run(["ip", "netns", "list"])` → `{ ok: true, output: "…" }`. */
export function run(cmd: string[], opts: { allowFailure?: boolean; input?: string } = {}): { ok: boolean; output: string } {
  const res = Bun.spawnSync(cmd, {
    stdout: "pipe",
    stderr: "pipe",
    stdin: opts.input === undefined ? "ignore" : new TextEncoder().encode(opts.input),
    env: { ...process.env, LC_ALL: "C" },
  });
  const output = (res.stdout?.toString() ?? "") + (res.stderr?.toString() ?? "");
  if (!res.success && !opts.allowFailure) throw new Error(`${cmd.join(" ")} failed (exit ${res.exitCode}):\n${output}`);
  return { ok: res.success, output };
}

/** `run` without blocking the event loop, for steps taken while the load runs (clients' clocks keep ticking). */
export async function runAsync(cmd: string[], opts: { allowFailure?: boolean } = {}): Promise<{ ok: boolean; output: string }> {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore", env: { ...process.env, LC_ALL: "C" } });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const output = out + err;
  if (code !== 0 && !opts.allowFailure) throw new Error(`${cmd.join(" ")} failed (exit ${code}):\n${output}`);
  return { ok: code === 0, output };
}
