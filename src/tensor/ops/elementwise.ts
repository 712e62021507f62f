// Activations, residual adds, scaling and dropout.
import { native } from "../../backend/native.ts";
import { bf16Native } from "../precision.ts";
import { needsGrad, record } from "../tape.ts";
import { Tensor } from "../tensor.ts";

export function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size) throw new Error(`${op}: shapes [${a.shape.join(", ")}] and [${b.shape.join(", ")}] differ`);
}

/**
 * GELU, tanh approximation (GPT-2's "gelu_new"). Under native bf16 its output is stored in
 * bf16 (the MLP's down projection reads it next), x may be too (the up projection's output),
 * and x's gradient is written in bf16 when x is a linear layer's output.
 */
export function gelu(x: Tensor): Tensor {
  const half = bf16Native();
  const out = half ? Tensor.emptyHalf(x.shape) : Tensor.empty(x.shape);
  native.geluForward(out.stored, x.stored, x.size);
  if (needsGrad(x)) {
    out.halfGradOk = half; // the backward below reads it as it comes
    record(out, () => {
      const g = out.storedGrad;
      if (!g) return;
      const dx = x.storedGradTarget();
      native.geluBackward(dx.grad, g, x.stored, x.size, dx.accumulate);
    });
  }
  return out;
}

/** SwiGLU: silu(gate) * up (Llama's MLP); stored in bf16 under native bf16, for the down projection. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  sameShape("swiglu", gate, up);
  const out = bf16Native() ? Tensor.emptyHalf(gate.shape) : Tensor.empty(gate.shape);
  native.swigluForward(out.stored, gate.data, up.data, gate.size);
  if (needsGrad(gate, up)) {
    record(out, () => {
      const g = out.grad;
      if (!g) return;
      const dgate = gate.requiresGrad ? gate.ensureGrad() : new Float32Array(gate.size);
      const dup = up.requiresGrad ? up.ensureGrad() : new Float32Array(up.size);
      native.swigluBackward(dgate, dup, g, gate.data, up.data, gate.size);
    });
  }
  return out;
}

/** a + b in fp32; b may be stored in bf16 (a projection's output added to the residual stream). */
export function add(a: Tensor, b: Tensor): Tensor {
  sameShape("add", a, b);
  const out = Tensor.empty(a.shape);
  native.add(out.data, a.data, b.stored, a.size);
  recordAdd(out, a, b);
  return out;
}

/** The backward of out = a + b, however out was computed (addLayerNorm computes it with its norm). */
export function recordAdd(out: Tensor, a: Tensor, b: Tensor): void {
  if (!needsGrad(a, b)) return;
  record(out, () => {
    const g = out.grad;
    if (!g) return;
    if (b.requiresGrad) b.addGrad(g);
    // out's gradient is spent after this: a may take the buffer itself (the residual stream).
    if (a.requiresGrad && !a.adoptGrad(out)) a.addGrad(g);
  });
}

export function scale(x: Tensor, s: number): Tensor {
  const out = Tensor.zeros(x.shape);
  native.accumulate(out.data, x.data, s, x.size);
  if (needsGrad(x)) {
    record(out, () => {
      if (out.grad) x.addGrad(out.grad, s);
    });
  }
  return out;
}

/** Inverted dropout; the mask comes from (seed, index), so backward regenerates it. */
export function dropout(x: Tensor, p: number, seed: number): Tensor {
  if (p <= 0) return x;
  if (p >= 1) throw new Error(`dropout: probability must be below 1, got ${p}`);
  const out = Tensor.empty(x.shape);
  native.dropout(out.data, x.data, x.size, p, seed, false);
  if (needsGrad(x)) {
    record(out, () => {
      if (out.grad) native.dropout(x.ensureGrad(), out.grad, x.size, p, seed, true);
    });
  }
  return out;
}

/**
 * Rotary position embedding on [B, T, H, D] (Hugging Face Llama's rotate-half pairing):
 * pair i turns by position * invFreq[i] (D/2 frequencies, any scaling already applied).
 */
export function rope(x: Tensor, invFreq: Float32Array, pos0 = 0): Tensor {
  const [B, T, H, D] = x.shape as [number, number, number, number];
  if (D % 2 !== 0) throw new Error(`rope: head dimension ${D} must be even`);
  if (invFreq.length !== D / 2) throw new Error(`rope: ${invFreq.length} frequencies for head dimension ${D}`);
  const out = Tensor.empty(x.shape);
  native.rope(out.data, x.data, B, T, H, D, invFreq, pos0, false);
  if (needsGrad(x)) {
    record(out, () => {
      if (out.grad) native.rope(x.ensureGrad(), out.grad, B, T, H, D, invFreq, pos0, true);
    });
  }
  return out;
}
