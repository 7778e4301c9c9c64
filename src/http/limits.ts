/**
 * The HTTP layer's own bounds, checked before a body reaches any route. The domain's bounds live
 * with their owners: item ids and stock in `modules/inventory/inventory.rules.ts`, order
 * quantities and idempotency keys in `modules/orders/internal/order.model.ts`.
 */
export const HTTP_LIMITS = {
  bodyBytesMax: 1024 * 1024,
  /** Our bodies are flat objects; anything past this is an attack on the parser or the validator. */
  jsonDepthMax: 32,
} as const;
