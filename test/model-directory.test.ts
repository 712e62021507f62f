// Model directories in Hugging Face's format: our own round trip, directories laid out
// as Hugging Face's save_pretrained writes them (half-precision weights, extra config
// fields, mask buffers), and the errors for broken ones.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { writeDirAtomic } from "../src/io/atomic.ts";
import { makeConfig } from "../src/model/config.ts";
import { loadModel, modelFiles } from "../src/model/directory.ts";
import { initModel, type Model } from "../src/model/model.ts";
import { readSafetensors } from "../src/model/safetensors.ts";
import { noGrad } from "../src/tensor/index.ts";
import { safetensorsBytes } from "./hub-models.ts";
import { tempDir } from "./tmp.ts";

const gptConfig = makeConfig({
  arch: "gpt2",
  vocabSize: 37,
  blockSize: 16,
  nLayer: 2,
  nHead: 2,
  nEmbd: 16,
  bias: false,
});
const llamaConfig = makeConfig({
  arch: "llama",
  vocabSize: 37,
  blockSize: 16,
  nLayer: 2,
  nHead: 4,
  nKvHead: 2,
  nEmbd: 16,
  intermediateSize: 32,
});
const idx = Int32Array.from({ length: 16 }, (_, i) => (i * 7) % 37);

function logits(model: Model): Float32Array {
  return noGrad(() => Float32Array.from(model.forward(idx, 2, 8).data));
}

function tmp(): string {
  return tempDir("dir");
}

function decodeBack(values: Float32Array, dtype: "F16" | "BF16"): Float32Array {
  const dir = tmp();
  const path = join(dir, "x.safetensors");
  writeFileSync(path, safetensorsBytes([["x", [values.length], values]], dtype));
  return readSafetensors(path).tensors.get("x")?.data as Float32Array;
}

