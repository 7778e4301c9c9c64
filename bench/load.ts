import type { Socket } from "bun";
import { summarize, type LatencySummary } from "./stats.ts";

/**
 * The load generator: `connections` keep-alive HTTP/1.1 connections over raw TCP, each sending
 * its next request as soon as the previous answer is complete (closed loop, no pipelining).
 * With `ratePerSecond` it is an open loop instead: requests are due at a fixed rate whatever the
 * answers do, each goes out on the next free connection, and its latency counts from when it was
 * due, so time spent waiting for a free connection is in the figures (no coordinated omission).
 * Only that wait: when a connection stood free and the generator's own timer woke late (a busy
 * machine), the request counts from when it was sent.
 *
 * Written on `Bun.connect` rather than `fetch` because on a two-core machine the generator shares
 * the CPU with the server and PostgreSQL: a prebuilt request and a status-line parse cost a few
 * microseconds, which keeps the generator's share of the machine small and measured (`clientCpuPct`).
 */

export interface HttpRequestSpec {
  method: "POST" | "GET";
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface LoadOptions {
  host: string;
  port: number;
  connections: number;
  warmupMs: number;
  durationMs: number;
  /** Builds the next request; `conn` is the connection index, `seq` counts every request sent. */
  request: (conn: number, seq: number) => HttpRequestSpec;
  /** Called when the measured window opens and closes (to sample other processes' CPU). */
  onWindow?: (edge: "start" | "end") => void;
  /** Open loop: requests due at this fixed rate (the connections are the pool they go out on). */
  ratePerSecond?: number;
}

export interface LoadResult {
  connections: number;
  /** Open loop: the rate requests were due at (null: closed loop). */
  ratePerSecond: number | null;
  durationS: number;
  /** Answers completed inside the measured window. */
  requests: number;
  perSecond: number;
  latencyMs: LatencySummary;
  /** HTTP status → count, measured window only. */
  statuses: Record<string, number>;
  /** HTTP status → count during warm-up, so a bad start is not hidden. */
  warmupStatuses: Record<string, number>;
  /** HTTP status → count over the whole run, warm-up and drain included (for stock checks). */
  allStatuses: Record<string, number>;
  /** Connection errors and unparseable answers (each one reconnects). */
  errors: number;
  /** The generator's own CPU use over the measured window, in % of one core. */
  clientCpuPct: number;
}

const CRLF2 = Buffer.from("\r\n\r\n");
const encoder = new TextEncoder();

interface ConnState {
  index: number;
  buf: Buffer | null;
  sentAt: number;
  /** Open loop: when the request in flight fell due (it counts in the window it fell due in). */
  due: number;
  pending: Uint8Array | null;
  /** Total bytes of the answer being read, once its head is parsed. */
  need: number;
  status: number;
  chunked: boolean;
  headEnd: number;
}

function encode(spec: HttpRequestSpec, hostHeader: string): Uint8Array {
  const body = spec.body ?? "";
  let head = `${spec.method} ${spec.path} HTTP/1.1\r\nhost: ${hostHeader}\r\n`;
  for (const [k, v] of Object.entries(spec.headers ?? {})) head += `${k}: ${v}\r\n`;
  const bodyBytes = encoder.encode(body);
  if (spec.method !== "GET" || bodyBytes.length) head += `content-length: ${bodyBytes.length}\r\n`;
  head += "\r\n";
  const headBytes = encoder.encode(head);
  const out = new Uint8Array(headBytes.length + bodyBytes.length);
  out.set(headBytes, 0);
  out.set(bodyBytes, headBytes.length);
  return out;
}

/** Where a chunked body ends (index just past the final CRLF), or -1 while incomplete. */
function chunkedEnd(buf: Buffer, from: number): number {
  let i = from;
  for (;;) {
    const lineEnd = buf.indexOf("\r\n", i, "latin1");
    if (lineEnd < 0) return -1;
    const size = parseInt(buf.toString("latin1", i, lineEnd), 16);
    if (!Number.isFinite(size)) throw new Error("bad chunk size");
    const next = lineEnd + 2 + size + 2;
    if (size === 0) {
      // No trailers from Bun.serve: the terminating chunk is "0\r\n\r\n".
      return next <= buf.length ? next : -1;
    }
    if (next > buf.length) return -1;
    i = next;
  }
}

/** Runs the load and resolves when every connection has stopped after the measured window. */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const hostHeader = `${opts.host}:${opts.port}`;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const warmupStatuses: Record<string, number> = {};
  const allStatuses: Record<string, number> = {};
  let errors = 0;
  let seq = 0;

  const t0 = performance.now();
  const measureFrom = t0 + opts.warmupMs;
  const measureTo = measureFrom + opts.durationMs;
  let cpuAtStart: NodeJS.CpuUsage | null = null;
  let cpuAtEnd: NodeJS.CpuUsage | null = null;
  const cpuStart = setTimeout(() => {
    cpuAtStart = process.cpuUsage();
    opts.onWindow?.("start");
  }, opts.warmupMs);
  const cpuEnd = setTimeout(() => {
    cpuAtEnd = process.cpuUsage();
    opts.onWindow?.("end");
  }, opts.warmupMs + opts.durationMs);

  const done: Array<Promise<void>> = [];

  // Open loop: request k is due at t0 + k / rate; free connections wait for the next one due.
  const rate = opts.ratePerSecond ?? 0;
  let slot = 0;
  const dueAt = (k: number) => t0 + (k * 1000) / rate;
  const idle: Array<() => void> = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  const dispatch = () => {
    timer = null;
    const now = performance.now();
    while (idle.length && (dueAt(slot) <= now || now >= measureTo)) idle.shift()!();
    if (idle.length && !timer) timer = setTimeout(dispatch, Math.max(0, Math.min(dueAt(slot), measureTo) - now));
  };

