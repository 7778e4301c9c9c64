/** The backing store (Redis) did not answer, or not in time. The message state is unknown to the caller. */
export class QueueUnavailableError extends Error {
  readonly code = "QUEUE_UNAVAILABLE";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "QueueUnavailableError";
  }
}

/** An operation other than `receive` was called after `close()`. */
export class QueueClosedError extends Error {
  readonly code = "QUEUE_CLOSED";
  constructor() {
    super("retry queue is closed");
    this.name = "QueueClosedError";
  }
}
