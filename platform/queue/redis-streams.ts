import { systemClock, type Clock } from "../clock.ts";
import { RedisConnection, errorText, type RedisErrorMapping } from "../redis/connection.ts";
import { QueueClosedError, QueueUnavailableError } from "./queue.errors.ts";
import type { Delivery, QueueDepth, RetryMessage, RetryQueue } from "./queue.port.ts";
import * as scripts from "./redis-streams.scripts.ts";

export interface RedisStreamsQueueOptions {
  /** Prepended to every key. Default `valerix:`. */
  prefix?: string;
  /** This process's name in the consumer group; unique per replica (e.g. host name + pid). */
  consumer: string;
  /** Default `retry-workers`. */
  group?: string;
  /** An entry unacknowledged this long is taken over by the next receive of any consumer. Default 30 s. */
  visibilityTimeoutMs?: number;
  /** Decides due times of delayed messages and the time of dead letters. */
  clock?: Clock;
  /** Give up connecting after this long. Default 2 s. */
  connectTimeoutMs?: number;
  /** Give up on a command (beyond its own blocking time) after this long. Default 3 s. */
  commandTimeoutMs?: number;
  /**
   * Longest single blocking read while `receive` waits. Delayed messages falling due and
   * entries of dead consumers are noticed between reads. Default min(1 s, visibility timeout).
   */
  pollMs?: number;
  /** The dead-letter stream is trimmed to about this many entries. Default 10 000. */
  deadLetterMaxLen?: number;
  /** Names the connections in `CLIENT LIST`: `<clientName>:queue` and `<clientName>:queue-read`. */
  clientName?: string;
}

/**
 * The retry queue on Redis Streams (Bun's built-in RESP client): a consumer group on
 * `<prefix>retry:stream`, delayed retries in the sorted set `<prefix>retry:delayed`, dead letters in
 * the stream `<prefix>retry:dead`. All state changes run as Lua scripts (see redis-streams.scripts.ts).
 *
 * Waiting and I/O timeouts are real time (Redis blocks in real time, and judges idleness of
 * pending entries by its own clock); the injected clock decides when delayed messages are due.
 * Nothing connects until the first call, and every call fails with `QueueUnavailableError`
 * within its timeout when Redis is down or stalls; the next call reconnects.
 */
