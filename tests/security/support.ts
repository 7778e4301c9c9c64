import { expect } from "bun:test";
import net from "node:net";
import { Writable } from "node:stream";
import pino from "pino";
import { PROBLEM_BASE } from "../../platform/problems.ts";
import { SECURITY_HEADERS } from "../../src/http/app.ts";
import { BACKENDS, startSystem, type Backend, type TestSystem } from "../support/system.ts";

/** For suites about configuration, not storage: the real PostgreSQL when it answers (it starts in a blink), else PGlite. */
export const CONFIG_BACKEND: Backend = BACKENDS.includes("postgres") ? "postgres" : "pglite";

/**
 * Everything a request could have changed: the public listings, and a digest of every row of
 * every table both modules own. Equal snapshots mean nothing was written.
 */
export async function snapshot(sys: TestSystem): Promise<Record<string, unknown>> {
  const inventory = await (await sys.get("/api/inventory")).json();
  const orders = await (await sys.get("/api/orders?limit=100")).json();
  const tables: Record<string, unknown> = {};
  for (const table of [
    "orders.orders",
    "orders.order_history",
    "orders.idempotency_keys",
    "inventory.inventory",
    "inventory.movements",
    "inventory.order_accounts",
  ]) {
    const [row] = await sys.server.database.query(
      `snapshot_${table.replace(".", "_")}`,
      `select count(*)::int as n, coalesce(md5(string_agg(t::text, '|' order by t::text)), '') as digest from ${table} t`,
      [],
    );
    tables[table] = row;
  }
  return { inventory, orders, tables };
}

/** A refusal as the API promises it: 4xx, problem+json whose status matches, every security header. */
export async function expectRefusal(res: Response, context: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  const where = `${context} → ${res.status} ${text.slice(0, 300)}`;
  if (res.status < 400 || res.status > 499) throw new Error(`expected a 4xx refusal: ${where}`);
  expect(res.headers.get("content-type") ?? "", where).toStartWith("application/problem+json");
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`refusal body is not JSON: ${where}`);
  }
  expect(body.status, where).toBe(res.status);
  expect(String(body.type), where).toStartWith(PROBLEM_BASE);
  expect(typeof body.title, where).toBe("string");
  expectSecurityHeaders(res, where);
  return body;
}

export function expectSecurityHeaders(res: Response | RawResponse, where: string): void {
  const get = (name: string) => (res instanceof Response ? res.headers.get(name) : (res.headers[name] ?? null));
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) expect(get(name), `${name} on ${where}`).toBe(value);
  expect(get("x-powered-by"), `x-powered-by on ${where}`).toBeNull();
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection (as opposed to our timeout). */
  closed: boolean;
}

/**
 * Sends bytes exactly as given over a fresh TCP connection and reads the answer: for paths a URL
 * parser would normalise away (`/../`, `%2e%2e`) and framing `fetch` never produces.
 */
export function rawRequest(
  port: number,
  head: string,
  opts: { body?: Uint8Array | string; localAddress?: string; timeoutMs?: number; streamBytes?: number } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1", localAddress: opts.localAddress });
    const chunks: Buffer[] = [];
    let closed = false;
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(parseRaw(Buffer.concat(chunks), closed));
    };
    const timer = setTimeout(finish, opts.timeoutMs ?? 5_000);
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("close", () => {
      closed = true;
      finish();
    });
    socket.on("error", (err) => {
      // A reset after the answer arrived is the server refusing to read on; keep what we got.
      if (chunks.length) return;
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.write(head);
    if (opts.body !== undefined) socket.write(opts.body);
    if (opts.streamBytes) {
      // Keep sending chunked data until the server answers or closes: a client that never stops.
      const piece = Buffer.concat([Buffer.from("10000\r\n"), Buffer.alloc(0x10000, 0x20), Buffer.from("\r\n")]);
      let sent = 0;
      const pump = () => {
        while (!settled && !closed && sent < opts.streamBytes! && chunks.length === 0) {
          sent += 0x10000;
          if (!socket.write(piece)) return void socket.once("drain", pump);
        }
      };
      pump();
    }
  });
}

function parseRaw(buf: Buffer, closed: boolean): RawResponse {
  const text = buf.toString("latin1");
  const split = text.indexOf("\r\n\r\n");
  if (split < 0) return { status: 0, headers: {}, body: text, closed };
  const [statusLine, ...lines] = text.slice(0, split).split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(":");
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = text.slice(split + 4);
  if (headers["transfer-encoding"]?.includes("chunked")) {
    let out = "";
    let at = 0;
    for (;;) {
      const eol = body.indexOf("\r\n", at);
      if (eol < 0) break;
      const size = parseInt(body.slice(at, eol), 16);
      if (!size) break;
      out += body.slice(eol + 2, eol + 2 + size);
      at = eol + 2 + size + 2;
    }
    body = out;
  }
  return { status: Number(statusLine!.split(" ")[1]), headers, body: Buffer.from(body, "latin1").toString("utf8"), closed };
}

/** A pino logger at the most verbose level, writing to memory: every line the server logs, to search. */
export function memoryLogger(): { logger: pino.Logger; text: () => string } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: pino({ level: "trace" }, sink), text: () => lines.join("") };
}

/**
 * Like `startSystem`, with the server's logger handed in (to read every line it writes) and
 * the environment taken as given.
 */
export function startWithLogger(backend: Backend, env: Record<string, string>, logger: pino.Logger): Promise<TestSystem> {
  return startSystem(backend, env, { logger });
}
