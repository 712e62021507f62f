// A model on disk is a Hugging Face model directory: config.json (GPT2Config or
// LlamaConfig field names), model.safetensors (HF tensor names) and
// generation_config.json. Directories written by Hugging Face load too.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { readJsonFile } from "../io/json.ts";
import type { Parameters } from "../nn/parameters.ts";
import { Tensor } from "../tensor/index.ts";
import { architectureOf, fromHfConfig, toHfConfig } from "./architecture.ts";
import type { ModelConfig } from "./config.ts";
import { buildModel, emptyModel, type Model } from "./model.ts";
import { encodeSafetensors, type NamedTensor, readSafetensors, type SaveDtype } from "./safetensors.ts";
import { preprocessorConfig } from "./vision.ts";

export const CONFIG_FILE = "config.json";
export const WEIGHTS_FILE = "model.safetensors";
/** a vision model's image preprocessing, as Hugging Face's image processors read it */
export const PREPROCESSOR_FILE = "preprocessor_config.json";

/** The files of a model directory, ready for writeDirAtomic. */
export function modelFiles(model: Model, dtype: SaveDtype = "F32"): Record<string, Uint8Array | string> {
  const config = { ...toHfConfig(model.config), torch_dtype: dtype === "F32" ? "float32" : "bfloat16" };
  return {
    [CONFIG_FILE]: `${JSON.stringify(config, null, 2)}\n`,
    [WEIGHTS_FILE]: encodeSafetensors(exportTensors(model), { format: "pt" }, dtype),
    "generation_config.json": `${JSON.stringify({ _from_model_config: true }, null, 2)}\n`,
    ...(model.config.vision
      ? { [PREPROCESSOR_FILE]: `${JSON.stringify(preprocessorConfig(model.config.vision), null, 2)}\n` }
      : {}),
  };
}

/** Parameters under HF names, and what the architecture adds so other tools load them as is. */
function exportTensors(model: Model): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const [name, t] of model.params) out.set(name, { shape: [...t.shape], data: t.data });
  const extra = architectureOf(model.config).extraTensors?.(model.config, model.params);
  for (const [name, t] of extra ?? []) out.set(name, t);
  return out;
}

export function readModelConfig(dir: string): ModelConfig {
  const path = join(dir, CONFIG_FILE);
  if (!existsSync(path)) throw new Error(`${dir}: not a model directory (${CONFIG_FILE} is missing)`);
  return fromHfConfig(readJsonFile(path, z.unknown()), path);
}

const INDEX_FILE = "model.safetensors.index.json";

/**
 * Every tensor of a model directory, from model.safetensors or from the shards that
 * model.safetensors.index.json maps each tensor to; `where` names the file each came from.
 */
function readWeights(dir: string): { tensors: Map<string, NamedTensor>; where: Map<string, string> } {
  const single = join(dir, WEIGHTS_FILE);
  const indexPath = join(dir, INDEX_FILE);
  if (existsSync(single) || !existsSync(indexPath)) {
    if (!existsSync(single)) throw new Error(`${dir}: ${WEIGHTS_FILE} is missing (and there is no ${INDEX_FILE})`);
    const { tensors } = readSafetensors(single);
    return { tensors, where: new Map([...tensors.keys()].map((n) => [n, single])) };
  }
  const weightMap = readJsonFile(indexPath, indexSchema).weight_map;
  const tensors = new Map<string, NamedTensor>();
  const where = new Map<string, string>();
  for (const shard of new Set(Object.values(weightMap))) {
    const path = join(dir, shard);
    if (!existsSync(path)) throw new Error(`${indexPath}: weight_map names ${shard}, which is missing`);
    for (const [name, t] of readSafetensors(path).tensors) {
      tensors.set(name, t);
      where.set(name, path);
    }
  }
  for (const [name, shard] of Object.entries(weightMap)) {
    if (!tensors.has(name))
      throw new Error(`${indexPath}: weight_map puts ${name} in ${shard}, which does not hold it`);
  }
  return { tensors, where };
}

const indexSchema = z.object({ weight_map: z.record(z.string(), z.string()) });

export function loadModel(dir: string): Model {
  const config = readModelConfig(dir);
  const { tensors, where } = readWeights(dir);
  const arch = architectureOf(config);
  const namesOf = (name: string) => [name, ...(arch.aliases?.(name) ?? [])];
  const lookup = (name: string) =>
    namesOf(name)
      .map((n) => tensors.get(n))
      .find((t) => t !== undefined);
  const expected = emptyModel(config).params;
  const used = new Set<string>();
  const params: Parameters = new Map();
  for (const [name, t] of expected) {
    for (const n of namesOf(name)) used.add(n);
    const found = lookup(name);
    if (!found) throw new Error(`${dir}: tensor ${name} is missing from the weights`);
    if (found.shape.join(",") !== t.shape.join(",")) {
      throw new Error(
        `${where.get(namesOf(name).find((n) => tensors.has(n)) as string)}: tensor ${name} has shape [${found.shape}] but ${join(dir, CONFIG_FILE)} needs [${t.shape}]`,
      );
    }
    params.set(name, new Tensor(found.data, t.shape, true));
  }
  for (const name of tensors.keys()) {
    if (!used.has(name) && !arch.isIgnorable?.(name))
      throw new Error(`${where.get(name)}: unexpected tensor ${name} for a ${config.arch} model`);
  }
  return buildModel(config, params);
}
