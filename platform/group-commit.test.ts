import { describe, expect, test } from "bun:test";
import { GroupCommit, groupCommitLimits } from "./group-commit.ts";

/** A statement that stays open until the test lets it finish, recording what it was given. */
function controlledStatements<I>() {
  const calls: Array<{ kind: "one" | "batch"; items: I[]; finish: (fail?: boolean) => void }> = [];
  const open = <T>(kind: "one" | "batch", items: I[], value: () => T) =>
    new Promise<T>((resolve, reject) => {
      calls.push({ kind, items, finish: (fail) => (fail ? reject(new Error(`${kind} failed`)) : resolve(value())) });
    });
  return { calls, open };
}

/** A group over controlled statements: each answers its items as they are (batch) or tagged. */
function controlledGroup<I>(limits: { maxBatch: number; maxInFlight: number; keyOf?: (item: I) => string }) {
  const s = controlledStatements<I>();
  const g = new GroupCommit<I, I>({
    ...limits,
    runOne: (i) => s.open("one", [i], () => i),
    runBatch: (items) => s.open("batch", [...items], () => [...items]),
  });
  return { s, g };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("group commit", () => {
  test("at low load an item goes out at once and alone", async () => {
    const { s, g } = controlledGroup<number>({ maxBatch: 8, maxInFlight: 1 });
    const a = g.submit(1);
    expect(s.calls.map((c) => c.kind)).toEqual(["one"]);
    s.calls[0]!.finish();
    expect(await a).toBe(1);
  });

  test("items that arrive while a statement runs leave together, each with its own result", async () => {
    const { s, g } = controlledGroup<number>({ maxBatch: 8, maxInFlight: 1 });
    const first = g.submit(1);
    const rest = [2, 3, 4].map((i) => g.submit(i));
    expect(s.calls).toHaveLength(1);
    s.calls[0]!.finish();
    await first;
    await tick();
    expect(s.calls[1]).toMatchObject({ kind: "batch", items: [2, 3, 4] });
    s.calls[1]!.finish();
    expect(await Promise.all(rest)).toEqual([2, 3, 4]);
    expect(g.stats()).toEqual({ batches: 2, items: 4 });
  });

  test("no batch is larger than maxBatch, and maxInFlight statements run at once", async () => {
    const { s, g } = controlledGroup<number>({ maxBatch: 3, maxInFlight: 2 });
    const all = Array.from({ length: 9 }, (_, i) => g.submit(i));
    // Two went out alone at once; seven wait.
    expect(s.calls.map((c) => c.items)).toEqual([[0], [1]]);
    s.calls[0]!.finish();
    s.calls[1]!.finish();
    await tick();
    expect(s.calls.slice(2).map((c) => c.items)).toEqual([[2, 3, 4], [5, 6, 7]]);
    s.calls[2]!.finish();
    await tick();
    expect(s.calls[4]!.items).toEqual([8]);
    s.calls[3]!.finish();
    s.calls[4]!.finish();
    expect(await Promise.all(all)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test("items with the same key never share a batch, and keep their order", async () => {
    const { s, g } = controlledGroup<{ key: string; n: number }>({ maxBatch: 8, maxInFlight: 1, keyOf: (i) => i.key });
    const all = [
      { key: "x", n: 0 },
      { key: "a", n: 1 },
      { key: "b", n: 2 },
      { key: "a", n: 3 },
      { key: "c", n: 4 },
      { key: "a", n: 5 },
    ].map((i) => g.submit(i));
    s.calls[0]!.finish();
    await tick();
    expect(s.calls[1]!.items.map((i) => i.n)).toEqual([1, 2, 4]);
    s.calls[1]!.finish();
    await tick();
    expect(s.calls[2]!.items.map((i) => i.n)).toEqual([3]);
    s.calls[2]!.finish();
    await tick();
    expect(s.calls[3]!.items.map((i) => i.n)).toEqual([5]);
    s.calls[3]!.finish();
    expect((await Promise.all(all)).map((i) => i.n)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  test("a failed batch is retried item by item: only the failing item's caller sees an error", async () => {
    const ran: number[] = [];
    let batches = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const g = new GroupCommit<number, number>({
      maxBatch: 8,
      maxInFlight: 1,
      runOne: async (i) => {
        if (i === 0) await gate;
        ran.push(i);
        if (i === 3) throw new Error("check violation for 3");
        return i * 10;
      },
      runBatch: async () => {
        batches++;
        throw new Error("check violation somewhere in the batch");
      },
    });
    const first = g.submit(0);
    const rest = [1, 2, 3, 4].map((i) => g.submit(i).then((v) => ({ ok: v }), (e: Error) => ({ err: e.message })));
    release();
    expect(await first).toBe(0);
    expect(await Promise.all(rest)).toEqual([{ ok: 10 }, { ok: 20 }, { err: "check violation for 3" }, { ok: 40 }]);
    expect(batches).toBe(1);
    expect(ran.sort()).toEqual([0, 1, 2, 3, 4]);
  });

  test("a batch answering the wrong number of results fails its callers instead of guessing", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const g = new GroupCommit<number, number>({
      maxBatch: 8,
      maxInFlight: 1,
      runOne: async (i) => {
        await gate;
        return i;
      },
      runBatch: async (items) => items.slice(1),
    });
    const first = g.submit(0);
    const rest = Promise.allSettled([1, 2].map((i) => g.submit(i)));
    release();
    await first;
    const settled = await rest;
    expect(settled.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    for (const r of settled) expect(String((r as PromiseRejectedResult).reason)).toContain("1 results for 2 items");
  });

  test("gatherTurn: statements that finish synchronously still share a batch with their turn's peers", async () => {
    const sizes: number[] = [];
    const g = new GroupCommit<number, number>({
      maxBatch: 64,
      maxInFlight: 1,
      gatherTurn: true,
      onBatch: (n) => sizes.push(n),
      // Like PGlite: the work is done before the promise is even returned.
      runOne: (i) => Promise.resolve(i),
      runBatch: (items) => Promise.resolve([...items]),
    });
    const turn1 = [1, 2, 3].map((i) => g.submit(i));
    expect(sizes).toEqual([]);
    expect(await Promise.all(turn1)).toEqual([1, 2, 3]);
    const turn2 = await Promise.all([4, 5].map((i) => g.submit(i)));
    expect(turn2).toEqual([4, 5]);
    expect(sizes).toEqual([3, 2]);

    const eager = new GroupCommit<number, number>({
      maxBatch: 64,
      maxInFlight: 1,
      runOne: (i) => Promise.resolve(i),
      runBatch: (items) => Promise.resolve([...items]),
    });
    expect(await Promise.all([1, 2, 3].map((i) => eager.submit(i)))).toEqual([1, 2, 3]);
    // Without it, the first goes alone and the two others share the next statement.
    expect(eager.stats()).toEqual({ batches: 2, items: 3 });
  });

  test("maxBatch 1 turns batching off: every item runs alone, even behind a busy statement", async () => {
    const { s, g } = controlledGroup<number>({ maxBatch: 1, maxInFlight: 1 });
    const all = [1, 2, 3].map((i) => g.submit(i));
    for (let n = 0; n < 3; n++) {
      await tick();
      s.calls[n]!.finish();
    }
    expect(await Promise.all(all)).toEqual([1, 2, 3]);
    expect(s.calls.map((c) => [c.kind, c.items])).toEqual([
      ["one", [1]],
      ["one", [2]],
      ["one", [3]],
    ]);
  });

  test("limits: PGlite runs one statement at a time; bad limits are refused", () => {
    expect(groupCommitLimits("pglite", { maxInFlight: 8 })).toEqual({ maxBatch: 64, maxInFlight: 1, gatherTurn: true });
    expect(groupCommitLimits("postgres")).toEqual({ maxBatch: 64, maxInFlight: 2 });
    expect(groupCommitLimits("postgres", { maxBatch: 16, maxInFlight: 3 })).toEqual({ maxBatch: 16, maxInFlight: 3 });
    expect(() => new GroupCommit({ maxBatch: 0, maxInFlight: 1, runOne: async () => 0, runBatch: async () => [] })).toThrow(RangeError);
  });
});
