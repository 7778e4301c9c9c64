import { AppError } from "./errors.ts";

/**
 * The `Idempotency-Key` header, read the same way by every module that takes one (orders,
 * inventory's admin writes): its syntax, its errors, and the problem codes they carry.
 */

export class IdempotencyKeyReusedError extends AppError {
  readonly code = "idempotency_key_reused";
}
export class IdempotencyKeyInUseError extends AppError {
  readonly code = "idempotency_key_in_use";
}
export class MissingIdempotencyKeyError extends AppError {
  readonly code = "missing_idempotency_key";
}
export class InvalidIdempotencyKeyError extends AppError {
  readonly code = "invalid_idempotency_key";
}

export const IDEMPOTENCY_KEY_MAX = 255;
/** Printable ASCII, no space at either end, at most `IDEMPOTENCY_KEY_MAX` characters; the API description shows the same pattern. */
export const IDEMPOTENCY_KEY_PATTERN = `^[\\x21-\\x7e](?:[\\x20-\\x7e]{0,${IDEMPOTENCY_KEY_MAX - 2}}[\\x21-\\x7e])?$`;
const KEY_PATTERN = new RegExp(IDEMPOTENCY_KEY_PATTERN);

/**
 * Parses an `Idempotency-Key` header. The IETF draft makes it a structured-field string
 * (`"abc"`); a bare token is accepted too, as most clients send one.
 *
 * @example parseIdempotencyKey('"order-1"') // "order-1"
 */
export function parseIdempotencyKey(header: string | null | undefined): string {
  if (header === null || header === undefined || header.trim() === "") {
    throw new MissingIdempotencyKeyError(`Send an Idempotency-Key header: 1–${IDEMPOTENCY_KEY_MAX} printable ASCII characters, unique per logical request.`);
  }
  let key = header.trim();
  if (key.length >= 2 && key.startsWith('"') && key.endsWith('"')) key = key.slice(1, -1);
  if (!KEY_PATTERN.test(key)) {
    throw new InvalidIdempotencyKeyError(`The Idempotency-Key must be 1–${IDEMPOTENCY_KEY_MAX} printable ASCII characters.`);
  }
  return key;
}

/**
 * For routes where the key is optional (seed clients send none): null when the header is
 * absent, the key when it parses, and the same 400 as `parseIdempotencyKey` when it is malformed.
 *
 * @example optionalIdempotencyKey(null) // null
 */
export function optionalIdempotencyKey(header: string | null | undefined): string | null {
  return header === null || header === undefined ? null : parseIdempotencyKey(header);
}