export function createRedisStreamsQueue(url: string, opts: RedisStreamsQueueOptions): RetryQueue {
  const clock = opts.clock ?? systemClock;
  const prefix = opts.prefix ?? "valerix:";
  const group = opts.group ?? "retry-workers";
  const consumer = opts.consumer;
  const visibilityMs = Math.max(1, Math.round(opts.visibilityTimeoutMs ?? 30_000));
  const pollMs = Math.max(1, opts.pollMs ?? Math.min(1_000, visibilityMs));
  const deadMaxLen = String(opts.deadLetterMaxLen ?? 10_000);
  const keys = {
    stream: `${prefix}retry:stream`,
    delayed: `${prefix}retry:delayed`,
    messages: `${prefix}retry:messages`,
    dead: `${prefix}retry:dead`,
  };
  // No pause between failed connection attempts: the worker already waits between receives,
  // and the next call after Redis is back must not be refused.
  const connOpts = {
    connectTimeoutMs: opts.connectTimeoutMs ?? 2_000,
    commandTimeoutMs: opts.commandTimeoutMs ?? 3_000,
    errors: QUEUE_ERRORS,
  };
  // The connections keep real time (see above): the injected clock only decides what is due,
  // and a test moving it ahead must not run out the deadline of a read still in flight.
  const named = (role: string) => (opts.clientName !== undefined ? { name: `${opts.clientName}:${role}` } : {});
  const main = new RedisConnection(url, { ...connOpts, ...named("queue") });
  // A blocking XREADGROUP holds its connection until it returns; on the shared one it would
  // stall every ack and enqueue behind it.
  const blocker = new RedisConnection(url, { ...connOpts, ...named("queue-read") });
  /**
   * The blocking read in flight, settled as a value: one at a time. The worker's loops all wait
   * in `receive`; reads of their own would queue up on the one blocking connection, each waiting
   * out the ones before it, so a receive would take a multiple of its `waitMs`. The others wait
   * for this read instead and then look again (an entry it left for them is taken then).
   */
  let reading: Promise<void> | null = null;
  let closed = false;
  let claimCursor = "0-0";

  let groupReady: Promise<void> | null = null;
  const ensureGroup = (): Promise<void> =>
    (groupReady ??= main.send("XGROUP", ["CREATE", keys.stream, group, "0", "MKSTREAM"]).then(
      () => {},
      (err) => {
        if (errorText(err).includes("BUSYGROUP")) return;
        groupReady = null;
        throw err;
      },
    ));
  // The group disappears with its stream (a flush, a restart without persistence): make it again once.
  const withGroup = async <T>(fn: () => Promise<T>): Promise<T> => {
    await ensureGroup();
    try {
      return await fn();
    } catch (err) {
      if (!errorText(err).includes("NOGROUP")) throw err;
      groupReady = null;
      await ensureGroup();
      return fn();
    }
  };

  const run = (script: Script, k: string[], args: Array<string | number>) =>
    script.run(main, k, args.map(String));

  const toDelivery = (id: string, rawFields: unknown, deliveries: number): Delivery => {
    const f = fieldsOf(rawFields);
    const orderId = f.order ?? "";
    const attempt = Number(f.attempt ?? 0);
    const requestId = f.request ? f.request : undefined;
    const token = [group, consumer, id, deliveries, orderId];
    return {
      id,
      orderId,
      attempt,
      requestId,
      async ack() {
        await run(ACK, [keys.stream, keys.messages], token);
      },
      async retryLater(delayMs) {
        const due = clock.now() + Math.max(0, delayMs);
        await run(RETRY_LATER, [keys.stream, keys.delayed, keys.messages], [...token, due, attempt + 1, requestId ?? ""]);
      },
      async deadLetter(reason) {
        const at = new Date(clock.now()).toISOString();
        await run(
          DEAD_LETTER,
          [keys.stream, keys.messages, keys.dead],
          [...token, attempt, requestId ?? "", reason, at, deadMaxLen],
        );
      },
    };
  };

  const take = async (max: number): Promise<{ deliveries: Delivery[]; nextDueMs: number | null }> => {
    const reply = (await withGroup(() =>
      run(TAKE, [keys.stream, keys.delayed, keys.messages], [group, consumer, clock.now(), max, visibilityMs, claimCursor]),
    )) as [string, Array<[string, unknown, number | string]>, string | number | null];
    claimCursor = reply[0] ?? "0-0";
    const deliveries = (reply[1] ?? []).map(([id, fields, n]) => toDelivery(id, fields, Number(n)));
    return { deliveries, nextDueMs: reply[2] == null ? null : Number(reply[2]) };
  };

  const blockingRead = async (max: number, blockMs: number): Promise<Delivery[]> => {
    const args = ["GROUP", group, consumer, "COUNT", String(max), "BLOCK", String(blockMs), "STREAMS", keys.stream, ">"];
    const reply = await withGroup(() => blocker.send("XREADGROUP", args, blockMs));
    return streamEntries(reply).map(([id, fields]) => toDelivery(id, fields, 1));
  };

  return {
    kind: "redis-streams",

    async enqueue(message: RetryMessage, o = {}) {
      const now = clock.now();
      const due = now + Math.max(0, o.delayMs ?? 0);
      await run(ENQUEUE, [keys.stream, keys.delayed, keys.messages], [
        message.orderId,
        message.attempt,
        message.requestId ?? "",
        due,
        now,
      ]);
    },

    async receive(max, waitMs) {
      if (closed || max < 1) return [];
      const count = Math.floor(max);
      const until = performance.now() + Math.max(0, waitMs);
      try {
        for (;;) {
          const { deliveries, nextDueMs } = await take(count);
          if (deliveries.length > 0) return deliveries;
          const left = until - performance.now();
          if (left <= 0 || closed) return [];
          let slice = Math.min(left, pollMs);
          if (nextDueMs !== null) slice = Math.min(slice, nextDueMs - clock.now());
          const blockMs = Math.max(1, Math.ceil(slice));
          if (reading) {
            await waitFor(reading, blockMs);
            continue;
          }
          const read = blockingRead(count, blockMs);
          const settled = (reading = read.then(
            () => {},
            () => {},
          ));
          void settled.then(() => {
            if (reading === settled) reading = null;
          });
          const fresh = await read;
          if (fresh.length > 0) return fresh;
        }
      } catch (err) {
        if (closed) return [];
        throw err;
      }
    },

    async depth(): Promise<QueueDepth> {
      const [len, pending, delayed, dead] = ((await run(DEPTH, [keys.stream, keys.delayed, keys.dead], [group])) as unknown[]).map(
        Number,
      ) as [number, number, number, number];
      return { ready: Math.max(0, len - pending) + delayed, inFlight: pending, deadLetters: dead };
    },

    async deadLetters(count) {
      if (count < 1) return [];
      const reply = await main.send("XREVRANGE", [keys.dead, "+", "-", "COUNT", String(Math.floor(count))]);
      return asEntries(reply).map(([, raw]) => {
        const f = fieldsOf(raw);
        return {
          orderId: f.order ?? "",
          attempt: Number(f.attempt ?? 0),
          requestId: f.request ? f.request : undefined,
          reason: f.reason ?? "",
          at: f.at ?? "",
        };
      });
    },

    async close() {
      closed = true;
      main.close();
      blocker.close();
    },
  };
}

