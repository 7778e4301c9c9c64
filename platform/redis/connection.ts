import { RedisClient } from "bun";
import { systemClock, type Clock } from "../clock.ts";

const SERVER_ERROR = "ERR_REDIS_SERVER_ERROR";
const INVALID_ARGUMENT = "ERR_REDIS_INVALID_ARGUMENT";

/** How a caller's port names the failures of its connection. */
export interface RedisErrorMapping {
  /** Redis cannot be reached, did not answer in time, or lost the connection: the next call may work. */
  unavailable(message: string, cause?: unknown): Error;
  /** A call made after `close()`, or cut short by it. */
  closed(): Error;
  /**
   * The command itself was refused: an error reply from the server, or arguments the client
   * would not send. The connection is fine and stays. Default: the client's error as it is,
   * so callers can match the reply text (`NOSCRIPT`, `NOGROUP`, …).
   */
  refused?(err: Error & { code?: string }): Error;
}

export interface RedisConnectionOptions {
  /** Longest a connection attempt (TCP, TLS and handshake) may take. */
  connectTimeoutMs: number;
  /** Longest a command may wait for its reply, on top of its own blocking time; past it the connection is replaced. */
  commandTimeoutMs: number;
  /**
   * After a failed connection attempt, calls fail at once for a pause that starts at 50 ms and
   * doubles per failed attempt up to this ceiling, so a Redis that stays down costs one attempt
   * per pause rather than one per call. `0` (default): every call while disconnected dials.
   */
  maxReconnectDelayMs?: number;
  errors: RedisErrorMapping;
  /**
   * Runs the connect and command deadlines and the reconnect pause. Default the system clock.
   * Bun's own connect timeout (set to `connectTimeoutMs` as a second guard) stays on real time.
   */
  clock?: Clock;
  /**
   * Set on every connection with `CLIENT SETNAME`, so `CLIENT LIST` tells whose connection is
   * whose (no spaces). A server that refuses the command leaves the connection unnamed.
   */
  name?: string;
}

/**
 * One Redis connection, redialled on demand, over Bun's `RedisClient`. Bun's own reconnect
 * loop queues commands for tens of seconds (then the client is dead for good) and waits
 * forever for a reply on a connection that went silent; here offline queueing and
 * auto-reconnect are off, every command has a deadline, and the next command after a failure
 * opens a fresh connection. Nothing connects before the first `send` or `connect`.
 *
 * Redis serves a connection's commands one at a time, in order: a command pipelined behind a
 * blocking one (`BLPOP`, `XREADGROUP … BLOCK`) is not even read before that one returns. So a
 * command sent while a blocking command is outstanding waits here until it has settled, and
 * only then goes out with its own deadline: none fails for time spent behind another, and a
 * blocking command that runs out of time (its connection is dropped) takes nothing down with it.
 * Plain commands sent together still share the connection as a pipeline.
 *
 * @example
 * const conn = new RedisConnection("redis://cache:6379/2", { connectTimeoutMs: 2_000, commandTimeoutMs: 3_000, errors });
 * await conn.send("SET", ["k", "v"]); // "OK"
 */
export class RedisConnection {
  private client: RedisClient | null = null;
  /** The client of the attempt in progress, so `close()` can cut it short. */
  private dialing: RedisClient | null = null;
  private connecting: Promise<RedisClient> | null = null;
  private closed = false;
  private failures = 0;
  private retryAt = 0;
  private lastError = "";
  private readonly clock: Clock;
  /** Settles once the last blocking command sent (or waiting its turn) has settled; null when none is outstanding. */
  private blockingTail: Promise<void> | null = null;

  constructor(
    private readonly url: string,
    private readonly opts: RedisConnectionOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
  }

  /**
   * Sends one command. `blockMs`: how long the command itself may legitimately take (a blocking
   * read), added to the command deadline; above 0 it marks the command as blocking, which
   * commands sent after it wait for (see the class comment).
   */
  send(command: string, args: string[], blockMs = 0): Promise<unknown> {
    const ahead = this.blockingTail;
    const call = ahead ? ahead.then(() => this.sendNow(command, args, blockMs)) : this.sendNow(command, args, blockMs);
    if (blockMs > 0) {
      const tail = call.then(
        () => {},
        () => {},
      );
      this.blockingTail = tail;
      void tail.then(() => {
        if (this.blockingTail === tail) this.blockingTail = null;
      });
    }
    return call;
  }

