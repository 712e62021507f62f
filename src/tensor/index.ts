export { type AttentionShape, attention, attentionQkv } from "./ops/attention.ts";
export { add, dropout, gelu, rope, scale, swiglu } from "./ops/elementwise.ts";
export { embedding } from "./ops/embedding.ts";
export { linear, matmul, type WeightLayout } from "./ops/linear.ts";
export { crossEntropy, IGNORE_INDEX } from "./ops/loss.ts";
export { layerNorm, rmsNorm } from "./ops/norm.ts";
export { cpuHasBf16, type Precision, precision, resolvePrecision, setPrecision } from "./precision.ts";
export { backward, clearTape, gradEnabled, needsGrad, noGrad, record } from "./tape.ts";
export { type Shape, sizeOf, Tensor } from "./tensor.ts";
