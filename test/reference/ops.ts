// Plain float64 reference implementations of every op, written for clarity: loops over
// elements, the textbook formulas, no fusion. Tests compare the native kernels to these.
export type F64 = Float64Array;

export function matmul(a: F64, b: F64, M: number, N: number, K: number, transA: boolean, transB: boolean): F64 {
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = transA ? (a[k * M + i] as number) : (a[i * K + k] as number);
        const bv = transB ? (b[j * K + k] as number) : (b[k * N + j] as number);
        s += av * bv;
      }
      out[i * N + j] = s;
    }
  return out;
}

/** y = x W^T (+ b), W [N, K] ("out-in") or [K, N] ("in-out"). */
export function linear(x: F64, w: F64, b: F64 | null, M: number, N: number, K: number, inOut: boolean): F64 {
  const y = matmul(x, w, M, N, K, false, !inOut);
  if (b) for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) y[i * N + j] += b[j] as number;
  return y;
}

export function embedding(idx: Int32Array, wte: F64, wpe: F64 | null, T: number, C: number): F64 {
  const out = new Float64Array(idx.length * C);
  idx.forEach((id, r) => {
    for (let c = 0; c < C; c++)
      out[r * C + c] = (wte[id * C + c] as number) + (wpe ? (wpe[(r % T) * C + c] as number) : 0);
  });
  return out;
}

export function layerNorm(x: F64, w: F64, b: F64 | null, C: number, eps: number): F64 {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / C; r++) {
    let mu = 0;
    for (let c = 0; c < C; c++) mu += x[r * C + c] as number;
    mu /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += ((x[r * C + c] as number) - mu) ** 2;
    const rs = 1 / Math.sqrt(v / C + eps);
    for (let c = 0; c < C; c++)
      out[r * C + c] = ((x[r * C + c] as number) - mu) * rs * (w[c] as number) + (b ? (b[c] as number) : 0);
  }
  return out;
}

export function rmsNorm(x: F64, w: F64, C: number, eps: number): F64 {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / C; r++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += (x[r * C + c] as number) ** 2;
    const rs = 1 / Math.sqrt(ss / C + eps);
    for (let c = 0; c < C; c++) out[r * C + c] = (x[r * C + c] as number) * rs * (w[c] as number);
  }
  return out;
}

export function gelu(x: F64): F64 {
  return x.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
}

export function swiglu(gate: F64, up: F64): F64 {
  return gate.map((g, i) => (g / (1 + Math.exp(-g))) * (up[i] as number));
}

export function add(a: F64, b: F64): F64 {
  return a.map((v, i) => v + (b[i] as number));
}

/** HF Llama rotate-half RoPE on [B, T, H, D]: pair i turns by t * invFreq[i] (default: theta^(-2i/D)). */
export function rope(
  x: F64,
  B: number,
  T: number,
  H: number,
  D: number,
  theta: number,
  invFreq: ArrayLike<number> = Array.from({ length: D / 2 }, (_, i) => theta ** ((-2 * i) / D)),
): F64 {
  const out = new Float64Array(x.length);
  const half = D / 2;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const o = ((b * T + t) * H + h) * D;
        for (let i = 0; i < half; i++) {
          const a = t * (invFreq[i] as number);
          const x1 = x[o + i] as number;
          const x2 = x[o + i + half] as number;
          out[o + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
          out[o + i + half] = x2 * Math.cos(a) + x1 * Math.sin(a);
        }
      }
  return out;
}

/** Naive attention: full score matrix, softmax, weighted sum. q [B,T,Hq,D], k/v [B,T,Hkv,D]. Causal unless told. */
export function attention(
  q: F64,
  k: F64,
  v: F64,
  B: number,
  T: number,
  Hq: number,
  Hkv: number,
  D: number,
  causal = true,
): F64 {
  const out = new Float64Array(B * T * Hq * D);
  const group = Hq / Hkv;
  const scale = 1 / Math.sqrt(D);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / group);
      for (let i = 0; i < T; i++) {
        const seen = causal ? i + 1 : T;
        const s = new Float64Array(seen);
        for (let j = 0; j < seen; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++)
            dot += (q[((b * T + i) * Hq + h) * D + d] as number) * (k[((b * T + j) * Hkv + kh) * D + d] as number);
          s[j] = dot * scale;
        }
        const mx = Math.max(...s);
        let sum = 0;
        for (let j = 0; j < seen; j++) {
          s[j] = Math.exp((s[j] as number) - mx);
          sum += s[j] as number;
        }
        for (let j = 0; j < seen; j++)
          for (let d = 0; d < D; d++)
            out[((b * T + i) * Hq + h) * D + d] +=
              ((s[j] as number) / sum) * (v[((b * T + j) * Hkv + kh) * D + d] as number);
      }
    }
  return out;
}

/** Splits a fused qkv [B, T, 3C] into q, k, v [B, T, C]. */
export function splitQkv(qkv: F64, BT: number, C: number): [F64, F64, F64] {
  const parts: [F64, F64, F64] = [new Float64Array(BT * C), new Float64Array(BT * C), new Float64Array(BT * C)];
  for (let r = 0; r < BT; r++)
    for (let p = 0; p < 3; p++) for (let c = 0; c < C; c++) parts[p][r * C + c] = qkv[r * 3 * C + p * C + c] as number;
  return parts;
}

export function crossEntropy(logits: F64, targets: Int32Array, V: number, ignoreIndex: number): number {
  let sum = 0;
  let count = 0;
  targets.forEach((t, r) => {
    if (t === ignoreIndex) return;
    let mx = -Infinity;
    for (let j = 0; j < V; j++) mx = Math.max(mx, logits[r * V + j] as number);
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp((logits[r * V + j] as number) - mx);
    sum += mx + Math.log(s) - (logits[r * V + t] as number);
    count++;
  });
  return count ? sum / count : 0;
}

/** Each sequence's summed log-probability of its counted targets: [B]. */
export function sequenceLogProbs(logits: F64, targets: Int32Array, B: number, V: number): F64 {
  const T = targets.length / B;
  const out = new Float64Array(B);
  tokenLogProbs(logits, targets, V).forEach((lp, r) => {
    out[Math.floor(r / T)] += lp;
  });
  return out;
}

/** Each position's log-probability of its target (0 where ignored). */
export function tokenLogProbs(logits: F64, targets: Int32Array, V: number): F64 {
  const out = new Float64Array(targets.length);
  targets.forEach((t, r) => {
    if (t === -1) return;
    let mx = -Infinity;
    for (let j = 0; j < V; j++) mx = Math.max(mx, logits[r * V + j] as number);
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp((logits[r * V + j] as number) - mx);
    out[r] = (logits[r * V + t] as number) - mx - Math.log(s);
  });
  return out;
}

/** DPO's sigmoid loss, written from the paper: mean of -log sigmoid(beta * (policy margin - reference margin)). */
export function dpoLoss(chosen: F64, rejected: F64, refChosen: number[], refRejected: number[], beta: number): number {
  let sum = 0;
  for (let i = 0; i < chosen.length; i++) {
    const z =
      beta *
      ((chosen[i] as number) - (rejected[i] as number) - ((refChosen[i] as number) - (refRejected[i] as number)));
    sum += -Math.log(1 / (1 + Math.exp(-z)));
  }
  return sum / chosen.length;
}
