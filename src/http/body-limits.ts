/**
 * Request body checks that run before Elysia sees a byte: a size cap that holds for chunked bodies
 * too (Content-Length can be absent), and a scan of JSON text for what the parser and the
 * database choke on. Elysia's validator recurses into nested values and stringifies them for its
 * error message, so a 200 KB body of `[[[[…` once cost seconds and ended in a 500.
 */

/** Why a JSON body is refused before parsing, or `undefined` when the scan finds nothing. */
export type JsonHazard = "too_deep" | "nul_character" | "unpaired_surrogate";

/**
 * Property names no body of ours has, that break code handed the parsed value: Elysia's error
 * message writes a wrong-typed field with `${value}`, which throws for `{"toString": 0}` (a 500),
 * and `Object.assign` turns an own `__proto__` into a prototype.
 */
const RESERVED_KEYS = new Set([...Object.getOwnPropertyNames(Object.prototype), "prototype"]);

/**
 * Parses JSON text (already bounded in size and depth) and looks for reserved property names at
 * any level. Parsing here costs a second parse; bodies are small, and it keeps Elysia's parser as is.
 *
 * @example inspectJson('{"a":{"toString":1}}') // { ok: false, reason: "reserved_key", key: "toString" }
 */
export function inspectJson(text: string): { ok: true } | { ok: false; reason: "malformed" } | { ok: false; reason: "reserved_key"; key: string } {
  let reserved: string | undefined;
  try {
    JSON.parse(text, (key, value) => {
      if (reserved === undefined && RESERVED_KEYS.has(key)) reserved = key;
      return value;
    });
  } catch {
    return { ok: false, reason: "malformed" };
  }
  return reserved === undefined ? { ok: true } : { ok: false, reason: "reserved_key", key: reserved };
}

/**
 * Reads a body stream up to `max` bytes. Returns the bytes, or `null` as soon as the stream goes
 * past `max`. The rest is left unread and the stream unlocked, for the caller to `discard`.
 *
 * @example const bytes = await readBounded(request.body!, 1024 * 1024); if (!bytes) await discard(request.body!, DRAIN);
 */
export async function readBounded(body: ReadableStream<Uint8Array<ArrayBuffer>>, max: number): Promise<Uint8Array<ArrayBuffer> | null> {
  const reader = body.getReader();
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > max) return null;
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * How much of a refused body the server reads and throws away before it answers and closes.
 *
 * A server that answers and closes while the client is still sending leaves unread bytes in its
 * socket; the kernel then resets the connection, and the reset can destroy the answer before the
 * client reads it. Clients that read while they write (curl, Bun's and browsers' fetch) see the
 * 413 anyway; Node's fetch writes the whole body first and sees only `EPIPE`, a transport error
 * it may well retry, sending the same oversized body again. Reading the body to its end first
 * lets every client read the problem.
 *
 * The bound: reading costs no memory (each chunk is dropped) but costs a connection's time and
 * some CPU per byte, so it stops at 64 MiB of body (64 times the largest body we take: a mistaken
 * upload of a file or a log is smaller; what is larger is not a client that made a mistake), at
 * 10 s (a slow client does not hold the connection longer), and at 4 bodies drained at once
 * per process. A body announced larger than the bound is not read at all. Past any bound the
 * connection closes unread, as before: clients that read early still see the 413.
 */
export const DRAIN = { bytesMax: 64 * 1024 * 1024, timeoutMs: 10_000, concurrentMax: 4 } as const;

/**
 * Reads a body to its end and drops it, within `maxBytes` and `timeoutMs`. Returns true when the
 * body ended in bounds; otherwise cancels the stream (the caller closes the connection).
 *
 * @example if (!(await discard(request.body!, { maxBytes: DRAIN.bytesMax, timeoutMs: DRAIN.timeoutMs }))) log("closed unread");
 */
export async function discard(body: ReadableStream<Uint8Array>, opts: { maxBytes: number; timeoutMs: number }): Promise<boolean> {
  const reader = body.getReader();
  let expired = false;
  // Cancelling ends a pending read; racing each read against a timer instead doubled the CPU per byte.
  const timer = setTimeout(() => {
    expired = true;
    reader.cancel().catch(() => {});
  }, opts.timeoutMs);
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return !expired;
      total += value.byteLength;
      if (total > opts.maxBytes) break;
    }
    await reader.cancel().catch(() => {});
    return false;
  } catch {
    // The client went away mid-body: nothing is left to read, and nobody to answer.
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** `application/json` and structured-syntax suffixes (`application/problem+json`), any parameters. */
export function isJsonMediaType(contentType: string | null): boolean {
  return !!contentType && /^\s*application\/(?:[a-z0-9.!#$&^_-]+\+)?json\s*(?:;|$)/i.test(contentType);
}

const BACKSLASH = 0x5c;
const QUOTE = 0x22;
const U = 0x75;

function hex4(b: Uint8Array, at: number): number {
  if (at + 4 > b.length) return -1;
  let n = 0;
  for (let i = at; i < at + 4; i++) {
    const c = b[i]!;
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
    if (d < 0) return -1;
    n = n * 16 + d;
  }
  return n;
}

/**
 * One pass over JSON text, outside the parser: nesting deeper than `maxDepth`, or a string escape
 * PostgreSQL cannot store (`\u0000`, a surrogate half without its partner). Malformed text is left
 * for the parser to refuse; this only looks for what a well-formed body may still carry.
 *
 * @example jsonHazard(new TextEncoder().encode("[[[1]]]"), 2) // "too_deep"
 */
export function jsonHazard(bytes: Uint8Array, maxDepth: number): JsonHazard | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === QUOTE) inString = false;
      else if (c === BACKSLASH) {
        if (bytes[i + 1] !== U) {
          i++; // a one-character escape: skip the escaped character
          continue;
        }
        const cp = hex4(bytes, i + 2);
        if (cp === 0) return "nul_character";
        if (cp >= 0xdc00 && cp <= 0xdfff) return "unpaired_surrogate";
        if (cp >= 0xd800 && cp <= 0xdbff) {
          const low = bytes[i + 6] === BACKSLASH && bytes[i + 7] === U ? hex4(bytes, i + 8) : -1;
          if (low < 0xdc00 || low > 0xdfff) return "unpaired_surrogate";
          i += 11;
          continue;
        }
        if (cp >= 0) i += 5;
      }
      continue;
    }
    if (c === QUOTE) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > maxDepth) return "too_deep";
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return undefined;
}
