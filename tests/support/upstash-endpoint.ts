import { RedisClient } from "bun";

/**
 * A small HTTP server that speaks the Upstash REST protocol (the same one the open-source
 * serverless-redis-http proxy implements) in front of a real Redis, so the Upstash adapter is
 * tested against real Redis semantics instead of a hand-written fake.
 *
 * Protocol, as `@upstash/redis` uses it:
 * - `POST /` with a JSON array `["SET", "k", "v", "PX", 100]` → `200 {"result": …}`;
 *   an error reply → `400 {"error": "ERR …"}`.
 * - `POST /pipeline` with an array of commands → `200 [{"result": …} | {"error": "…"}, …]`,
 *   run in order, not atomically.
 * - `POST /multi-exec` → the same shape, run as one MULTI/EXEC; a command Redis refuses to
 *   queue aborts the whole transaction with `400 {"error": …}`.
 * - `Authorization: Bearer <token>` (or `?_token=`) is required, else `401 {"error": …}`.
 * - With `Upstash-Encoding: base64` every string in a result is base64-encoded; numbers, null
 *   and errors are not.
 * Replies are shaped as RESP2 would give them (Bun's client speaks RESP3): booleans become
 * 0/1, maps become flat [field, value, …] arrays, non-integer numbers become strings.
 */
export async function startUpstashEndpoint(
  redisUrl: string,
  token: string,
): Promise<{ url: string; stop(): Promise<void> }> {
  const options = { connectionTimeout: 2_000, autoReconnect: false, enableOfflineQueue: false };
  const shared = new RedisClient(redisUrl, options);
  await shared.connect();

  const json = (status: number, body: unknown) => Response.json(body, { status });

  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      const auth = req.headers.get("authorization") ?? "";
      const given = auth.startsWith("Bearer ") ? auth.slice(7) : url.searchParams.get("_token");
      if (given !== token) return json(401, { error: "Unauthorized" });
      if (req.method !== "POST") return json(405, { error: "only POST is supported" });
      const base64 = req.headers.get("upstash-encoding")?.toLowerCase() === "base64";
      const out = (v: unknown) => encode(toResp2(v), base64);

      let body: unknown;
      try {
        body = await req.json();
      } catch {
        return json(400, { error: "ERR failed to parse request body as JSON" });
      }

      if (url.pathname === "/") {
        const command = asCommand(body);
        if (!command) return json(400, { error: "ERR a command is a non-empty JSON array" });
        try {
          return json(200, { result: out(await send(shared, command)) });
        } catch (err) {
          return json(400, { error: (err as Error).message });
        }
      }

      if (url.pathname === "/pipeline" || url.pathname === "/multi-exec") {
        const commands = Array.isArray(body) && body.length > 0 ? body.map(asCommand) : null;
        if (!commands || commands.some((c) => c === null)) {
          return json(400, { error: "ERR a pipeline is a non-empty JSON array of commands" });
        }
        const valid = commands as string[][];
        if (url.pathname === "/pipeline") {
          // Issued back to back on one connection, so Redis runs them in order.
          const settled = await Promise.allSettled(valid.map((c) => send(shared, c)));
          return json(
            200,
            settled.map((s) => (s.status === "fulfilled" ? { result: out(s.value) } : { error: errorText(s.reason) })),
          );
        }
        return multiExec(redisUrl, options, valid, out, json);
      }

      return json(404, { error: `no such endpoint: ${url.pathname}` });
    },
  });

  return {
    url: `http://127.0.0.1:${server.port}`,
    async stop() {
      await server.stop(true);
      shared.close();
    },
  };
}

// A transaction gets a connection of its own: on the shared one, requests served meanwhile
// would be queued into it.
async function multiExec(
  redisUrl: string,
  options: ConstructorParameters<typeof RedisClient>[1],
  commands: string[][],
  out: (v: unknown) => unknown,
  json: (status: number, body: unknown) => Response,
): Promise<Response> {
  const tx = new RedisClient(redisUrl, options);
  try {
    await tx.connect();
    await tx.send("MULTI", []);
    let queueError: string | null = null;
    for (const c of commands) {
      try {
        await send(tx, c);
      } catch (err) {
        queueError ??= errorText(err);
      }
    }
    let replies: unknown[];
    try {
      replies = (await tx.send("EXEC", [])) as unknown[];
    } catch (err) {
      return json(400, { error: queueError ?? errorText(err) });
    }
    return json(
      200,
      replies.map((r) => (r instanceof Error ? { error: r.message } : { result: out(r) })),
    );
  } catch (err) {
    return json(500, { error: errorText(err) });
  } finally {
    tx.close();
  }
}

function send(client: RedisClient, [name, ...args]: string[]): Promise<unknown> {
  return client.send(name!, args);
}

function asCommand(v: unknown): string[] | null {
  if (!Array.isArray(v) || v.length === 0) return null;
  if (!v.every((a) => typeof a === "string" || typeof a === "number" || typeof a === "boolean")) return null;
  return v.map(String);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function toResp2(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") return v;
  if (typeof v === "number") return Number.isInteger(v) ? v : String(v);
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "boolean") return v ? 1 : 0;
  if (v instanceof Uint8Array) return new TextDecoder().decode(v);
  if (Array.isArray(v)) return v.map(toResp2);
  if (typeof v === "object") return Object.entries(v).flatMap(([field, value]) => [field, toResp2(value)]);
  return String(v);
}

function encode(v: unknown, base64: boolean): unknown {
  if (!base64) return v;
  if (typeof v === "string") return Buffer.from(v, "utf8").toString("base64");
  if (Array.isArray(v)) return v.map((x) => encode(x, true));
  return v;
}