  for (let c = 0; c < opts.connections; c++) {
    done.push(
      new Promise<void>((resolveConn) => {
        const state: ConnState = { index: c, buf: null, sentAt: 0, due: 0, pending: null, need: -1, status: 0, chunked: false, headEnd: -1 };
        let finished = false;

        const finish = (socket?: Socket<ConnState>) => {
          if (finished) return;
          finished = true;
          socket?.end();
          resolveConn();
        };

        const write = (socket: Socket<ConnState>, sentAt: number, due = sentAt) => {
          const bytes = encode(opts.request(c, seq++), hostHeader);
          state.sentAt = sentAt;
          state.due = due;
          const written = socket.write(bytes);
          state.pending = written < bytes.length ? bytes.subarray(Math.max(0, written)) : null;
        };

        const send = (socket: Socket<ConnState>, wasFree = false) => {
          const now = performance.now();
          if (!rate) return now >= measureTo ? finish(socket) : write(socket, now);
          if (dueAt(slot) >= measureTo) return finish(socket);
          // Late with a connection free (this one, or one still waiting): the timer's delay, not the server's.
          if (dueAt(slot) <= now) {
            const due = dueAt(slot++);
            return write(socket, wasFree || idle.length > 0 ? now : due, due);
          }
          idle.push(() => send(socket, true));
          if (!timer) timer = setTimeout(dispatch, dueAt(slot) - now);
        };

        const complete = (socket: Socket<ConnState>) => {
          const now = performance.now();
          const key = String(state.status);
          allStatuses[key] = (allStatuses[key] ?? 0) + 1;
          // Closed loop: answers completed in the window; open loop: requests due in it.
          const at = rate ? state.due : now;
          if (at >= measureFrom && at < measureTo) {
            latencies.push(now - state.sentAt);
            statuses[key] = (statuses[key] ?? 0) + 1;
          } else if (at < measureFrom) {
            warmupStatuses[key] = (warmupStatuses[key] ?? 0) + 1;
          }
          send(socket);
        };

        const parse = (socket: Socket<ConnState>) => {
          const buf = state.buf!;
          if (state.headEnd < 0) {
            const end = buf.indexOf(CRLF2);
            if (end < 0) return;
            state.headEnd = end + 4;
            const head = buf.toString("latin1", 0, end).toLowerCase();
            state.status = Number(head.slice(9, 12));
            const cl = /\r\ncontent-length:\s*(\d+)/.exec(head);
            state.chunked = !cl && /\r\ntransfer-encoding:\s*chunked/.test(head);
            state.need = cl ? state.headEnd + Number(cl[1]) : state.chunked ? -1 : state.headEnd;
          }
          let total = state.need;
          if (state.chunked) total = chunkedEnd(buf, state.headEnd);
          if (total < 0 || buf.length < total) return;
          if (buf.length > total) throw new Error("answer arrived before its request (pipelining is not used)");
          state.buf = null;
          state.headEnd = -1;
          state.need = -1;
          complete(socket);
        };

        const connect = () =>
          Bun.connect<ConnState>({
            hostname: opts.host,
            port: opts.port,
            data: state,
            socket: {
              open(socket) {
                (socket as unknown as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
                send(socket);
              },
              data(socket, chunk) {
                state.buf = state.buf ? Buffer.concat([state.buf, chunk]) : Buffer.from(chunk);
                try {
                  parse(socket);
                } catch {
                  errors++;
                  state.buf = null;
                  state.headEnd = -1;
                  socket.end();
                }
              },
              drain(socket) {
                if (!state.pending) return;
                const written = socket.write(state.pending);
                state.pending = written < state.pending.length ? state.pending.subarray(Math.max(0, written)) : null;
              },
              close() {
                if (finished) return;
                // The server closed a connection we still wanted: count it and dial again.
                errors++;
                state.buf = null;
                state.headEnd = -1;
                if (performance.now() >= measureTo) return finish();
                setTimeout(() => void connect().catch(onConnectError), 10);
              },
              error() {
                // `close` follows and decides.
              },
            },
          });
        const onConnectError = () => {
          errors++;
          if (performance.now() >= measureTo) return finish();
          setTimeout(() => void connect().catch(onConnectError), 50);
        };
        void connect().catch(onConnectError);
      }),
    );
  }

  await Promise.all(done);
  if (timer) clearTimeout(timer);
  clearTimeout(cpuStart);
  clearTimeout(cpuEnd);
  // Timers may fire a little late; the connections may all have stopped first.
  if (!cpuAtStart) {
    cpuAtStart = process.cpuUsage();
    opts.onWindow?.("start");
  }
  if (!cpuAtEnd) {
    cpuAtEnd = process.cpuUsage();
    opts.onWindow?.("end");
  }
  const durationS = opts.durationMs / 1000;
  let clientCpuPct = 0;
  if (cpuAtStart && cpuAtEnd) {
    const a = cpuAtStart as NodeJS.CpuUsage;
    const b = cpuAtEnd as NodeJS.CpuUsage;
    clientCpuPct = ((b.user - a.user + b.system - a.system) / 1e6 / durationS) * 100;
  }
  return {
    connections: opts.connections,
    ratePerSecond: rate || null,
    durationS,
    requests: latencies.length,
    perSecond: latencies.length / durationS,
    latencyMs: summarize(latencies),
    statuses,
    warmupStatuses,
    allStatuses,
    errors,
    clientCpuPct,
  };
}
