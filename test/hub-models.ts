// Model directories as the Hugging Face Hub ships them, written by tests: safetensors in
// F32/F16/BF16 (optionally sharded with an index), and config.json files with every field
// the released models' configs have, shrunk to a few dimensions.
import { writeFileSync } from "node:fs";
import { join } from "node:path";

/** A safetensors file with tensors in a given dtype (F32, F16 or BF16), as HF writes them. */
export function safetensorsBytes(tensors: [string, number[], Float32Array][], dtype: "F32" | "F16" | "BF16"): Buffer {
  const width = dtype === "F32" ? 4 : 2;
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const [name, shape, data] of tensors) {
    header[name] = { dtype, shape, data_offsets: [offset, offset + data.length * width] };
    offset += data.length * width;
  }
  const json = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  let pos = 8 + json.length;
  for (const [, , data] of tensors) {
    for (const v of data) {
      if (dtype === "F32") out.writeFloatLE(v, pos);
      else out.writeUInt16LE(dtype === "BF16" ? bf16Bits(v) : f16Bits(v), pos);
      pos += width;
    }
  }
  return out;
}

export function bf16Bits(v: number): number {
  const u = new Uint32Array(Float32Array.of(v).buffer)[0] as number;
  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
}

export function f16Bits(v: number): number {
  // Round to nearest; test weights stay far below the fp16 maximum.
  const u = new Uint32Array(Float32Array.of(v).buffer)[0] as number;
  const sign = (u >>> 16) & 0x8000;
  const a = Math.abs(v);
  if (a < 2 ** -14) return sign | Math.round(a / 2 ** -24); // zero or subnormal
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  if (exp >= 31) throw new Error(`f16Bits: ${v} overflows fp16`);
  return sign | ((exp << 10) + Math.round((u & 0x7fffff) / 8192)); // a mantissa carry bumps the exponent
}

/** config.json of released models (every field they ship), shrunk: 2 layers, a 32-token vocabulary. */
export const HUB_CONFIGS: Record<string, Record<string, unknown>> = {
  // HuggingFaceTB/SmolLM2-135M: Llama shape, GQA, tied embeddings
  smollm2: {
    architectures: ["LlamaForCausalLM"],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: 0,
    eos_token_id: 0,
    hidden_act: "silu",
    hidden_size: 24,
    initializer_range: 0.041666666666666664,
    intermediate_size: 40,
    is_llama_config: true,
    max_position_embeddings: 64,
    mlp_bias: false,
    model_type: "llama",
    num_attention_heads: 6,
    num_hidden_layers: 2,
    num_key_value_heads: 2,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_interleaved: false,
    rope_scaling: null,
    rope_theta: 100000,
    tie_word_embeddings: true,
    torch_dtype: "bfloat16",
    transformers_version: "4.42.3",
    use_cache: true,
    vocab_size: 32,
  },
  // meta-llama/Llama-3.2-1B: llama3 RoPE scaling, explicit head_dim, tied
  "llama3.2": {
    architectures: ["LlamaForCausalLM"],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: 1,
    eos_token_id: 2,
    head_dim: 8,
    hidden_act: "silu",
    hidden_size: 32,
    initializer_range: 0.02,
    intermediate_size: 48,
    max_position_embeddings: 1024,
    mlp_bias: false,
    model_type: "llama",
    num_attention_heads: 4,
    num_hidden_layers: 2,
    num_key_value_heads: 2,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_scaling: {
      factor: 32.0,
      high_freq_factor: 4.0,
      low_freq_factor: 1.0,
      original_max_position_embeddings: 64,
      rope_type: "llama3",
    },
    rope_theta: 500000.0,
    tie_word_embeddings: true,
    torch_dtype: "bfloat16",
    transformers_version: "4.45.0.dev0",
    use_cache: true,
    vocab_size: 32,
  },
  // TinyLlama/TinyLlama-1.1B-Chat-v1.0: Llama 2 shape, untied head
  tinyllama: {
    architectures: ["LlamaForCausalLM"],
    attention_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: "silu",
    hidden_size: 16,
    initializer_range: 0.02,
    intermediate_size: 40,
    max_position_embeddings: 64,
    model_type: "llama",
    num_attention_heads: 4,
    num_hidden_layers: 2,
    num_key_value_heads: 1,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_scaling: null,
    rope_theta: 10000.0,
    tie_word_embeddings: false,
    torch_dtype: "bfloat16",
    transformers_version: "4.35.0",
    use_cache: true,
    vocab_size: 32,
  },
  // mistralai/Mistral-7B-v0.1: sliding window
  mistral: {
    architectures: ["MistralForCausalLM"],
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: "silu",
    hidden_size: 16,
    initializer_range: 0.02,
    intermediate_size: 56,
    max_position_embeddings: 256,
    model_type: "mistral",
    num_attention_heads: 4,
    num_hidden_layers: 2,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    sliding_window: 32,
    tie_word_embeddings: false,
    torch_dtype: "bfloat16",
    transformers_version: "4.34.0.dev0",
    use_cache: true,
    vocab_size: 32,
  },
  // Qwen/Qwen2.5-0.5B: biases on q, k, v
  "qwen2.5": {
    architectures: ["Qwen2ForCausalLM"],
    attention_dropout: 0.0,
    bos_token_id: 151643,
    eos_token_id: 151643,
    hidden_act: "silu",
    hidden_size: 28,
    initializer_range: 0.02,
    intermediate_size: 40,
    max_position_embeddings: 64,
    max_window_layers: 2,
    model_type: "qwen2",
    num_attention_heads: 7,
    num_hidden_layers: 2,
    num_key_value_heads: 1,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000.0,
    sliding_window: 64,
    tie_word_embeddings: true,
    torch_dtype: "bfloat16",
    transformers_version: "4.40.1",
    use_cache: true,
    use_sliding_window: false,
    vocab_size: 32,
  },
  // Qwen/Qwen3-0.6B: per-head q/k RMSNorm, head_dim wider than hidden_size / heads
  qwen3: {
    architectures: ["Qwen3ForCausalLM"],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: 151643,
    eos_token_id: 151645,
    head_dim: 16,
    hidden_act: "silu",
    hidden_size: 32,
    initializer_range: 0.02,
    intermediate_size: 48,
    max_position_embeddings: 64,
    max_window_layers: 2,
    model_type: "qwen3",
    num_attention_heads: 4,
    num_hidden_layers: 2,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-6,
    rope_scaling: null,
    rope_theta: 1000000,
    sliding_window: null,
    tie_word_embeddings: true,
    torch_dtype: "bfloat16",
    transformers_version: "4.51.0",
    use_cache: true,
    use_sliding_window: false,
    vocab_size: 32,
  },
};