describe("model directories", () => {
  for (const config of [gptConfig, llamaConfig])
    test(`${config.arch}: save and load give identical logits, with HF names and layouts`, () => {
      const model = initModel(config, 3);
      const dir = join(tmp(), "m");
      writeDirAtomic(dir, modelFiles(model));
      const loaded = loadModel(dir);
      assert.deepEqual(logits(loaded), logits(model));
      const { tensors } = readSafetensors(join(dir, "model.safetensors"));
      if (config.arch === "gpt2") {
        assert.deepEqual(tensors.get("transformer.h.0.attn.c_attn.weight")?.shape, [16, 48]); // Conv1D [in, out]
        assert.deepEqual(tensors.get("transformer.h.1.mlp.c_proj.bias")?.data, new Float32Array(16)); // explicit zero bias
        const hf = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
        assert.equal(hf.architectures[0], "GPT2LMHeadModel");
        assert.equal(hf.n_positions, 16);
      } else {
        assert.deepEqual(tensors.get("model.layers.0.self_attn.k_proj.weight")?.shape, [8, 16]);
        assert.ok(tensors.has("lm_head.weight"));
        const hf = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
        assert.equal(hf.num_key_value_heads, 2);
      }
    });

  test("a GPT-2 directory as Hugging Face writes it (fp16 weights, mask buffers, tied lm_head saved)", () => {
    const config = { ...gptConfig, bias: true };
    const model = initModel(config, 5);
    const tensors: [string, number[], Float32Array][] = [...model.params].map(([n, t]) => [n, [...t.shape], t.data]);
    tensors.push(["transformer.h.0.attn.bias", [1, 1, 16, 16], new Float32Array(256).fill(1)]);
    tensors.push(["lm_head.weight", [37, 16], model.params.get("transformer.wte.weight")?.data as Float32Array]);
    const dir = tmp();
    writeFileSync(join(dir, "model.safetensors"), safetensorsBytes(tensors, "F16"));
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({
        _name_or_path: "gpt2",
        activation_function: "gelu_new",
        architectures: ["GPT2LMHeadModel"],
        attn_pdrop: 0.1,
        bos_token_id: 36,
        embd_pdrop: 0.1,
        eos_token_id: 36,
        initializer_range: 0.02,
        layer_norm_epsilon: 1e-5,
        model_type: "gpt2",
        n_ctx: 16,
        n_embd: 16,
        n_head: 2,
        n_inner: null,
        n_layer: 2,
        n_positions: 16,
        reorder_and_upcast_attn: false,
        resid_pdrop: 0.1,
        scale_attn_by_inverse_layer_idx: false,
        scale_attn_weights: true,
        summary_activation: null,
        summary_first_dropout: 0.1,
        summary_proj_to_labels: true,
        summary_type: "cls_index",
        summary_use_proj: true,
        torch_dtype: "float16",
        transformers_version: "4.46.0",
        use_cache: true,
        vocab_size: 37,
      }),
    );
    const loaded = loadModel(dir);
    assert.equal(loaded.config.bias, true);
    // The same weights rounded to fp16 by hand give the same logits.
    for (const t of model.params.values()) t.data.set(decodeBack(t.data, "F16"));
    assert.deepEqual(logits(loaded), logits(model));
  });

  test("a Llama directory as Hugging Face writes it (bf16 weights)", () => {
    const model = initModel(llamaConfig, 6);
    const dir = tmp();
    const tensors: [string, number[], Float32Array][] = [...model.params].map(([n, t]) => [n, [...t.shape], t.data]);
    writeFileSync(join(dir, "model.safetensors"), safetensorsBytes(tensors, "BF16"));
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({
        architectures: ["LlamaForCausalLM"],
        attention_bias: false,
        attention_dropout: 0.0,
        bos_token_id: 1,
        eos_token_id: 2,
        hidden_act: "silu",
        hidden_size: 16,
        initializer_range: 0.02,
        intermediate_size: 32,
        max_position_embeddings: 16,
        mlp_bias: false,
        model_type: "llama",
        num_attention_heads: 4,
        num_hidden_layers: 2,
        num_key_value_heads: 2,
        pretraining_tp: 1,
        rms_norm_eps: 1e-6,
        rope_scaling: null,
        rope_theta: 10000.0,
        tie_word_embeddings: false,
        torch_dtype: "bfloat16",
        transformers_version: "4.46.0",
        use_cache: true,
        vocab_size: 37,
      }),
    );
    const loaded = loadModel(dir);
    for (const t of model.params.values()) t.data.set(decodeBack(t.data, "BF16"));
    assert.deepEqual(logits(loaded), logits(model));
  });

  test("half-precision decoding: normals, subnormals, signs, infinity", () => {
    const dir = tmp();
    const path = join(dir, "h.safetensors");
    const header = Buffer.from(JSON.stringify({ h: { dtype: "F16", shape: [6], data_offsets: [0, 12] } }));
    const buf = Buffer.alloc(8 + header.length + 12);
    buf.writeBigUInt64LE(BigInt(header.length));
    header.copy(buf, 8);
    [0x3c00, 0xc000, 0x3800, 0x0001, 0x7c00, 0x8000].forEach((h, i) => {
      buf.writeUInt16LE(h, 8 + header.length + 2 * i);
    });
    writeFileSync(path, buf);
    const data = readSafetensors(path).tensors.get("h")?.data as Float32Array;
    assert.deepEqual([...data], [1, -2, 0.5, 2 ** -24, Infinity, -0]);
  });

  test("broken directories give errors naming the file and the problem", () => {
    const model = initModel(gptConfig, 1);
    const dir = join(tmp(), "m");
    writeDirAtomic(dir, modelFiles(model));
    const path = join(dir, "model.safetensors");
    const good = readFileSync(path);

    writeFileSync(path, good.subarray(0, good.length - 10));
    assert.throws(() => loadModel(dir), /model\.safetensors: not a valid safetensors file: tensor .* byte range/);

    const tensors: [string, number[], Float32Array][] = [...model.params]
      .filter(([n]) => n !== "transformer.ln_f.weight")
      .map(([n, t]) => [n, [...t.shape], t.data]);
    writeFileSync(path, safetensorsBytes(tensors, "F32"));
    assert.throws(() => loadModel(dir), /tensor transformer\.ln_f\.weight is missing/);

    writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "bert", vocab_size: 3 }));
    assert.throws(() => loadModel(dir), /config\.json: model_type "bert" is not supported/);

    writeFileSync(join(dir, "config.json"), "{not json");
    assert.throws(() => loadModel(dir), /config\.json: invalid JSON/);
  });
  test("saved in bf16 when asked: half the size, weights rounded to bf16, config says so", () => {
    const model = initModel(llamaConfig, 4);
    const dir = join(tmp(), "bf16");
    writeDirAtomic(dir, modelFiles(model, "BF16"));
    const file = readSafetensors(join(dir, "model.safetensors"));
    assert.equal(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).torch_dtype, "bfloat16");
    const loaded = loadModel(dir);
    for (const [name, t] of model.params) {
      assert.deepEqual(loaded.params.get(name)?.data, decodeBack(t.data, "BF16"), name);
      assert.ok(file.tensors.has(name));
    }
    const f32Dir = join(tmp(), "f32");
    writeDirAtomic(f32Dir, modelFiles(model));
    const size = (d: string) => readFileSync(join(d, "model.safetensors")).length;
    assert.ok(size(dir) < 0.51 * size(f32Dir) + 4096, `bf16 file ${size(dir)} vs f32 ${size(f32Dir)}`);
  });
});
