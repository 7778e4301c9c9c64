import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseOptions, replayCommand, UsageError } from "../options.ts";
import type { Attempt, OrderRecord } from "../types.ts";
import { haproxyConfig, noReplicaResponse, NO_READY_REPLICA } from "./balancer.ts";
import { runSchedule, summarizeFaults, type FaultRecord, type FaultTargets } from "./faults.ts";
import { renderInfraFaults } from "./report.ts";
import { chaosPresetFor, faultSchedule } from "./scenarios.ts";

const attempt = (at_ms: number, status: number, extra: Partial<Attempt> = {}): Attempt => ({ lane: "main", at_ms, duration_ms: 10, status, ...extra });
const order = (sent_ms: number, attempts: Attempt[], first: number | null): OrderRecord => ({
  index: 0,
  key: `k${sent_ms}`,
  lines: [{ item_id: "i", quantity: 1 }],
  form: "lines",
  duplicate: false,
  cancel: null,
  attempts,
  answers: first === null ? [] : [{ lane: "main", status: first, kind: "order", order_id: "o", order_status: null, at_ms: sent_ms + 1 }],
  sent_ms,
  answered_ms: first === null ? null : sent_ms + 1,
  reconciled: false,
  final: null,
});

describe("infra options", () => {
  test("infra scenarios imply two replicas, take --replicas, and carry it into the replay command", () => {
    const o = parseOptions(["--scenario", "infra", "--orders", "300", "--seed", "1"], {})!;
    expect(o.replicas).toBe(2);
    expect(replayCommand(o)).toContain("--scenario infra --orders 300");
    expect(replayCommand(o)).toContain("--replicas 2");
    expect(parseOptions(["--scenario", "infra-extreme", "--replicas", "3"], {})!.replicas).toBe(3);
    expect(parseOptions(["--scenario", "moderate"], {})!.replicas).toBe(1);
    expect(replayCommand(parseOptions(["--scenario", "moderate", "--seed", "1"], {})!)).not.toContain("--replicas");
    expect(() => parseOptions(["--replicas", "0"], {})).toThrow(/--replicas/);
    expect(() => parseOptions(["--scenario", "infra", "--target", "http://h:1"], {})).toThrow(UsageError);
    expect(() => parseOptions(["--scenario", "infra", "--embedded"], {})).toThrow(/not with --target or --embedded/);
  });

  test("infra runs no inventory chaos, infra-extreme a mild one, the presets their own", () => {
    expect(chaosPresetFor("infra")).toBeNull();
    expect(chaosPresetFor("infra-extreme")).toBe("mild");
    expect(chaosPresetFor("moderate")).toBe("moderate");
    expect(chaosPresetFor("none")).toBeNull();
  });
});

describe("fault schedules", () => {
  test("infra has every kind of fault, one at a time; infra-extreme overlaps them", () => {
    const infra = faultSchedule("infra", 2);
    expect(new Set(infra.map((f) => f.action.kind))).toEqual(new Set(["kill-replica", "network", "postgres-fast-restart", "postgres-kill", "redis-kill"]));
    expect(infra.slice(1).every((f) => f.afterPreviousS !== undefined)).toBe(true);
    const killed = infra.flatMap((f) => (f.action.kind === "kill-replica" ? [f.action.role] : []));
    expect(killed.sort()).toEqual(["inventory", "orders"]);
    const net = infra.find((f) => f.action.kind === "network")!.action;
    expect(net.kind === "network" && net.steps.map((s) => s.impairment.kind)).toEqual(["loss", "slow", "cut"]);

    const extreme = faultSchedule("infra-extreme", 2);
    expect(extreme.every((f) => f.afterPreviousS === undefined)).toBe(true);
    // Some fault starts before the one planned just before it can have ended.
    expect(extreme.some((f, i) => i > 0 && f.at - extreme[i - 1]!.at < 0.05)).toBe(true);
    // With one replica per role there is no second replica to kill.
    expect(faultSchedule("infra-extreme", 1).some((f) => f.action.kind === "kill-replica" && f.action.replica > 0)).toBe(false);
    expect(faultSchedule("moderate", 2)).toEqual([]);
  });

  test("the runner keeps order and timing, skips the network faults with the reason, and goes on after a failed step", async () => {
    let now = 0;
    const calls: string[] = [];
    const targets: FaultTargets = {
      killReplica: async (role, i) => (calls.push(`kill ${role} ${i}`), "killed"),
      restartReplica: async (role, i) => (calls.push(`restart ${role} ${i}`), "restarted"),
      postgresFastStop: async () => {
        throw new Error("pg_ctl: no server running\nmore");
      },
      postgresKill: async () => "killed pg",
      postgresStart: async () => "started pg",
      redisKill: async () => "killed redis",
      redisStart: async () => "started redis",
      network: "`ip netns add` is not permitted here",
    };
    const clock = {
      elapsed: () => now,
      sleep: async (ms: number) => void (now += ms),
      loadStartMs: 0,
      plannedLoadMs: 60_000,
    };
    const run = runSchedule(faultSchedule("infra", 2), targets, clock);
    await run.done;
    const r = run.records;
    expect(r.map((f) => f.kind)).toEqual(["kill-replica", "network", "kill-replica", "postgres-fast-restart", "postgres-kill", "redis-kill"]);
    expect(r[1]!.skipped).toContain("not permitted");
    expect(r[1]!.start_ms).toBeNull();
    expect(r[3]!.error).toBe("pg_ctl: no server running");
    expect(r[4]!.steps.map((s) => s.what)).toEqual(["killed pg", "started pg"]);
    expect(calls).toEqual(["kill inventory 0", "restart inventory 0", "kill orders 0", "restart orders 0"]);
    for (let i = 1; i < r.length; i++) {
      if (r[i]!.start_ms !== null && r[i - 1]!.end_ms !== null) expect(r[i]!.start_ms!).toBeGreaterThanOrEqual(r[i - 1]!.end_ms!);
    }
  });
});

