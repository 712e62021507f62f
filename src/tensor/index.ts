export { type AttentionShape, attention, attentionQkv } from "./ops/attention.ts";
export { add, dropout, gelu, rope, scale, swiglu } from "./ops/elementwise.ts";
export { embedding, spliceRows } from "./ops/embedding.ts";
export { type HeadLossOptions, headBlockRows, linearCrossEntropy } from "./ops/head-loss.ts";
export { cachedAttention, embeddingAt, lastRows, type RowSource, ropeAt } from "./ops/inference.ts";
export { type LinearOptions, linear, linearPlusLowRank, matmul, type WeightLayout } from "./ops/linear.ts";
export { crossEntropy, dpoLoss, IGNORE_INDEX, sequenceLogProbs, tokenLogProbs } from "./ops/loss.ts";
export { addLayerNorm, addRmsNorm, layerNorm, rmsNorm } from "./ops/norm.ts";
export { type PolicyTerms, policyLoss } from "./ops/policy.ts";
export { recyclingBuffers } from "./pool.ts";
export {
  cpuHasBf16,
  cpuSummary,
  type FrozenWeights,
  type Precision,
  precision,
  resolvePrecision,
  setPrecision,
  withFrozenWeights,
} from "./precision.ts";
export { backward, clearTape, gradEnabled, needsGrad, noGrad, record } from "./tape.ts";
export { type Shape, sizeOf, Tensor } from "./tensor.ts";
