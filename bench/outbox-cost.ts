import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { openDatabase } from "../platform/db.ts";
import { FIRST_ITEM, STOCK } from "./harness.ts";
import { postgresCpuSeconds } from "./machine.ts";
import { findPgbench, measureLimit, prepareLimitDatabase, type LimitResult } from "./pgbench.ts";
import { servicesFromEnv, createDatabase } from "./services.ts";

/**
 * `bun bench/outbox-cost.ts [--rounds N] [--duration S] [--size N] [--clients N] [--lines N]`:
 * what the outbox trigger costs the order path's own SQL. pgbench runs the app's group-committed
 * claim, deduct and confirm statements (the harness's own-SQL limit) at `size` orders per
 * statement on three databases that differ only in the trigger on `orders.order_history`: none,
 * the row trigger of 0006 (one plpgsql body per history row) and the statement trigger of 0009
 * (one set-based insert per statement). Variants run back to back, their order rotating between
 * rounds; PostgreSQL's CPU per order is the figure to read on a shared machine.
 */

export type Variant = "none" | "row";
export const VARIANTS: readonly Variant[] = ["none", "row"];

export interface CostOptions {
  rounds: number;
  durationS: number;
  warmupS: number;
  /** Orders per statement, all three statements. */
  size: number;
  clients: number;
  lines: number;
  items: number;
}

export function parseCostArgs(argv: string[]): CostOptions {
  const o: CostOptions = { rounds: 3, durationS: 10, warmupS: 2, size: 4, clients: 6, lines: 1, items: 100 };
  const keys: Record<string, keyof CostOptions> = { "--rounds": "rounds", "--duration": "durationS", "--warmup": "warmupS", "--size": "size", "--clients": "clients", "--lines": "lines", "--items": "items" };
  for (let i = 0; i < argv.length; i++) {
    const key = keys[argv[i]!];
    if (!key) throw new Error(`unknown option ${argv[i]}`);
    const n = Number(argv[++i]);
    if (!Number.isFinite(n) || n < (key === "warmupS" ? 0 : 1)) throw new Error(`${argv[i - 1]} needs a positive number, got ${argv[i]}`);
    o[key] = n;
  }
  return o;
}

/** Round `r` (from 0) runs the variants rotated by `r`, so none of them always goes first. */
export const rotation = (r: number): Variant[] => VARIANTS.map((_, i) => VARIANTS[(i + r) % VARIANTS.length]!);

export interface Measured {
  variant: Variant;
  ordersPerSecond: number;
  postgresCpuMsPerOrder: number | null;
  p99: number;
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Per variant: medians over rounds, and each one's ratio to `none` (per round, then the median). */
export function summarizeCost(rounds: Measured[][]): string {
  const out = [`medians of ${rounds.length} round(s); ratio: to no trigger in the same round`];
  for (const v of VARIANTS) {
    const mine = rounds.flatMap((r) => r.filter((m) => m.variant === v));
    const cpu = mine.flatMap((m) => (m.postgresCpuMsPerOrder === null ? [] : [m.postgresCpuMsPerOrder]));
    const ratios = rounds.flatMap((r) => {
      const [m, none] = [r.find((x) => x.variant === v), r.find((x) => x.variant === "none")];
      return m && none ? [[m.ordersPerSecond / none.ordersPerSecond, m.postgresCpuMsPerOrder && none.postgresCpuMsPerOrder ? m.postgresCpuMsPerOrder / none.postgresCpuMsPerOrder : NaN]] : [];
    });
    out.push(
      `  ${v.padEnd(10)} ${median(mine.map((m) => m.ordersPerSecond)).toFixed(0).padStart(6)} orders/s (${mine.map((m) => m.ordersPerSecond.toFixed(0)).join(", ")})` +
        ` · ratio ${median(ratios.map((r) => r[0]!)).toFixed(2)}` +
        (cpu.length ? ` · PostgreSQL CPU ${median(cpu).toFixed(3)} ms/order (${cpu.map((c) => c.toFixed(3)).join(", ")}) · ratio ${median(ratios.map((r) => r[1]!)).toFixed(2)}` : "") +
        ` · p99 ${median(mine.map((m) => m.p99)).toFixed(1)} ms`,
    );
  }
  return out.join("\n");
}

async function measure(o: CostOptions, variant: Variant, workDir: string, pgbench: string): Promise<LimitResult> {
  const services = servicesFromEnv();
  const db = await createDatabase(services, `outbox_${variant}`);
  try {
    await prepareLimitDatabase(db.url, FIRST_ITEM, o.items, STOCK);
    const database = await openDatabase({ databaseUrl: db.url, dataDir: "", poolSize: 2 });
    try {
      if (variant === "none") await sql`drop trigger order_history_outbox on orders.order_history`.execute(database.db);
    } finally {
      await database.close();
    }
    const sizes = { claim: o.size, deduct: o.size, transition: o.size };
    const batches = Math.ceil((8_000 * (o.warmupS + o.durationS + 2)) / o.size);
    return await measureLimit({
      script: "order-batch", pgbench, database: db, workDir, clients: o.clients, warmupS: o.warmupS, durationS: o.durationS,
      firstItem: FIRST_ITEM, lastItem: FIRST_ITEM + o.items - 1, postgresCpu: postgresCpuSeconds, batch: { lines: o.lines, sizes, batches },
    });
  } finally {
    await db.drop();
  }
}

if (import.meta.main) {
  const o = parseCostArgs(process.argv.slice(2));
  const pgbench = findPgbench();
  if (!pgbench) throw new Error("pgbench not found");
  const workDir = join(tmpdir(), `valerix-outbox-cost-${Date.now()}`);
  mkdirSync(workDir, { recursive: true });
  console.log(`outbox trigger cost: ${o.size} orders per statement, ${o.lines} line(s), ${o.clients} clients, ${o.durationS} s after ${o.warmupS} s, ${o.rounds} round(s)`);
  const rounds: Measured[][] = [];
  for (let r = 0; r < o.rounds; r++) {
    const round: Measured[] = [];
    for (const variant of rotation(r)) {
      const l = await measure(o, variant, workDir, pgbench);
      const m = { variant, ordersPerSecond: l.ordersPerSecond ?? 0, postgresCpuMsPerOrder: l.postgresCpuMsPerTransaction, p99: l.latencyMs.p99 };
      console.log(`  round ${r + 1} ${variant.padEnd(10)} ${m.ordersPerSecond.toFixed(0)} orders/s · PostgreSQL CPU ${m.postgresCpuMsPerOrder} ms/order · p99 ${m.p99} ms`);
      round.push(m);
    }
    rounds.push(round);
  }
  console.log(summarizeCost(rounds));
}