/** The tensors (name, shape) of a Llama-family checkpoint on the Hub, from its config.json. */
export function hubTensorShapes(c: Record<string, unknown>): [string, number[]][] {
  const n = (k: string) => c[k] as number;
  const H = n("hidden_size");
  const heads = n("num_attention_heads");
  const kvHeads = n("num_key_value_heads");
  const D = (c.head_dim as number | undefined) ?? H / heads;
  const I = n("intermediate_size");
  const out: [string, number[]][] = [["model.embed_tokens.weight", [n("vocab_size"), H]]];
  for (let i = 0; i < n("num_hidden_layers"); i++) {
    const l = `model.layers.${i}`;
    out.push([`${l}.input_layernorm.weight`, [H]]);
    out.push([`${l}.self_attn.q_proj.weight`, [heads * D, H]], [`${l}.self_attn.k_proj.weight`, [kvHeads * D, H]]);
    out.push([`${l}.self_attn.v_proj.weight`, [kvHeads * D, H]], [`${l}.self_attn.o_proj.weight`, [H, heads * D]]);
    if (c.model_type === "qwen2") {
      out.push([`${l}.self_attn.q_proj.bias`, [heads * D]], [`${l}.self_attn.k_proj.bias`, [kvHeads * D]]);
      out.push([`${l}.self_attn.v_proj.bias`, [kvHeads * D]]);
    }
    if (c.model_type === "qwen3") {
      out.push([`${l}.self_attn.q_norm.weight`, [D]], [`${l}.self_attn.k_norm.weight`, [D]]);
    }
    out.push([`${l}.post_attention_layernorm.weight`, [H]]);
    out.push([`${l}.mlp.gate_proj.weight`, [I, H]], [`${l}.mlp.up_proj.weight`, [I, H]]);
    out.push([`${l}.mlp.down_proj.weight`, [H, I]]);
  }
  out.push(["model.norm.weight", [H]]);
  if (!c.tie_word_embeddings) out.push(["lm_head.weight", [n("vocab_size"), H]]);
  return out;
}

/**
 * Writes a Hub-layout model directory with random weights (norm gains near 1) in `dtype`,
 * in `shards` safetensors files with an index when more than one. Returns the weights
 * as stored (after rounding to the dtype).
 */
export function writeHubModel(
  dir: string,
  config: Record<string, unknown>,
  o: { dtype?: "F32" | "BF16"; shards?: number; seed?: number } = {},
): Map<string, Float64Array> {
  let state = o.seed ?? 1;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31 - 0.5;
  };
  const dtype = o.dtype ?? "F32";
  const tensors: [string, number[], Float32Array][] = hubTensorShapes(config).map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const isGain = /norm\.weight$/.test(name);
    const data = Float32Array.from({ length: size }, () => (isGain ? 1 + 0.4 * random() : 0.6 * random()));
    if (dtype === "BF16") for (let i = 0; i < size; i++) data[i] = bf16Value(data[i] as number);
    return [name, shape, data];
  });
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2));
  const shards = o.shards ?? 1;
  if (shards === 1) writeFileSync(join(dir, "model.safetensors"), safetensorsBytes(tensors, dtype));
  else {
    const weightMap: Record<string, string> = {};
    const per = Math.ceil(tensors.length / shards);
    for (let s = 0; s < shards; s++) {
      const file = `model-${String(s + 1).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.safetensors`;
      const part = tensors.slice(s * per, (s + 1) * per);
      for (const [name] of part) weightMap[name] = file;
      writeFileSync(join(dir, file), safetensorsBytes(part, dtype));
    }
    const index = { metadata: { total_size: 0 }, weight_map: weightMap };
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify(index, null, 2));
  }
  return new Map(tensors.map(([name, , data]) => [name, Float64Array.from(data)]));
}

function bf16Value(v: number): number {
  const bits = new Uint32Array(1);
  bits[0] = bf16Bits(v) << 16;
  return new Float32Array(bits.buffer)[0] as number;
}
