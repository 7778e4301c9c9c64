import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { DRAIN } from "../../src/http/body-limits.ts";
import { HTTP_LIMITS } from "../../src/http/limits.ts";
import { inCI } from "../support/services.ts";
import { newKey, startSystem, type TestSystem } from "../support/system.ts";
import { CONFIG_BACKEND, expectSecurityHeaders, snapshot } from "./support.ts";

/**
 * An oversized body is answered with the 413 problem to every client, over real HTTP: also to
 * Node's fetch, which writes its whole body before it reads anything, and so saw only `EPIPE`
 * while the server closed on a body it had not read. The server reads and drops the rest of the
 * body (up to `DRAIN.bytesMax`) before it answers and closes.
 */
const NODE = Bun.which("node");
if (!NODE && inCI) throw new Error("node is missing; the oversize-body suite needs Node's fetch");
const NODE_FETCH = resolve(import.meta.dir, "../support/node-fetch.mjs");
const MiB = 1024 * 1024;

interface Answer {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** A transport failure instead of an answer (EPIPE, ECONNRESET, …). */
  error?: string;
}

let sys: TestSystem;
beforeAll(async () => {
  sys = await startSystem(CONFIG_BACKEND, { RATE_LIMIT_PER_MIN: "0" });
}, 120_000);
afterAll(async () => {
  await sys?.stop();
});

/** One request with Node's fetch, in a child process (Bun's fetch behaves differently). */
async function nodeFetch(path: string, bodyBytes: number, opts: { chunked?: boolean; headers?: Record<string, string> } = {}): Promise<Answer> {
  const args = { url: sys.url + path, bodyBytes, chunked: opts.chunked ?? false, headers: { "content-type": "application/json", "idempotency-key": newKey("big"), ...opts.headers } };
  const proc = Bun.spawn([NODE!, NODE_FETCH, JSON.stringify(args)], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`node exited with ${code}: ${err}`);
  return JSON.parse(out);
}

/** The same request with Bun's fetch. */
async function bunFetch(path: string, bodyBytes: number, opts: { chunked?: boolean } = {}): Promise<Answer> {
  const order = JSON.stringify({ item_id: "ps5", quantity: 1 });
  const bytes = new Uint8Array(bodyBytes).fill(0x20);
  bytes.set(new TextEncoder().encode(order));
  const body = opts.chunked
    ? new ReadableStream<Uint8Array>({
        start(c) {
          for (let at = 0; at < bytes.length; at += 64 * 1024) c.enqueue(bytes.subarray(at, at + 64 * 1024));
          c.close();
        },
      })
    : bytes;
  try {
    const res = await fetch(sys.url + path, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": newKey("big") },
      body,
      duplex: "half",
    } as RequestInit);
    const headers: Record<string, string> = {};
    res.headers.forEach((value, name) => void (headers[name] = value));
    return { status: res.status, headers, body: await res.text() };
  } catch (err) {
    return { error: (err as { code?: string }).code ?? String(err) };
  }
}

function expectTooLarge(answer: Answer, where: string): void {
  expect(answer.error, where).toBeUndefined();
  expect(answer.status, where).toBe(413);
  expect(answer.headers!["content-type"], where).toBe("application/problem+json");
  expect(answer.headers!.connection, where).toBe("close");
  const problem = JSON.parse(answer.body!);
  expect(problem.type, where).toEndWith("/payload-too-large");
  expect(problem.status, where).toBe(413);
  expectSecurityHeaders({ status: answer.status!, headers: answer.headers!, body: answer.body!, closed: true }, where);
}

const clients = { "Node's fetch": nodeFetch, "Bun's fetch": bunFetch } as const;

describe.skipIf(!NODE)("oversized bodies answer 413 to every client", () => {
  for (const [name, send] of Object.entries(clients)) {
    test(`${name}: 2 MiB, with Content-Length and chunked`, async () => {
      const before = await snapshot(sys);
      expectTooLarge(await send("/api/orders", 2 * MiB), `${name} 2 MiB`);
      expectTooLarge(await send("/api/orders", 2 * MiB, { chunked: true }), `${name} 2 MiB chunked`);
      expect(await snapshot(sys)).toEqual(before);
    }, 60_000);

    test(`${name}: ${DRAIN.bytesMax / MiB} MiB, the most the server reads to answer`, async () => {
      expectTooLarge(await send("/api/orders", DRAIN.bytesMax), `${name} ${DRAIN.bytesMax / MiB} MiB`);
      expectTooLarge(await send("/api/orders", DRAIN.bytesMax, { chunked: true }), `${name} ${DRAIN.bytesMax / MiB} MiB chunked`);
    }, 120_000);
  }

  test("past the bound the server reads nothing more and closes: clients that read early still get the 413", async () => {
    // A body announced larger than DRAIN.bytesMax is answered unread. Bun's fetch (like curl and
    // browsers) reads the answer while it writes; Node's fetch may see the connection reset
    // instead, which is the price of not reading unbounded bodies.
    expectTooLarge(await bunFetch("/api/orders", DRAIN.bytesMax + MiB), "Bun's fetch past the bound");
    const node = await nodeFetch("/api/orders", DRAIN.bytesMax + MiB);
    if (node.error === undefined) expectTooLarge(node, "Node's fetch past the bound");
    else expect(node.error).toMatch(/EPIPE|ECONNRESET|UND_ERR_SOCKET|other side closed/);
    // The server is none the worse for it.
    expect((await sys.post("/api/orders", { item_id: "ps5", quantity: 1 }, { "idempotency-key": newKey() })).status).toBe(201);
  }, 120_000);

  test("other refusals made before the body is read are readable too (Node's fetch, a cross-site post of 1 MiB)", async () => {
    const answer = await nodeFetch("/api/orders", HTTP_LIMITS.bodyBytesMax, { headers: { "sec-fetch-site": "cross-site", origin: "https://elsewhere.example" } });
    expect(answer.error).toBeUndefined();
    expect(answer.status).toBe(403);
    expect(answer.headers!.connection).toBe("close");
    expect(JSON.parse(answer.body!).type).toEndWith("/cross-site-request");
  }, 60_000);

  test("the server keeps serving after each of them", async () => {
    expect((await sys.get("/health/live")).status).toBe(200);
  });
});
