// The benchmark configurations of ../shared/bench/README.md (nanoGPT's GPT, bias-free).
export const BENCH_CONFIGS = {
  A: { nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, batch: 12, vocabSize: 65 },
  B: { nLayer: 6, nHead: 6, nEmbd: 384, blockSize: 256, batch: 16, vocabSize: 65 },
  C: { nLayer: 6, nHead: 6, nEmbd: 384, blockSize: 256, batch: 16, vocabSize: 8192 },
} as const;

export type BenchConfigName = keyof typeof BENCH_CONFIGS;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}
