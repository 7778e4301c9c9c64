import { atExit } from "../processes.ts";
import { run } from "./util.ts";

/**
 * A network namespace of the run's own, for the inventory replicas, reached from the host by two
 * veth pairs: the *service* link carries the orders role's calls (through the balancer) and the
 * balancer's health checks, and is the one the faults impair; the *data* link carries inventory's
 * own PostgreSQL and Redis traffic and is left alone, so a partition between the roles is only that.
 *
 *   host (orders replicas, balancer, runner)          namespace vx<run> (inventory replicas)
 *   10.R.1.1  ── service veth (faults here) ──  10.R.1.2
 *   10.R.2.1  ── data veth ──────────────────  10.R.2.2   → private PostgreSQL and Redis on 10.R.2.1
 *
 * Impairments: with `tc netem` (when the kernel has it) loss and delay are netem's; without it, loss is
 * an nftables `numgen random` drop and the slow network a token-bucket rate limit (`tc tbf`), and the
 * report says which. A cut is an nftables drop of everything on the service link (a black hole:
 * callers time out, as across a real partition), or the link set down when nftables is missing.
 */

export type Impairment = { kind: "loss"; percent: number } | { kind: "slow"; delayMs: number; jitterMs: number; rateKbit: number } | { kind: "cut" };

export interface NetnsProbe {
  ok: boolean;
  /** Why the namespace cannot be made, said plainly; null when it can. */
  reason: string | null;
}

/** Whether `ip netns` works here (root or CAP_NET_ADMIN, the `ip` tool, veth in the kernel). */
export function probeNetns(): NetnsProbe {
  if (!Bun.which("ip")) return { ok: false, reason: "the `ip` tool (Debian package iproute2) is not installed" };
  const name = `vxprobe${process.pid % 100000}`;
  const add = run(["ip", "netns", "add", name], { allowFailure: true });
  if (!add.ok) return { ok: false, reason: `\`ip netns add\` is not permitted here (needs root or CAP_NET_ADMIN): ${add.output.trim()}` };
  const veth = run(["ip", "-n", name, "link", "add", "vxp0", "type", "veth", "peer", "name", "vxp1"], { allowFailure: true });
  run(["ip", "netns", "del", name], { allowFailure: true });
  if (!veth.ok) return { ok: false, reason: `veth pairs cannot be made here: ${veth.output.trim()}` };
  return { ok: true, reason: null };
}

export class InventoryNetns {
  readonly ns: string;
  /** Host and namespace ends of the service link and the data link. */
  readonly serviceHost: string;
  readonly serviceNs: string;
  readonly dataHost: string;
  readonly dataNs: string;
  readonly dataCidr: string;
  private readonly vs: [string, string];
  private readonly vd: [string, string];
  /** `netem` or `nftables + tbf`: what impairs the link on this kernel. */
  mechanism = "";
  private readonly hasNft = !!Bun.which("nft");
  private removeAtExit: () => void = () => {};
  private current: Impairment | null = null;

  private constructor(runId: string, octet: number) {
    const id = runId.slice(0, 8);
    this.ns = `vx${id}`;
    this.vs = [`vx${id}s0`, `vx${id}s1`];
    this.vd = [`vx${id}d0`, `vx${id}d1`];
    this.serviceHost = `10.${octet}.1.1`;
    this.serviceNs = `10.${octet}.1.2`;
    this.dataHost = `10.${octet}.2.1`;
    this.dataNs = `10.${octet}.2.2`;
    this.dataCidr = `10.${octet}.2.0/30`;
  }

