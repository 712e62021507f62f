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

/**
 * x [R, C] with row rows[i] replaced by row i of v: an image's patch vectors taking the
 * place of its placeholder tokens. The replaced rows pass no gradient back to x.
 */
export function spliceRows(x: Tensor, rows: Int32Array, v: Tensor): Tensor {
  const C = x.shape[x.shape.length - 1] as number;
  const R = x.size / C;
  if (v.size !== rows.length * C)
    throw new Error(`spliceRows: ${rows.length} rows of width ${C} need ${rows.length * C} values, got ${v.size}`);
  for (const r of rows) if (r < 0 || r >= R) throw new Error(`spliceRows: row ${r} outside the ${R} rows`);
  const out = Tensor.empty(x.shape);
  out.data.set(x.data);
  rows.forEach((r, i) => {
    out.data.set(v.data.subarray(i * C, (i + 1) * C), r * C);
  });
  if (needsGrad(x, v)) {
    record(out, () => {
      const g = out.grad;
      if (!g) return;
      if (x.requiresGrad) {
        const passed = Float32Array.from(g);
        for (const r of rows) passed.fill(0, r * C, (r + 1) * C);
        x.addGrad(passed);
      }
      if (v.requiresGrad) {
        const dv = v.ensureGrad();
        rows.forEach((r, i) => {
          native.accumulate(dv.subarray(i * C, (i + 1) * C), g.subarray(r * C, (r + 1) * C), 1, C);
        });
      }
    });
  }
  return out;
}
