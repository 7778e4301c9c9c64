import type { Random } from "./clock.ts";

/**
 * Seeded pseudo-random numbers for chaos experiments: the same seed gives the same sequence on
 * every machine and runtime, which is what makes a failed chaos run replayable. Not for secrets.
 */

const UINT32 = 0x1_0000_0000;

/** Coerces any finite number to an unsigned 32-bit seed (what the generators below take). */
export function toSeed(n: number): number {
  return (Math.trunc(n) % UINT32 + UINT32) % UINT32;
}

/**
 * mulberry32: one 32-bit word of state, good statistical quality for fault injection, trivially
 * portable. `const r = mulberry32(42); r()` → 0.6011037519201636, then the same numbers every run.
 */
export function mulberry32(seed: number): Random {
  let a = toSeed(seed);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / UINT32;
  };
}

/**
 * Mixes a seed with an index into a new, well-spread seed (a splitmix32-style finaliser), so
 * "the k-th hit of experiment S" has its own stream that every replica derives identically.
 */
export function mixSeed(seed: number, index: number): number {
  let z = (toSeed(seed) ^ Math.imul(toSeed(index), 0x9e3779b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A fresh seed drawn from any random source (used when an experiment does not name one). */
export function seedFrom(random: Random): number {
  return toSeed(Math.floor(random() * UINT32));
}
