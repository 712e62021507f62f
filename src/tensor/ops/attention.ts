// Self-attention on the fused flash-style kernel (no T x T score tensor): causal for language
// models, bidirectional for a vision encoder's patches.
import { native } from "../../backend/native.ts";
import { bf16Native } from "../precision.ts";
import { needsGrad, record } from "../tape.ts";
import { Tensor } from "../tensor.ts";

export interface AttentionShape {
  B: number;
  T: number;
  /** query heads */
  Hq: number;
  /** key/value heads (Hq for multi-head, fewer for grouped-query attention) */
  Hkv: number;
  /** head dimension */
  D: number;
  /** each token sees only the tokens before it (default); false: every token sees every other */
  causal?: boolean;
}

/** Where q, k and v sit: an offset into each tensor and the floats between tokens. */
interface Operand {
  t: Tensor;
  offset: number;
}

/**
 * Where the kernel puts the gradients of q, k and v, and whether it adds to what is there.
 * A gradient buffer nothing has written yet is written over, not zero-filled and added to:
 * the kernel writes every row of its columns once. The q, k and v of one fused tensor sit
 * in disjoint columns that together cover it, so they share its one target; one tensor
 * passed twice at the same place gets both gradients added into a zeroed buffer.
 */
function gradTargets(operands: Operand[]): { grad: Float32Array; accumulate: boolean }[] {
  const at = (o: Operand, target: { grad: Float32Array; accumulate: boolean }) => ({
    grad: target.grad.subarray(o.offset),
    accumulate: target.accumulate,
  });
  const tensors = new Set(operands.map((o) => o.t));
  const offsets = new Set(operands.map((o) => o.offset));
  if (tensors.size === 1 && offsets.size === operands.length) {
    const [first] = operands as [Operand];
    const shared = first.t.requiresGrad
      ? first.t.gradTarget()
      : { grad: new Float32Array(first.t.size), accumulate: false };
    return operands.map((o) => at(o, shared));
  }
  return operands.map((o) => {
    if (!o.t.requiresGrad) return at(o, { grad: new Float32Array(o.t.size), accumulate: false });
    if (tensors.size < operands.length) return at(o, { grad: o.t.ensureGrad(), accumulate: true });
    return at(o, o.t.gradTarget());
  });
}

function run(q: Operand, k: Operand, v: Operand, qStride: number, kvStride: number, s: AttentionShape): Tensor {
  const { B, T, Hq, Hkv, D } = s;
  const causal = s.causal ?? true;
  if (Hq % Hkv !== 0) throw new Error(`attention: ${Hq} query heads do not divide into ${Hkv} key/value heads`);
  const view = (o: Operand, a: Float32Array) => a.subarray(o.offset);
  const scale = 1 / Math.sqrt(D);
  // Tile products in bf16 when matmuls run in bf16 natively (as under PyTorch's bf16 autocast).
  const bf16 = bf16Native();
  const out = Tensor.empty([B, T, Hq * D]);
  const lse = new Float32Array(B * Hq * T);
  native.attentionForward(
    out.data,
    lse,
    view(q, q.t.data),
    view(k, k.t.data),
    view(v, v.t.data),
    B,
    T,
    Hq,
    Hkv,
    D,
    qStride,
    kvStride,
    scale,
    bf16,
    causal,
  );
  if (needsGrad(q.t, k.t, v.t)) {
    record(out, () => {
      const g = out.grad;
      if (!g) return;
      const [dq, dk, dv] = gradTargets([q, k, v]);
      native.attentionBackward(
        dq.grad,
        dk.grad,
        dv.grad,
        g,
        out.data,
        lse,
        view(q, q.t.data),
        view(k, k.t.data),
        view(v, v.t.data),
        B,
        T,
        Hq,
        Hkv,
        D,
        qStride,
        kvStride,
        scale,
        bf16,
        causal,
        dq.accumulate,
        dk.accumulate,
        dv.accumulate,
      );
    });
  }
  return out;
}

/** Attention over a fused qkv tensor [B, T, 3 * H * D] (GPT-2's c_attn output). Returns [B, T, H * D]. */
export function attentionQkv(qkv: Tensor, B: number, T: number, H: number, causal = true): Tensor {
  const C = (qkv.shape[qkv.shape.length - 1] as number) / 3;
  if (C % H !== 0) throw new Error(`attention: width ${C} is not divisible by ${H} heads`);
  const D = C / H;
  return run({ t: qkv, offset: 0 }, { t: qkv, offset: C }, { t: qkv, offset: 2 * C }, 3 * C, 3 * C, {
    B,
    T,
    Hq: H,
    Hkv: H,
    D,
    causal,
  });
}

/** Attention over separate q [B, T, Hq, D], k and v [B, T, Hkv, D]. Returns [B, T, Hq * D]. */
export function attention(q: Tensor, k: Tensor, v: Tensor, s: AttentionShape): Tensor {
  return run({ t: q, offset: 0 }, { t: k, offset: 0 }, { t: v, offset: 0 }, s.Hq * s.D, s.Hkv * s.D, s);
}
