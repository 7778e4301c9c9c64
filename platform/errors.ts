/**
 * Every failure a client can see is one class with a stable `code`. Domain code throws these
 * and knows nothing of HTTP; `src/http/problem.ts` maps codes to statuses in one place.
 */
export abstract class AppError extends Error {
  abstract readonly code: string;
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

export class ValidationError extends AppError {
  readonly code = "invalid_request";
  constructor(message: string, readonly errors: Array<{ field: string; message: string }> = []) {
    super(message, errors.length ? { errors } : {});
  }
}

export class ConflictError extends AppError {
  readonly code = "conflict";
}

export class UnauthorizedError extends AppError {
  readonly code = "unauthorized";
}

export class ForbiddenError extends AppError {
  readonly code = "forbidden";
}
