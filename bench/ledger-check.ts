/**
 * What the drift alarm costs: one full pass over a ledger of N movements, and the incremental
 * checks after it, on PostgreSQL (a database of its own on the test server, dropped after) and
 * on PGlite (a temporary folder).
 *
 *   bun bench/ledger-check.ts [--movements 1000000] [--items 1000] [--backends pglite,postgres]
 *
 * Prints, per backend, the times of three full passes and of incremental checks after 0, 1,000
 * and 60,000 new movements (60 s of orders at 1,000 order lines per second).
 */
import { parseArgs } from "node:util";
import { sql } from "kysely";
import { BACKENDS, openTestDatabase, type Backend } from "../tests/support/system.ts";
import { createInventoryModule } from "../modules/inventory/index.ts";
import type { Database } from "../platform/db.ts";

const { values } = parseArgs({
  options: { movements: { type: "string", default: "1000000" }, items: { type: "string", default: "1000" }, backends: { type: "string", default: BACKENDS.join(",") } },
});
const MOVEMENTS = Number(values.movements);
const ITEMS = Number(values.items);

/** Movements `from`..`to` (1-based): each item's first is its `create`, the rest deductions of 1. */
async function load(database: Database, from: number, to: number) {
  // In slices: the pool's statement timeout is made for orders, not for bulk loads.
  for (let lo = from; lo <= to; lo += 100_000) {
    const hi = Math.min(to, lo + 99_999);
    await sql`insert into inventory.movements (item_id, type, quantity_change)
      select 'i' || (1 + g % ${ITEMS}), case when g <= ${ITEMS} then 'create' else 'deduct' end, case when g <= ${ITEMS} then 10000000 else -1 end
      from generate_series(${lo}::int, ${hi}::int) g`.execute(database.db);
  }
  await sql`update inventory.inventory i set quantity = t.s
    from (select item_id, sum(quantity_change)::int s from inventory.movements group by item_id) t where t.item_id = i.item_id`.execute(database.db);
}

for (const backend of values.backends.split(",") as Backend[]) {
  const { database, close } = await openTestDatabase(backend, ["inventory"]);
  try {
    await sql`insert into inventory.inventory (item_id, item_name, quantity) select 'i' || g, 'Item ' || g, 0 from generate_series(1, ${ITEMS}) g`.execute(database.db);
    await load(database, 1, MOVEMENTS);
    await sql`vacuum analyze inventory.movements`.execute(database.db);
    const { ledger } = createInventoryModule({ database, adminGuard: () => undefined });
    const full: number[] = [];
    for (let i = 0; i < 3; i++) full.push((await ledger.check({ full: true })).duration_ms);
    const incremental: string[] = [];
    let total = MOVEMENTS;
    for (const added of [0, 1_000, 60_000]) {
      if (added) await load(database, total + 1, (total += added));
      const c = await ledger.check();
      if (c.drifted.length || c.mode !== "incremental") throw new Error(`unexpected check: ${JSON.stringify(c).slice(0, 200)}`);
      incremental.push(`${c.movements_read} new: ${c.duration_ms} ms`);
    }
    console.log(`${backend}, ${MOVEMENTS} movements over ${ITEMS} items: full pass ${full.join(", ")} ms; incremental ${incremental.join("; ")}`);
  } finally {
    await close();
  }
}
