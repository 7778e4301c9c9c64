import { RedisClient } from "bun";
import { QueueClosedError, QueueUnavailableError } from "./queue.errors.ts";

const SERVER_ERROR = "ERR_REDIS_SERVER_ERROR";

/**
 * One lazily opened connection. Bun's client would queue commands while it reconnects (up to
 * tens of seconds) and wait forever for a reply on a connection that went silent; here
 * offline queueing and auto-reconnect are off, every command has a deadline, and the next
 * command after a failure opens a fresh connection.
 */
export class RedisConnection {
  private client: RedisClient | null = null;
  private connecting: Promise<RedisClient> | null = null;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly opts: { connectTimeoutMs: number; commandTimeoutMs: number },
  ) {}

  /** `extraMs`: how long the command itself may legitimately take (a blocking read). */
  async send(command: string, args: string[], extraMs = 0): Promise<any> {
    if (this.closed) throw new QueueClosedError();
    const client = await this.open();
    try {
      return await withDeadline(client.send(command, args), this.opts.commandTimeoutMs + extraMs, `${command} timed out`);
    } catch (err) {
      if (this.closed) throw new QueueClosedError();
      if ((err as { code?: string }).code === SERVER_ERROR) throw err;
      // Timed out or lost: never reuse a connection that may still deliver a late reply.
      if (this.client === client) this.drop();
      throw err instanceof QueueUnavailableError ? err : new QueueUnavailableError(`redis: ${errorText(err)}`, { cause: err });
    }
  }

  private open(): Promise<RedisClient> {
    if (this.client?.connected) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      this.drop();
      const client = new RedisClient(this.url, {
        connectionTimeout: this.opts.connectTimeoutMs,
        autoReconnect: false,
        enableOfflineQueue: false,
      });
      client.onclose = () => {};
      try {
        await withDeadline(client.connect(), this.opts.connectTimeoutMs, "connect timed out");
      } catch (err) {
        client.close();
        throw err instanceof QueueUnavailableError ? err : new QueueUnavailableError(`redis: ${errorText(err)}`, { cause: err });
      }
      if (this.closed) {
        client.close();
        throw new QueueClosedError();
      }
      this.client = client;
      return client;
    })().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private drop() {
    const c = this.client;
    this.client = null;
    try {
      c?.close();
    } catch {
      // already closed
    }
  }

  close() {
    this.closed = true;
    this.drop();
  }
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new QueueUnavailableError(`redis: ${what} after ${ms} ms`)), ms);
  });
  // race() subscribes to p, so a late rejection of p is handled and cannot crash the process.
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
