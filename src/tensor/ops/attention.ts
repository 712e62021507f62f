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
      const grad = (o: Operand) => view(o, o.t.requiresGrad ? o.t.ensureGrad() : new Float32Array(o.t.size));
      native.attentionBackward(
        grad(q),
        grad(k),
        grad(v),
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
