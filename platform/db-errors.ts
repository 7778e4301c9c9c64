import { AppError } from "./errors.ts";

/**
 * The database cannot be reached or is going away: refused, terminated, shutting down or starting
 * up, or a statement cut off by its time bound. Not the request's fault and not a bug: the caller
 * may retry the same request (with the same Idempotency-Key) after `retryAfterS` seconds.
 *
 * What it says about a write: nothing. A statement whose connection died may or may not have
 * committed; only the rows tell (the order path reads its key row on the retry).
 */
export class DatabaseUnavailableError extends AppError {
  readonly code = "database_unavailable";
  /** A shutdown, restart or failover takes seconds; sooner retries only add load. */
  readonly retryAfterS = 2;
  constructor(
    message: string,
    /** The driver's code (SQLSTATE, errno, client code), for logs; never in a response. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(message);
    if (options?.cause !== undefined) Object.defineProperty(this, "cause", { value: options.cause, enumerable: false });
  }
}

// SQLSTATE classes and codes that mean the server or the session is not there for us.
const UNAVAILABLE_SQLSTATES = new Set([
  "57P01", // admin_shutdown: terminating connection due to administrator command (fast stop)
  "57P02", // crash_shutdown: a backend crashed, every session is terminated
  "57P03", // cannot_connect_now: the database system is starting up / shutting down
  "57P05", // idle_session_timeout
  "53300", // too_many_connections: max_connections reached
  "57014", // query_canceled: statement_timeout (the bound we set) or a cancel
]);

// Client-side codes: sockets (node-postgres) and Bun's SQL client.
const UNAVAILABLE_CLIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "ERR_POSTGRES_CONNECTION_REFUSED",
  "ERR_POSTGRES_CONNECTION_CLOSED",
  "ERR_POSTGRES_CONNECTION_TIMEOUT",
  "ERR_POSTGRES_IDLE_TIMEOUT",
  "ERR_POSTGRES_LIFETIME_TIMEOUT",
  "ERR_POSTGRES_QUERY_CANCELLED",
]);

// node-postgres and pg-pool say these in words only (no code).
const UNAVAILABLE_MESSAGES = [
  /^Connection terminated/, // "…unexpectedly", "…due to connection timeout"
  /^Client has encountered a connection error and is not queryable/,
  /^timeout exceeded when trying to connect/, // pg-pool: connectionTimeoutMillis
  /^Query read timeout/, // node-postgres: query_timeout
  /^Client was closed and is not queryable/,
];

/** The driver's code for an unavailability, or null for any other error. */
export function unavailabilityReason(err: unknown): string | null {
  if (err instanceof DatabaseUnavailableError) return err.reason;
  if (typeof err !== "object" || err === null) return null;
  const e = err as { code?: unknown; errno?: unknown; message?: unknown };
  // Bun's SQL client keeps the SQLSTATE in `errno`; node-postgres in `code`.
  for (const c of [e.code, e.errno]) {
    if (typeof c === "string" && (UNAVAILABLE_SQLSTATES.has(c) || UNAVAILABLE_CLIENT_CODES.has(c) || c.startsWith("08"))) return c;
  }
  const message = typeof e.message === "string" ? e.message : "";
  return UNAVAILABLE_MESSAGES.some((m) => m.test(message)) ? "connection_lost" : null;
}

/** The error to throw: a `DatabaseUnavailableError` for an unavailability, the error itself otherwise. */
export function databaseError(err: unknown): unknown {
  if (err instanceof DatabaseUnavailableError) return err;
  const reason = unavailabilityReason(err);
  if (reason === null) return err;
  return new DatabaseUnavailableError("The database is unavailable; retry shortly (an order with the same Idempotency-Key).", reason, { cause: err });
}

/** Throws `databaseError(err)`: for `.catch(rethrowDatabaseError)`. */
export function rethrowDatabaseError(err: unknown): never {
  throw databaseError(err);
}
