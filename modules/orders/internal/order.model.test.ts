import { describe, expect, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { INVENTORY_LIMITS } from "../../inventory/index.ts";
import { ORDER_LIMITS, OrderQuantity } from "./order.model.ts";

describe("OrderQuantity", () => {
  test("quantities: JSON whole numbers in range, never strings", () => {
    expect(Value.Check(OrderQuantity, 1)).toBe(true);
    expect(Value.Check(OrderQuantity, ORDER_LIMITS.quantityMax)).toBe(true);
    for (const q of [0, -1, 1.5, ORDER_LIMITS.quantityMax + 1, "3", null, Number.NaN, Infinity]) expect(Value.Check(OrderQuantity, q)).toBe(false);
  });

  test("an order never asks inventory for more than one deduction may move", () => {
    expect(ORDER_LIMITS.quantityMax).toBeLessThanOrEqual(INVENTORY_LIMITS.deductQuantityMax);
  });
});
