import { describe, expect, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { INVENTORY_LIMITS, ItemId } from "../inventory.rules.ts";
import { DeductQuantity, ItemName } from "./inventory.model.ts";

describe("ItemName", () => {
  test("takes ordinary names, in any script, up to the limit", () => {
    for (const name of ["PlayStation 5", "a", "Ünïcödé — 日本語 😀", "n".repeat(INVENTORY_LIMITS.itemNameMax), "<b>escaped on output</b>"]) {
      expect(Value.Check(ItemName, name)).toBe(true);
    }
  });

  test("refuses blank, padded, too long, and any control character", () => {
    for (const name of ["", " ", "   ", " a", "a ", "a\nb", "a\tb", "a\u0000", "\u0085x", "x\u009f", "a\u007fb", "n".repeat(INVENTORY_LIMITS.itemNameMax + 1)]) {
      expect(Value.Check(ItemName, name)).toBe(false);
    }
  });

  test("checks a megabyte of spaces in linear time (no catastrophic backtracking)", () => {
    const started = performance.now();
    for (const s of [" ".repeat(1 << 20), `a${" ".repeat(1 << 20)}`, `${"a ".repeat(1 << 19)}\n`]) [...Value.Errors(ItemName, s)];
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe("ItemId and DeductQuantity", () => {
  test("item ids: 1–64 of the allowed characters, not starting with punctuation", () => {
    expect(Value.Check(ItemId, "ps5")).toBe(true);
    expect(Value.Check(ItemId, "a".repeat(64))).toBe(true);
    for (const id of ["", "a".repeat(65), ".env", "-x", "a/b", "a b", "é"]) expect(Value.Check(ItemId, id)).toBe(false);
  });

  test("deduction quantities: JSON whole numbers in range, never strings", () => {
    expect(Value.Check(DeductQuantity, 1)).toBe(true);
    expect(Value.Check(DeductQuantity, INVENTORY_LIMITS.deductQuantityMax)).toBe(true);
    for (const q of [0, -1, 1.5, INVENTORY_LIMITS.deductQuantityMax + 1, "3", null, Number.NaN, Infinity]) expect(Value.Check(DeductQuantity, q)).toBe(false);
  });
});
