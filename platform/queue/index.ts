import type { Database } from "../db.ts";
import type { Clock } from "../clock.ts";
import { createPostgresQueue } from "./postgres.ts";
import { createRedisStreamsQueue } from "./redis-streams.ts";
import type { RetryQueue } from "./queue.port.ts";

export type { Delivery, QueueDepth, RetryMessage, RetryQueue } from "./queue.port.ts";
export { QueueClosedError, QueueUnavailableError } from "./queue.errors.ts";
export { createPostgresQueue, type PostgresQueueOptions } from "./postgres.ts";
export { createRedisStreamsQueue, type RedisStreamsQueueOptions } from "./redis-streams.ts";

export interface RetryQueueConfig {
  /** `REDIS_URL`. Only a RESP URL (`redis://`, `rediss://`) selects Redis Streams: the Upstash REST API cannot block on a stream. */
  redisUrl?: string | undefined;
  database: Database;
  /** This replica's consumer name (Redis Streams), e.g. `${hostname()}-${process.pid}`. */
  consumer: string;
  /** Redis key prefix. */
  prefix?: string;
  visibilityTimeoutMs?: number;
  clock?: Clock;
  /** Prefix of the names of the Redis connections in `CLIENT LIST`. */
  redisClientName?: string;
}

/** The retry queue for this process: Redis Streams when `REDIS_URL` speaks RESP, else the PostgreSQL table. */
export function createRetryQueue(cfg: RetryQueueConfig): RetryQueue {
  if (cfg.redisUrl && /^rediss?:\/\//i.test(cfg.redisUrl)) {
    return createRedisStreamsQueue(cfg.redisUrl, {
      consumer: cfg.consumer,
      ...(cfg.prefix !== undefined && { prefix: cfg.prefix }),
      ...(cfg.visibilityTimeoutMs !== undefined && { visibilityTimeoutMs: cfg.visibilityTimeoutMs }),
      ...(cfg.clock && { clock: cfg.clock }),
      ...(cfg.redisClientName !== undefined && { clientName: cfg.redisClientName }),
    });
  }
  return createPostgresQueue(cfg.database, {
    ...(cfg.visibilityTimeoutMs !== undefined && { visibilityTimeoutMs: cfg.visibilityTimeoutMs }),
    ...(cfg.clock && { clock: cfg.clock }),
  });
}
