import { t } from "elysia";

/** Schema atoms the modules' bodies are built from, so every route reads numbers and times alike. */

/**
 * A whole number in a JSON body. `t.Integer` would also accept the string "3" (Elysia coerces it
 * for form bodies); the API takes JSON numbers only, so "3" is a 400 like any other wrong type.
 */
export const Int = (opts: { minimum?: number; maximum?: number; description?: string } = {}) => t.Number({ multipleOf: 1, ...opts });

export const OrderId = t.String({ format: "uuid", description: "Order id (UUID)" });
export const Timestamp = t.String({ format: "date-time" });