describe("fault summary", () => {
  const fault = (start: number, end: number): FaultRecord => ({ name: "f", kind: "postgres-kill", planned_ms: start, start_ms: start, end_ms: end, skipped: null, steps: [], notes: [], error: null });

  test("counts the requests sent during a fault by answer, the 503s with Retry-After, and the time to the next 201", () => {
    const orders = [
      order(900, [attempt(900, 201)], 201),
      order(1_000, [attempt(1_000, 503, { retry_after_s: 1 }), attempt(1_500, 503), attempt(2_100, 201)], 201),
      order(1_200, [attempt(1_200, 0, { error: "reset" }), attempt(2_500, 202)], 202),
    ];
    const [s] = summarizeFaults(orders, [fault(1_000, 2_000)]);
    expect(s!.requests_during).toEqual({ "503": 2, "0": 1 });
    expect(s!.retry_after_503).toBe(1);
    expect(s!.orders_during).toEqual({ "201": 1, "202": 1 });
    expect(s!.recovered_after_ms).toBe(110);
    expect(s!.accepted_after_ms).toBe(110);
    const [q] = summarizeFaults([order(1_000, [attempt(2_000, 202), attempt(2_300, 201)], 202)], [fault(1_000, 2_000)]);
    expect(q!.accepted_after_ms).toBe(10);
    expect(q!.recovered_after_ms).toBe(310);
    const [skipped] = summarizeFaults(orders, [{ ...fault(0, 0), start_ms: null, end_ms: null, skipped: "no netns" }]);
    expect(skipped!.requests_during).toEqual({});
    expect(skipped!.recovered_after_ms).toBeNull();
  });

  test("the report section lists every fault, says which were skipped and why", () => {
    const [s] = summarizeFaults([order(1_000, [attempt(1_000, 503, { retry_after_s: 1 })], null)], [fault(1_000, 2_000)]);
    const md = renderInfraFaults({ topology: "2 + 2 replicas", faults: [s!, { ...s!, name: "partition", skipped: "`ip netns` is not permitted", start_ms: null }], crashes: [] }).join("\n");
    expect(md).toContain("## Infrastructure faults");
    expect(md).toContain("| f | 1 s | 2 s | 503 × 1 | 1 | none × 1 | – | – |");
    expect(md).toContain("skipped: `ip netns` is not permitted");
    expect(md).toContain("No replica exited without being killed");
    const crashed = renderInfraFaults({ topology: "t", faults: [], crashes: [{ replica: "orders replica 2 (pid 7)", exit_code: 1, at_ms: 12_300, restart: "restarted as pid 9" }] }).join("\n");
    expect(crashed).toContain("**Replicas that exited without being killed: 1** (each restarted): orders replica 2 (pid 7) at 12.3 s, exit code 1");
    expect(renderInfraFaults(null)).toEqual([]);
  });
});

describe("HAProxy configuration", () => {
  const backends = [
    { name: "orders" as const, port: 8080, servers: [{ name: "orders-1", host: "127.0.0.1", port: 41000 }, { name: "orders-2", host: "127.0.0.1", port: 41001 }] },
    { name: "inventory" as const, port: 8081, servers: [{ name: "inventory-1", host: "10.200.1.2", port: 42000 }] },
  ];

  test("health checks on /health/ready, only connection failures retried, a 503 with Retry-After when no replica is ready", () => {
    const cfg = haproxyConfig(backends, "/x/503.http");
    expect(cfg).toContain("option httpchk GET /health/ready");
    expect(cfg).toContain("bind 127.0.0.1:8080");
    expect(cfg).toContain("server inventory-1 10.200.1.2:42000");
    expect(cfg).not.toContain("retry-on");
    expect(cfg).toContain("errorfile 503 /x/503.http");
    const raw = noReplicaResponse();
    expect(raw.split("\r\n")[0]).toBe("HTTP/1.1 503 Service Unavailable");
    expect(raw).toContain("retry-after: 1");
    expect(raw.endsWith(NO_READY_REPLICA)).toBe(true);
    expect(JSON.parse(NO_READY_REPLICA).status).toBe(503);
  });

  test.skipIf(!Bun.which("haproxy"))("haproxy -c accepts it", () => {
    const dir = mkdtempSync(join(tmpdir(), "valerix-haproxy-"));
    try {
      writeFileSync(join(dir, "503.http"), noReplicaResponse());
      writeFileSync(join(dir, "haproxy.cfg"), haproxyConfig(backends, join(dir, "503.http")));
      const res = Bun.spawnSync(["haproxy", "-c", "-f", join(dir, "haproxy.cfg")], { stdout: "pipe", stderr: "pipe" });
      expect(res.stderr.toString() + res.stdout.toString()).not.toContain("ALERT");
      expect(res.exitCode).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