  /** Makes the namespace and both links; throws with the tool's words when a step fails (and undoes what it made). */
  static create(runId: string): InventoryNetns {
    const used = run(["ip", "-4", "-o", "addr", "show"], { allowFailure: true }).output;
    let octet = 200 + (parseInt(runId.slice(0, 4), 16) % 50);
    while (used.includes(` 10.${octet}.`)) octet = 200 + ((octet - 199) % 50);
    const n = new InventoryNetns(runId, octet);
    n.removeAtExit = atExit(() => n.destroy());
    try {
      const ip = (...args: string[]) => run(["ip", ...args]);
      ip("netns", "add", n.ns);
      ip("-n", n.ns, "link", "set", "lo", "up");
      for (const [[host, inNs], hostIp, nsIp] of [
        [n.vs, n.serviceHost, n.serviceNs],
        [n.vd, n.dataHost, n.dataNs],
      ] as const) {
        ip("link", "add", host, "type", "veth", "peer", "name", inNs);
        ip("link", "set", inNs, "netns", n.ns);
        ip("addr", "add", `${hostIp}/30`, "dev", host);
        ip("link", "set", host, "up");
        ip("-n", n.ns, "addr", "add", `${nsIp}/30`, "dev", inNs);
        ip("-n", n.ns, "link", "set", inNs, "up");
      }
      const netem = run(["tc", "qdisc", "add", "dev", n.vs[0], "root", "netem", "delay", "0ms"], { allowFailure: true });
      if (netem.ok) {
        run(["tc", "qdisc", "del", "dev", n.vs[0], "root"], { allowFailure: true });
        n.mechanism = "tc netem";
      } else {
        n.mechanism = `${n.hasNft ? "nftables random drop" : "no loss (nftables missing)"} and tc tbf rate limit (this kernel has no netem)`;
      }
    } catch (err) {
      n.destroy();
      throw err;
    }
    return n;
  }

  /** Runs a command inside the namespace (it execs in place, so the pid is the command's own). */
  get wrap(): string[] {
    return ["ip", "netns", "exec", this.ns];
  }

  describe(i: Impairment): string {
    const netem = this.mechanism === "tc netem";
    switch (i.kind) {
      case "loss":
        return `${i.percent} % packet loss each way (${netem ? "netem" : "nftables numgen drop"})`;
      case "slow":
        return netem ? `${i.delayMs} ± ${i.jitterMs} ms delay each way (netem)` : `link rate-limited to ${i.rateKbit} kbit/s each way (tbf; no netem in this kernel)`;
      case "cut":
        return this.hasNft ? "every packet dropped both ways (nftables)" : "service link down";
    }
  }

  /** Replaces whatever impairs the service link with `i`. */
  impair(i: Impairment): void {
    this.heal();
    this.current = i;
    const netem = this.mechanism === "tc netem";
    const bothEnds = (args: string[]) => {
      run(["tc", "qdisc", "replace", "dev", this.vs[0], "root", ...args]);
      run(["tc", "-n", this.ns, "qdisc", "replace", "dev", this.vs[1], "root", ...args]);
    };
    if (i.kind === "loss") {
      if (netem) bothEnds(["netem", "loss", `${i.percent}%`]);
      else if (this.hasNft) this.nftDrop(`numgen random mod 100 < ${i.percent} `);
    } else if (i.kind === "slow") {
      if (netem) bothEnds(["netem", "delay", `${i.delayMs}ms`, `${i.jitterMs}ms`]);
      else bothEnds(["tbf", "rate", `${i.rateKbit}kbit`, "burst", "4kb", "latency", "2s"]);
    } else if (this.hasNft) {
      this.nftDrop("");
    } else {
      run(["ip", "link", "set", this.vs[0], "down"]);
    }
  }

  private nftDrop(match: string): void {
    const dev = this.vs[1];
    const rules = `table inet valerix_fault {
  chain in { type filter hook input priority 0; policy accept; iifname "${dev}" ${match}drop; }
  chain out { type filter hook output priority 0; policy accept; oifname "${dev}" ${match}drop; }
}
`;
    run(["ip", "netns", "exec", this.ns, "nft", "-f", "-"], { input: rules });
  }

  /** Takes every impairment off the service link. */
  heal(): void {
    if (!this.current) return;
    run(["tc", "qdisc", "del", "dev", this.vs[0], "root"], { allowFailure: true });
    run(["tc", "-n", this.ns, "qdisc", "del", "dev", this.vs[1], "root"], { allowFailure: true });
    if (this.hasNft) run(["ip", "netns", "exec", this.ns, "nft", "delete", "table", "inet", "valerix_fault"], { allowFailure: true });
    run(["ip", "link", "set", this.vs[0], "up"], { allowFailure: true });
    this.current = null;
  }

  /** Deletes the namespace and both links (deleting one end of a veth deletes the pair). */
  destroy(): void {
    this.removeAtExit();
    run(["ip", "link", "del", this.vs[0]], { allowFailure: true });
    run(["ip", "link", "del", this.vd[0]], { allowFailure: true });
    run(["ip", "netns", "del", this.ns], { allowFailure: true });
  }
}
