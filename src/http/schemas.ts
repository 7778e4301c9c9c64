import { t } from "elysia";

/** Shared input bounds: one definition, so the API, the UI and the property tests agree. */
export const LIMITS = {
  itemIdPattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
  itemNameMax: 200,
  orderQuantityMax: 10_000,
  stockMax: 1_000_000_000,
  restockMax: 1_000_000,
  idempotencyKeyMax: 255,
  bodyBytesMax: 1024 * 1024,
  /** Our bodies are flat objects; anything past this is an attack on the parser or the validator. */
  jsonDepthMax: 32,
} as const;

export const ItemId = t.String({ pattern: LIMITS.itemIdPattern, minLength: 1, maxLength: 64, description: "Item id: 1–64 of A–Z a–z 0–9 . _ -" });
/** C0 controls, DEL and C1 controls, as a regex class body. */
const CONTROL = "\\u0000-\\u001f\\u007f-\\u009f";
/**
 * A display name: 1–200 characters, no control characters (they break log lines, CSV exports and
 * terminals, and PostgreSQL cannot store NUL), no leading or trailing whitespace, so never blank.
 * The pattern backtracks at most over trailing whitespace: linear even on a megabyte of spaces.
 */
export const ItemName = t.String({
  minLength: 1,
  maxLength: LIMITS.itemNameMax,
  pattern: `^[^\\s${CONTROL}](?:[^${CONTROL}]*[^\\s${CONTROL}])?$`,
  description: "Display name: 1–200 characters, no control characters, no leading or trailing spaces",
});
export const OrderId = t.String({ format: "uuid", description: "Order id (UUID)" });
/**
 * A whole number in a JSON body. `t.Integer` would also accept the string "3" (Elysia coerces it
 * for form bodies); the API takes JSON numbers only, so "3" is a 400 like any other wrong type.
 */
export const Int = (opts: { minimum?: number; maximum?: number; description?: string } = {}) => t.Number({ multipleOf: 1, ...opts });

export const OrderQuantity = Int({ minimum: 1, maximum: LIMITS.orderQuantityMax, description: "Whole number of units" });
export const Timestamp = t.String({ format: "date-time" });
