// The values synthetic conversations are made of, shared by the plain and the tool tasks:
// weekday and month names, random picks, and the fixed split of dates and sums into
// training and held-out values.
import type { Rng } from "../nn/random.ts";

export type Split = "train" | "heldout";

export const WEEKDAYS_EN = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
export const WEEKDAYS_ZH = ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"];
export const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

export function pick<T>(xs: readonly T[], rng: Rng): T {
  return xs[rng.int(xs.length)] as T;
}

/** A 32-bit mix (murmur3's finalizer): spreads values so a modulus does not track the weekday or the sum. */
function mix(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Held-out dates and sums are a fixed subset (one in eight) of all values, disjoint from training's. */
export const isHeldoutDate = (d: Date) => mix(Math.floor(d.getTime() / 86_400_000)) % 8 === 0;
const isHeldoutSum = (a: number, b: number) => mix(a * 1000 + b) % 8 === 0;

/** A day (midnight UTC) between 2000 and 2029 that belongs to the split. */
export function dayOf(split: Split, rng: Rng): Date {
  let d: Date;
  do d = new Date(Date.UTC(2000 + rng.int(30), rng.int(12), 1 + rng.int(28)));
  while (isHeldoutDate(d) !== (split === "heldout"));
  return d;
}

/** Two numbers below `limit` whose pair belongs to the split. */
export function operandsOf(split: Split, rng: Rng, limit = 100): [number, number] {
  let a: number;
  let b: number;
  do {
    a = rng.int(limit);
    b = rng.int(limit);
  } while (isHeldoutSum(a, b) !== (split === "heldout"));
  return [a, b];
}
