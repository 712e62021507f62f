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

interface GradTarget {
  grad: Float32Array | Uint16Array;
  accumulate: boolean;
}

/**
 * Where the kernel puts the gradients of q, k and v, and whether it adds to what is there.
 * A gradient buffer nothing has written yet is written over, not zero-filled and added to:
 * the kernel writes every row of its columns once. The q, k and v of one fused tensor sit
 * in disjoint columns that together cover it, so they share its one target (in bf16 when
 * the tensor takes its gradient so and each head has its own keys); one tensor passed twice
 * at the same place gets both gradients added into a zeroed buffer.
 */
function gradTargets(operands: Operand[], bf16: boolean, grouped: boolean): GradTarget[] {
  const at = (o: Operand, target: GradTarget) => ({
    grad: target.grad.subarray(o.offset),
    accumulate: target.accumulate,
  });
  const tensors = new Set(operands.map((o) => o.t));
  const offsets = new Set(operands.map((o) => o.offset));
  if (tensors.size === 1 && offsets.size === operands.length) {
    const [first] = operands as [Operand];
    const shared: GradTarget = !first.t.requiresGrad
      ? { grad: new Float32Array(first.t.size), accumulate: false }
      : bf16 && !grouped
        ? first.t.storedGradTarget()
        : first.t.gradTarget();
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
  const scale = 1 / Math.sqrt(D);
  // Tile products in bf16 when matmuls run in bf16 natively (as under PyTorch's bf16 autocast);
  // then q, k and v are read as stored and the output is stored in bf16 (a projection reads it).
  const bf16 = bf16Native() && native.attentionBf16(D);
  const view = (o: Operand) => (bf16 ? o.t.stored : o.t.data).subarray(o.offset);
  const out = bf16 ? Tensor.emptyHalf([B, T, Hq * D]) : Tensor.empty([B, T, Hq * D]);
  const lse = new Float32Array(B * Hq * T);
  native.attentionForward(
    out.stored,
    lse,
    view(q),
    view(k),
    view(v),
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
    out.halfGradOk = bf16;
    record(out, () => {
      const g = out.storedGrad;
      if (!g) return;
      const [dq, dk, dv] = gradTargets([q, k, v], bf16, Hq !== Hkv) as [GradTarget, GradTarget, GradTarget];
      native.attentionBackward(
        dq.grad,
        dk.grad,
        dv.grad,
        g,
        out.stored,
        lse,
        view(q),
        view(k),
        view(v),
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
