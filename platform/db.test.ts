import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { PrivatePostgres, privatePostgresAvailable } from "../tests/support/private-postgres.ts";
import { waitFor } from "../tests/support/processes.ts";
import { poolSizes } from "./db.ts";

const ROOT = resolve(import.meta.dir, "..");

/** A child that opens the database as Valerix does and holds a connection; its stdout, line by line. */
function holder(url: string) {
  const proc = Bun.spawn(["bun", "tests/support/hold-db-connection.ts"], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: url, HOLD_MS: "3000", RECOVER_MS: "60000" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const out = { text: "" };
  for (const stream of [proc.stdout, proc.stderr]) {
    void (async () => {
      const reader = (stream as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        out.text += decoder.decode(value);
      }
    })().catch(() => {});
  }
  return { proc, out };
}

describe.skipIf(!privatePostgresAvailable("PostgreSQL shutdown under a held connection"))("PostgreSQL shutdown under a held connection", () => {
  let cluster: PrivatePostgres;
  let url: string;
  beforeAll(async () => {
    cluster = await PrivatePostgres.create();
    url = await cluster.createDatabase("valerix_hold");
  });
  afterAll(async () => {
    await cluster?.destroy();
  });

  for (const how of ["fast shutdown", "kill -9 of the postmaster"] as const) {
    test(`the process survives a ${how} while Kysely holds a client, and queries work again after a restart`, async () => {
      const { proc, out } = holder(url);
      try {
        await waitFor(async () => out.text.includes("holding"), 30_000, "the child to hold a connection");
        if (how === "fast shutdown") cluster.stopFast();
        else await cluster.killPostmaster();
        // The held client has seen the server go; an unhandled error would end the process now.
        await waitFor(async () => out.text.includes("outage error") || proc.exitCode !== null, 15_000, "the child to see the outage");
        await Bun.sleep(500);
        expect({ exitCode: proc.exitCode, out: out.text }).toMatchObject({ exitCode: null });
        await cluster.start();
        expect(await proc.exited).toBe(0);
        expect(out.text).toContain("recovered");
        // What callers see while the server is away: one typed error with a stable code.
        expect(out.text).toMatch(/outage error: DatabaseUnavailableError code=database_unavailable/);
      } finally {
        proc.kill("SIGKILL");
        if (!(await cluster.answers())) await cluster.start();
      }
    }, 90_000);
  }
});

describe("pool sizes", () => {
  test("the total splits between the order path's pool and Kysely's, Kysely's small", () => {
    expect(poolSizes(12)).toEqual({ hot: 9, side: 3 });
    expect(poolSizes(10)).toEqual({ hot: 7, side: 3 });
    expect(poolSizes(8)).toEqual({ hot: 6, side: 2 });
    expect(poolSizes(2)).toEqual({ hot: 1, side: 1 });
    expect(poolSizes(40)).toEqual({ hot: 36, side: 4 });
    expect(() => poolSizes(1)).toThrow(RangeError);
  });
});
