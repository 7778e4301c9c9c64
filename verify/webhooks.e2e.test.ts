import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { postgresAnswers } from "./backing-services.ts";
import type { InvariantVerdict } from "./invariants.ts";

/**
 * A bounded `npm run chaos -- --webhooks`: 150 orders under the moderate preset while the
 * receiver answers half the attempts 503 and goes down for a stretch, and the two relay processes
 * are killed with SIGKILL in turn; after healing every invariant holds, the five webhook ones
 * included. No holds, so no hold deadline to wait for. Needs PostgreSQL (the relays share the
 * orders database); skipped, with the reason, without it.
 */

const ROOT = resolve(import.meta.dir, "..");
const PG = process.env.CHAOS_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const pg = await postgresAnswers(PG);
if (!pg) console.warn(`verify/webhooks.e2e.test.ts: skipped, PostgreSQL does not answer at ${PG}`);

describe("verification run with webhooks", () => {
  const out = mkdtempSync(join(tmpdir(), "valerix-chaos-webhooks-test-"));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  test.skipIf(!pg)(
    "150 orders, a receiver failing half the time and down for a stretch, relays killed: every event delivered, in order, never at once",
    async () => {
      const prefix = join(out, "report");
      const proc = Bun.spawn(
        [process.execPath, join(ROOT, "verify", "run.ts"), "--scenario", "moderate", "--webhooks", "--orders", "150", "--rate", "12", "--hold-rate", "0", "--seed", "42", "--concurrency", "16", "--settle-timeout", "60", "--json-orders", "affected", "--out", prefix, "--plain"],
        { cwd: ROOT, stdout: "pipe", stderr: "pipe" },
      );
      const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
      if (code !== 0) console.error(stderr);
      expect(code).toBe(0);
      const report = JSON.parse(readFileSync(`${prefix}.json`, "utf8"));
      expect(report.verdict).toBe("pass");
      expect(report.invariants.map((v: InvariantVerdict) => v.status)).toEqual(Array(26).fill("pass"));
      const w = report.webhooks;
      expect(w.events_listed).toBeGreaterThan(150);
      // Delivered counts stock.low events too; the invariants judge each event.
      expect(w.events_delivered).toBeGreaterThanOrEqual(w.events_listed);
      // The receiver really was a bad one, and the relays really were killed.
      expect(w.answered_5xx).toBeGreaterThan(w.events_listed * 0.3);
      expect(w.receiver_down_ms).toBeGreaterThanOrEqual(5_000);
      expect(w.relay_kills.length).toBeGreaterThan(0);
      expect(w.signatures_failed).toBe(0);
      expect(w.drained).toBe(true);
      expect(readFileSync(`${prefix}.md`, "utf8")).toContain("## Webhooks");
    },
    150_000,
  );
});
