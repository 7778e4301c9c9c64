import { describe, expect, test } from "bun:test";
import { DEMO_CATALOG, seedCatalog, type InventoryService } from "./inventory.service.ts";

/** Just enough of the service for seeding: a list and a create that remembers. */
function fakeService(existing: string[] = []) {
  const created: string[] = [];
  const service = {
    list: async () => existing.map((item_id) => ({ item_id })),
    createItem: async (item_id: string) => void created.push(item_id),
  } as unknown as InventoryService;
  return { service, created };
}

describe("the demo catalog", () => {
  test("holds the seed project's items, so its front end and scripts order what exists", () => {
    const ids = DEMO_CATALOG.map((i) => i.item_id);
    for (const id of ["ps5", "xbox", "switch", "laptop", "monitor"]) expect(ids).toContain(id);
  });

  test("has unique, valid ids, names and at least 1,000 units of each", () => {
    const ids = DEMO_CATALOG.map((i) => i.item_id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const item of DEMO_CATALOG) {
      // The item id and name rules of src/http/schemas.ts.
      expect(item.item_id).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
      expect(item.item_name).toMatch(/^[^\s\p{Cc}](?:[^\p{Cc}]*[^\s\p{Cc}])?$/u);
      expect(item.item_name.length).toBeLessThanOrEqual(200);
      expect(item.quantity).toBeGreaterThanOrEqual(1000);
    }
  });

  test("is seeded whole into an empty inventory, and not at all into one that has items", async () => {
    const empty = fakeService();
    expect(await seedCatalog(empty.service)).toBe(DEMO_CATALOG.length);
    expect(empty.created).toEqual(DEMO_CATALOG.map((i) => i.item_id));
    const used = fakeService(["deck"]);
    expect(await seedCatalog(used.service)).toBe(0);
    expect(used.created).toEqual([]);
  });
});
