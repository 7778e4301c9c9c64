import type { InfraReport } from "./run-faults.ts";

/** The report's section on infrastructure faults: one row per fault, then what each did step by step. */

const fmt = (o: Record<string, number>) =>
  Object.entries(o)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k === "0" ? "no answer" : k} × ${v}`)
    .join(", ") || "none";

const s = (ms: number | null) => (ms === null ? "–" : `${Math.round(ms / 100) / 10} s`);

export function renderInfraFaults(infra: InfraReport | null | undefined): string[] {
  if (!infra) return [];
  const out = ["## Infrastructure faults", "", infra.topology, ""];
  const crashes = infra.crashes ?? [];
  out.push(
    crashes.length
      ? `**Replicas that exited without being killed: ${crashes.length}** (each restarted): ${crashes.map((c) => `${c.replica} at ${s(c.at_ms)}, ${c.exit_code === null ? "killed by a signal" : `exit code ${c.exit_code}`}, ${c.restart}`).join("; ")}.`
      : "No replica exited without being killed: every process that stopped was one the run killed.",
    "",
  );
  if (!infra.faults.length) return [...out, "No infrastructure faults were scheduled.", ""];
  out.push(
    "| fault | start | end | order requests sent during it, by answer | 503 with Retry-After | orders first sent during it, by first answer | first 201/202 after it | first 201 after it |",
    "|---|---:|---:|---|---:|---|---:|---:|",
  );
  for (const f of infra.faults) {
    if (f.skipped) {
      out.push(`| ${f.name} | – | – | skipped: ${f.skipped.replaceAll("|", "\\|")} | – | – | – | – |`);
      continue;
    }
    out.push(
      `| ${f.name}${f.error ? ` (**failed**: ${f.error.replaceAll("|", "\\|")})` : ""} | ${s(f.start_ms)} | ${s(f.end_ms)} | ${fmt(f.requests_during)} | ${f.retry_after_503} | ${fmt(f.orders_during)} | ${s(f.accepted_after_ms ?? null)} | ${s(f.recovered_after_ms)} |`,
    );
  }
  out.push(
    "",
    "Times are seconds since the run started; a kill's start is the moment of the kill, its end the moment its replacement was ready. *First 201/202 after it*: from the fault's end to the answer of the first request sent after it that was accepted, i.e. orders taken again; *first 201*: the first one confirmed at once, i.e. the whole path placing orders again (a circuit breaker the fault opened answers 202 until its probe passes, about 10 s). 503s during a database or Redis outage come from the replicas themselves or, once every replica of a role reports unready, from HAProxy; both carry `Retry-After`.",
    "",
    "The server counters further down are summed over the replicas alive at the end: a replica restarted during the run counts only since its restart.",
    "",
  );
  for (const f of infra.faults) {
    if (f.skipped || !f.steps.length) continue;
    out.push(`- **${f.name}**: ${f.steps.map((st) => `${s(st.at_ms)} ${st.what}`).join("; ")}${f.notes.length ? `. ${f.notes.join("; ")}` : ""}`);
  }
  out.push("");
  return out;
}
