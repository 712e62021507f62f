// Learning-rate schedule: linear warmup, then cosine decay to a floor (nanoGPT's get_lr).
export interface CosineSchedule {
  lr: number;
  minLr: number;
  warmupIters: number;
  decayIters: number;
}

export function learningRate(it: number, s: CosineSchedule): number {
  if (it < s.warmupIters) return (s.lr * (it + 1)) / (s.warmupIters + 1);
  if (it > s.decayIters) return s.minLr;
  const ratio = (it - s.warmupIters) / Math.max(1, s.decayIters - s.warmupIters);
  const coeff = 0.5 * (1 + Math.cos(Math.PI * ratio));
  return s.minLr + coeff * (s.lr - s.minLr);
}
