/**
 * A child process for the database-outage tests: opens the database as Valerix does, holds one
 * Kysely connection between queries (as a transaction waiting on other work would), and reports
 * on stdout what it sees while the test stops PostgreSQL under it. Exits 0 once queries work
 * again; an unhandled error from the driver ends it with another code.
 */
import { sql } from "kysely";
import { openDatabase } from "../../platform/db.ts";

const say = (line: string) => process.stdout.write(`${line}\n`);
const describe = (err: unknown) => {
  const e = err as { name?: string; code?: string; message?: string };
  return `${e.name ?? "Error"} code=${e.code ?? "-"} ${e.message ?? String(err)}`.replaceAll("\n", " ");
};

// Not awaited at the top level: as in `src/main.ts`, the module has finished evaluating when the
// server goes away (Bun treats an error thrown during a pending top-level await differently).
void run();

async function run() {
const database = await openDatabase({ databaseUrl: process.env.DATABASE_URL!, dataDir: "unused" });
await sql`select 1`.execute(database.db);
await database.query("hold_ping", "select 1 as one", []);

const held = database.db.connection().execute(async (conn) => {
  await sql`select 1`.execute(conn);
  say("holding");
  // Between queries: nothing is waiting on this client when the server goes away.
  await Bun.sleep(Number(process.env.HOLD_MS ?? 3_000));
  try {
    await sql`select 1`.execute(conn);
    say("held query ok");
  } catch (err) {
    say(`held query failed: ${describe(err)}`);
  }
});
await held.catch((err) => say(`held connection failed: ${describe(err)}`));

// While the server is away every query fails fast with a typed error; then it comes back.
const deadline = Date.now() + Number(process.env.RECOVER_MS ?? 60_000);
let lastError = "";
for (;;) {
  try {
    await sql`select 1`.execute(database.db);
    await database.query("hold_ping", "select 1 as one", []);
    break;
  } catch (err) {
    const d = describe(err);
    if (d !== lastError) say(`outage error: ${d}`);
    lastError = d;
    if (Date.now() > deadline) {
      say("never recovered");
      process.exit(3);
    }
    await Bun.sleep(200);
  }
}
say("recovered");
await database.close();
process.exit(0);
}
