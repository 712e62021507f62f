// A model on disk is a Hugging Face model directory: config.json (GPT2Config or
// LlamaConfig field names), model.safetensors (HF tensor names) and
// generation_config.json. Directories written by Hugging Face load too.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Parameters } from "../nn/parameters.ts";
import { Tensor } from "../tensor/index.ts";
import { fromHfConfig, type ModelConfig, toHfConfig } from "./config.ts";
import { buildModel, emptyModel, type Model } from "./model.ts";
import { encodeSafetensors, type NamedTensor, readSafetensors } from "./safetensors.ts";

export const CONFIG_FILE = "config.json";
export const WEIGHTS_FILE = "model.safetensors";

/** The files of a model directory, ready for writeDirAtomic. */
export function modelFiles(model: Model): Record<string, Uint8Array | string> {
  return {
    [CONFIG_FILE]: `${JSON.stringify(toHfConfig(model.config), null, 2)}\n`,
    [WEIGHTS_FILE]: encodeSafetensors(exportTensors(model), { format: "pt" }),
    "generation_config.json": `${JSON.stringify({ _from_model_config: true }, null, 2)}\n`,
  };
}

/** Parameters under HF names; a bias-free GPT-2 gets explicit zero biases so HF loads it as is. */
function exportTensors(model: Model): Map<string, NamedTensor> {
  const addZeroBias = model.config.arch === "gpt2" && !model.config.bias;
  const out = new Map<string, NamedTensor>();
  for (const [name, t] of model.params) {
    out.set(name, { shape: [...t.shape], data: t.data });
    if (addZeroBias && /\.(ln_1|ln_2|ln_f|c_attn|c_proj|c_fc)\.weight$/.test(name)) {
      const width = t.shape[t.shape.length - 1] as number;
      out.set(name.replace(/weight$/, "bias"), { shape: [width], data: new Float32Array(width) });
    }
  }
  return out;
}

export function readModelConfig(dir: string): ModelConfig {
  const path = join(dir, CONFIG_FILE);
  if (!existsSync(path)) throw new Error(`${dir}: not a model directory (${CONFIG_FILE} is missing)`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`${path}: invalid JSON (${(e as Error).message})`);
  }
  return fromHfConfig(json, path);
}

/** Buffers that HF GPT-2 checkpoints carry but that are not parameters (the causal mask). */
function isIgnorable(name: string): boolean {
  return /\.attn\.(bias|masked_bias)$/.test(name);
}

export function loadModel(dir: string): Model {
  const config = readModelConfig(dir);
  const path = join(dir, WEIGHTS_FILE);
  if (!existsSync(path)) throw new Error(`${dir}: ${WEIGHTS_FILE} is missing`);
  const { tensors } = readSafetensors(path);
  // Old GPT-2 checkpoints (GPT2Model) name tensors without the "transformer." prefix.
  const lookup = (name: string) => tensors.get(name) ?? tensors.get(name.replace(/^transformer\./, ""));
  const expected = emptyModel(config).params;
  const params: Parameters = new Map();
  for (const [name, t] of expected) {
    const found = lookup(name);
    if (!found) throw new Error(`${path}: tensor ${name} is missing`);
    if (found.shape.join(",") !== t.shape.join(",")) {
      throw new Error(`${path}: tensor ${name} has shape [${found.shape}] but the config needs [${t.shape}]`);
    }
    params.set(name, new Tensor(found.data, t.shape, true));
  }
  for (const name of tensors.keys()) {
    const known = expected.has(name) || expected.has(`transformer.${name}`) || isIgnorable(name);
    const dropped = name === "lm_head.weight" || name.endsWith(".bias");
    if (!known && !dropped) throw new Error(`${path}: unexpected tensor ${name} for a ${config.arch} model`);
  }
  return buildModel(config, params);
}
