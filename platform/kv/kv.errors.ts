/**
 * Failures of the key-value port, split by what a caller should do about them: an unavailable
 * store may answer on the next try (the resilience layer decides whether to retry or fall back),
 * a refused command will be refused again, and a bad configuration stops start-up.
 */
export class KeyValueUnavailableError extends Error {
  readonly code = "KV_UNAVAILABLE";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "KeyValueUnavailableError";
  }
}

export class KeyValueCommandError extends Error {
  readonly code = "KV_COMMAND_FAILED";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "KeyValueCommandError";
  }
}

export class KeyValueConfigError extends Error {
  readonly code = "KV_CONFIG";
  constructor(message: string) {
    super(message);
    this.name = "KeyValueConfigError";
  }
}

// Server replies that mean "not now" rather than "never": loading a dataset, a busy script,
// a replica that lost its primary, failover in progress, or a hosted plan's rate limit.
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|READONLY|CLUSTERDOWN)\b|rate limit|too many requests/i;

/** An error reply from the store itself, classified by whether trying again can help. */
export function replyError(message: string, cause?: unknown): KeyValueUnavailableError | KeyValueCommandError {
  return TRANSIENT_REPLY.test(message)
    ? new KeyValueUnavailableError(`key-value store busy: ${message}`, { cause })
    : new KeyValueCommandError(`key-value command refused: ${message}`, { cause });
}

/** `pushCapped` keeps the newest `max` entries; zero or a fraction would mean "keep everything" to Redis. */
export function assertListCap(max: number): void {
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`pushCapped: max must be a whole number >= 1, got ${max}`);
}
