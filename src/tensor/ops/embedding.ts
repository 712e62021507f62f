import { native } from "../../backend/native.ts";
import { needsGrad, record } from "../tape.ts";
import { Tensor } from "../tensor.ts";

/** out[b, t] = wte[idx[b, t]] + wpe[t] (wpe null: token embedding only). Shape [B, T, C]. */
export function embedding(idx: Int32Array, B: number, T: number, wte: Tensor, wpe: Tensor | null): Tensor {
  const [V, C] = wte.shape as [number, number];
  if (idx.length !== B * T) throw new Error(`embedding: ${idx.length} token ids for B=${B}, T=${T}`);
  if (wpe && (wpe.shape[0] as number) < T) {
    throw new Error(`embedding: sequence length ${T} exceeds the ${wpe.shape[0]} learned positions`);
  }
  for (const id of idx)
    if (id < 0 || id >= V) throw new Error(`embedding: token id ${id} outside the vocabulary of ${V}`);
  const out = Tensor.empty([B, T, C]);
  native.embeddingForward(out.data, idx, wte.data, wpe?.data ?? null, B, T, C);
  if (needsGrad(wte, wpe)) {
    record(out, () => {
      const g = out.grad;
      if (!g) return;
      const dwte = wte.requiresGrad ? wte.ensureGrad() : null;
      const dwpe = wpe?.requiresGrad ? wpe.ensureGrad() : null;
      native.embeddingBackward(g, idx, dwte, dwpe, B, T, C);
    });
  }
  return out;
}
