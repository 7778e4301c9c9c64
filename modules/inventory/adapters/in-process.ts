import type { InventoryPort } from "../inventory.port.ts";
import type { InventoryService } from "../internal/inventory.service.ts";

/** `all` role: the port is a direct call into the inventory service, same process, no network. */
export function createInProcessInventory(service: InventoryService): InventoryPort {
  return {
    deduct: (req) => service.deduct(req),
    release: (orderId) => service.release(orderId),
    pay: (orderId, paidAt) => service.pay(orderId, paidAt),
    expire: (orderId) => service.expire(orderId),
    get: (itemId) => service.get(itemId),
    list: () => service.list(),
    health: () => service.health(),
  };
}