/** Waits for `p` to settle, for `ms` of real time at most. */
async function waitFor(p: Promise<void>, ms: number): Promise<void> {
  const done = new AbortController();
  try {
    await Promise.race([p, systemClock.sleep(ms, done.signal)]);
  } finally {
    done.abort();
  }
}

// Error replies stay as they are: the adapter reads NOSCRIPT, NOGROUP and BUSYGROUP from them.
const QUEUE_ERRORS: RedisErrorMapping = {
  unavailable: (message, cause) => new QueueUnavailableError(`redis: ${message}`, { cause }),
  closed: () => new QueueClosedError(),
};

class Script {
  readonly sha: string;
  constructor(readonly text: string) {
    this.sha = new Bun.CryptoHasher("sha1").update(text).digest("hex");
  }
  async run(conn: RedisConnection, keys: string[], args: string[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await conn.send("EVALSHA", [this.sha, ...tail]);
    } catch (err) {
      // First use on this server (or after SCRIPT FLUSH): EVAL loads it into the script cache.
      if (!errorText(err).startsWith("NOSCRIPT")) throw err;
      return conn.send("EVAL", [this.text, ...tail]);
    }
  }
}

const ENQUEUE = new Script(scripts.ENQUEUE);
const TAKE = new Script(scripts.TAKE);
const ACK = new Script(scripts.ACK);
const RETRY_LATER = new Script(scripts.RETRY_LATER);
const DEAD_LETTER = new Script(scripts.DEAD_LETTER);
const DEPTH = new Script(scripts.DEPTH);

/** Field list of a stream entry: RESP arrays `[k, v, k, v]`, or a map should a server send one. */
function fieldsOf(raw: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(raw)) {
    for (let i = 0; i + 1 < raw.length; i += 2) out[String(raw[i])] = String(raw[i + 1]);
  } else if (raw && typeof raw === "object") {
    for (const [k, v] of Object.entries(raw)) out[k] = String(v);
  }
  return out;
}

function asEntries(raw: unknown): Array<[string, unknown]> {
  return Array.isArray(raw) ? (raw as Array<[string, unknown]>).filter((e) => Array.isArray(e) && e[1] != null) : [];
}

/** XREADGROUP replies: null, a RESP3 map `{stream: entries}`, or RESP2 `[[stream, entries]]`. */
function streamEntries(reply: unknown): Array<[string, unknown]> {
  if (reply == null) return [];
  if (Array.isArray(reply)) return asEntries((reply[0] as [string, unknown] | undefined)?.[1]);
  const first = Object.values(reply as Record<string, unknown>)[0];
  return asEntries(first);
}
