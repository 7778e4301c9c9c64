import { NotFoundError } from "../../../platform/errors.ts";
import type { InventoryPort } from "../inventory.port.ts";
import type { InventoryService } from "../internal/inventory.service.ts";
import type { LedgerService } from "../internal/ledger.service.ts";

/** `all` role: the port is a direct call into the inventory service, same process, no network. */
export function createInProcessInventory(service: InventoryService, ledger: LedgerService): InventoryPort {
  return {
    deduct: (req) => service.deduct(req),
    release: (orderId) => service.release(orderId),
    pay: (orderId, paidAt) => service.pay(orderId, paidAt),
    expire: (orderId) => service.expire(orderId),
    movements: (itemId, page) =>
      ledger.movements(itemId, page ?? {}).catch((err) => {
        if (err instanceof NotFoundError) return null;
        throw err;
      }),
    get: (itemId) => service.get(itemId),
    list: () => service.list(),
    stockEvents: (after, limit) => service.stockEvents(after, limit),
    health: () => service.health(),
  };
}
