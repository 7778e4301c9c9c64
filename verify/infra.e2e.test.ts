import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { InvariantVerdict } from "./invariants.ts";
import { missingTools } from "./infra/deployment.ts";
import type { FaultSummary } from "./infra/faults.ts";
import { probeNetns } from "./infra/netns.ts";

/**
 * A bounded `--scenario infra`: 2 replicas per role behind HAProxy, one of each killed, PostgreSQL
 * stopped fast and killed, Redis killed, the link between the roles lossy, slow and cut — and every
 * invariant must hold. Skipped, with the reason, only where haproxy, PostgreSQL's server binaries
 * or redis-server are missing; without `ip netns` the network fault is reported skipped and the
 * rest still runs.
 */

const ROOT = resolve(import.meta.dir, "..");
const missing = missingTools();
if (missing.length) console.warn(`verify/infra.e2e.test.ts: skipped, missing ${missing.join(", ")} (.ci/apt-packages lists them for CI)`);
const netns = probeNetns();

describe("verification run, infra scenario", () => {
  const out = mkdtempSync(join(tmpdir(), "valerix-chaos-infra-test-"));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  test.skipIf(missing.length > 0)(
    "400 orders through replica kills, PostgreSQL and Redis restarts and a partition: every invariant holds, every fault is in the report",
    async () => {
      const prefix = join(out, "report");
      const proc = Bun.spawn(
        [process.execPath, join(ROOT, "verify", "run.ts"), "--scenario", "infra", "--orders", "400", "--rate", "7", "--seed", "19", "--settle-timeout", "120", "--json-orders", "affected", "--out", prefix, "--plain"],
        { cwd: ROOT, stdout: "pipe", stderr: "pipe" },
      );
      const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
      if (code !== 0) console.error(stderr);
      expect(code).toBe(0);
      const report = JSON.parse(readFileSync(`${prefix}.json`, "utf8"));
      expect(report.verdict).toBe("pass");
      expect(report.summary.logical_orders).toBe(400);
      // Every invariant the run checks, none skipped: the ledger was read.
      expect(report.invariants.length).toBeGreaterThanOrEqual(12);
      expect(report.invariants.filter((v: InvariantVerdict) => v.status !== "pass" && !(v.status === "skipped" && v.name.startsWith("webhooks_")))).toEqual([]);
      // Never an internal error, whatever broke underneath.
      expect(Object.keys(report.summary.requests_by_status)).not.toContain("500");

      // No replica died on its own: every exit was a kill the schedule made.
      expect(report.infrastructure.crashes).toEqual([]);
      const faults = report.infrastructure.faults as FaultSummary[];
      expect(faults.map((f) => f.kind)).toEqual(["kill-replica", "network", "kill-replica", "postgres-fast-restart", "postgres-kill", "redis-kill"]);
      for (const f of faults) expect(f.error).toBeNull();
      const byKind = (k: string) => faults.filter((f) => f.kind === k);
      // While PostgreSQL is away, orders are refused with 503 and Retry-After, and only so.
      for (const f of [...byKind("postgres-fast-restart"), ...byKind("postgres-kill")]) {
        expect(f.requests_during["503"] ?? 0).toBeGreaterThan(0);
        expect(f.retry_after_503).toBe(f.requests_during["503"]!);
        // Taken again once it is back, without a restart (201, or 202 while a breaker it opened probes).
        expect(f.accepted_after_ms).not.toBeNull();
      }
      const [net] = byKind("network");
      if (netns.ok) {
        expect(net!.skipped).toBeNull();
        // Orders keep being accepted while the roles cannot talk, and settle after the heal (the invariants above).
        expect(net!.requests_during["202"] ?? 0).toBeGreaterThan(0);
      } else {
        expect(net!.skipped).toBe(netns.reason!);
      }
      const md = readFileSync(`${prefix}.md`, "utf8");
      expect(md).toContain("— PASS");
      expect(md).toContain("## Infrastructure faults");
    },
    330_000,
  );
});
