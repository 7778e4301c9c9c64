import type { ProblemCode } from "./problems.ts";

/**
 * Every failure a client can see is one class with a stable `code`. Domain code throws these
 * and knows nothing of HTTP; `platform/problems.ts` maps codes to statuses in one place.
 */
export abstract class AppError extends Error {
  abstract readonly code: ProblemCode;
  /** Extra members for the problem body (RFC 9457 allows extensions). */
  readonly extensions: Record<string, unknown>;
  constructor(message: string, extensions: Record<string, unknown> = {}) {
    super(message);
    this.name = new.target.name;
    this.extensions = extensions;
  }
}

export class NotFoundError extends AppError {
  readonly code = "not_found";
}

/** A request that passed its schema but breaks a rule the schema cannot state (an item on two lines). */
export class InvalidRequestError extends AppError {
  readonly code: ProblemCode;
  constructor(message: string, extensions: Record<string, unknown> = {}, code: ProblemCode = "invalid_request") {
    super(message, extensions);
    this.code = code;
  }
}