  private async sendNow(command: string, args: string[], extraMs: number): Promise<unknown> {
    const { errors } = this.opts;
    const client = await this.connect();
    const deadlineMs = this.opts.commandTimeoutMs + extraMs;
    try {
      return await withDeadline(this.clock, client.send(command, args), deadlineMs, `Redis did not answer ${command} within ${deadlineMs} ms`);
    } catch (err) {
      if (this.closed) throw errors.closed();
      const code = (err as { code?: string })?.code;
      if (code === SERVER_ERROR || code === INVALID_ARGUMENT) {
        throw errors.refused ? errors.refused(err as Error) : err;
      }
      // Timed out or lost: never reuse a connection that may still deliver a late reply.
      this.drop(client);
      throw err instanceof Late ? errors.unavailable(err.message) : errors.unavailable(`Redis connection failed: ${errorText(err)}`, err);
    }
  }

  /**
   * The open connection, dialling one if there is none. Concurrent callers share one attempt.
   * Call it without waiting (`conn.connect().catch(() => {})`) to dial ahead of the first command.
   */
  connect(): Promise<RedisClient> {
    const { errors } = this.opts;
    if (this.closed) return Promise.reject(errors.closed());
    if (this.client?.connected) return Promise.resolve(this.client);
    if (this.connecting) return this.connecting;
    const wait = this.retryAt - this.clock.now();
    if (wait > 0) {
      return Promise.reject(errors.unavailable(`Redis is unreachable (${this.lastError}); next attempt in ${wait} ms`));
    }
    // `.finally` runs after the assignment, so `connecting` never keeps a settled attempt.
    this.connecting = this.dial().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  /** Closes the connection for good: later calls, and calls still waiting, fail with `errors.closed()`. */
  close(): void {
    this.closed = true;
    this.drop(this.client);
    if (this.dialing) closeQuietly(this.dialing);
  }

  private async dial(): Promise<RedisClient> {
    const { errors, connectTimeoutMs } = this.opts;
    this.drop(this.client);
    let client: RedisClient | undefined;
    try {
      client = new RedisClient(this.url, {
        connectionTimeout: connectTimeoutMs,
        autoReconnect: false,
        enableOfflineQueue: false,
      });
      // Losing the server is noticed by the next call; nothing to do at the moment it happens.
      client.onclose = () => {};
      this.dialing = client;
      // Bun honours connectionTimeout; this deadline makes "never hangs" independent of it.
      await withDeadline(this.clock, this.handshake(client), connectTimeoutMs, `connect timed out after ${connectTimeoutMs} ms`);
    } catch (err) {
      this.dialing = null;
      if (client) closeQuietly(client);
      if (this.closed) throw errors.closed();
      this.failures++;
      this.lastError = errorText(err);
      const ceiling = this.opts.maxReconnectDelayMs ?? 0;
      if (ceiling > 0) this.retryAt = this.clock.now() + Math.min(ceiling, 50 * 2 ** Math.min(this.failures - 1, 20));
      throw errors.unavailable(`cannot connect to Redis: ${this.lastError}`, err instanceof Late ? undefined : err);
    }
    this.dialing = null;
    if (this.closed) {
      closeQuietly(client);
      throw errors.closed();
    }
    this.failures = 0;
    this.retryAt = 0;
    this.client = client;
    return client;
  }

  private async handshake(client: RedisClient): Promise<void> {
    await client.connect();
    const { name } = this.opts;
    if (!name) return;
    try {
      await client.send("CLIENT", ["SETNAME", name]);
    } catch (err) {
      // A name is a convenience; an ACL without CLIENT must not keep the connection from being used.
      if ((err as { code?: string })?.code !== SERVER_ERROR) throw err;
    }
  }

  private drop(client: RedisClient | null): void {
    if (!client || client !== this.client) return;
    this.client = null;
    closeQuietly(client);
  }
}

/** A deadline of ours ran out; the caller's mapping turns it into its own error. */
class Late extends Error {}

function withDeadline<T>(clock: Clock, p: Promise<T>, ms: number, what: string): Promise<T> {
  const done = new AbortController();
  const timeout = clock.sleep(ms, done.signal).then(() => {
    throw new Late(what);
  });
  // race() subscribes to both, so neither a late rejection of p nor the aborted sleep can go
  // unhandled and crash the process; aborting frees the timer once p has settled.
  return Promise.race([p, timeout]).finally(() => done.abort());
}

function closeQuietly(client: RedisClient): void {
  try {
    client.close();
  } catch {
    // already closed
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
