// LoRA adapters in PEFT's format: adapter_config.json and adapter_model.safetensors with
// tensors named base_model.model.<module>.lora_A.weight / lora_B.weight.
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { Tensor } from "../tensor/index.ts";
import { architectureOf } from "./architecture.ts";
import { loadModel } from "./directory.ts";
import { type Adapters, mergeAdapter } from "./lora.ts";
import type { Model } from "./model.ts";
import { encodeSafetensors, type NamedTensor, readSafetensors } from "./safetensors.ts";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";

export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  /** module names the adapters sit on (suffixes, as PEFT's target_modules) */
  targets: string[];
  /** trained with A frozen (LoRA-FA) */
  fa: boolean;
}

const configSchema = z.object({
  peft_type: z.literal("LORA"),
  r: z.number().int().positive(),
  lora_alpha: z.number().positive(),
  lora_dropout: z.number().min(0).max(1).default(0),
  target_modules: z.array(z.string()),
  base_model_name_or_path: z.string(),
});

const moduleOf = (weight: string) => weight.replace(/\.weight$/, "");

export function adapterFiles(
  model: Model,
  lora: LoraConfig,
  baseModelPath: string,
): Record<string, Uint8Array | string> {
  const tensors = new Map<string, NamedTensor>();
  for (const [weight, a] of model.adapters) {
    tensors.set(`base_model.model.${moduleOf(weight)}.lora_A.weight`, { shape: [...a.A.shape], data: a.A.data });
    tensors.set(`base_model.model.${moduleOf(weight)}.lora_B.weight`, { shape: [...a.B.shape], data: a.B.data });
  }
  const config = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: baseModelPath,
    r: lora.r,
    lora_alpha: lora.alpha,
    lora_dropout: lora.dropout,
    target_modules: lora.targets,
    fan_in_fan_out: architectureOf(model.config).layout === "in-out", // GPT-2's Conv1D stores [in, out]
    bias: "none",
    inference_mode: true,
    modules_to_save: null,
    llmfab_lora_fa: lora.fa,
  };
  return {
    [ADAPTER_CONFIG]: `${JSON.stringify(config, null, 2)}\n`,
    [ADAPTER_WEIGHTS]: encodeSafetensors(tensors, { format: "pt" }),
  };
}

export function isAdapterDir(dir: string): boolean {
  return existsSync(join(dir, ADAPTER_CONFIG));
}

function readAdapterConfig(adapterDir: string): z.infer<typeof configSchema> {
  const configPath = join(adapterDir, ADAPTER_CONFIG);
  if (!existsSync(adapterDir)) throw new Error(`${adapterDir}: no such adapter directory`);
  if (!existsSync(configPath))
    throw new Error(
      existsSync(join(adapterDir, "config.json"))
        ? `${adapterDir}: a full model directory, not a LoRA adapter (no ${ADAPTER_CONFIG}); it needs no merging`
        : `${adapterDir}: not a LoRA adapter directory (no ${ADAPTER_CONFIG}); llmfab sft --mode lora writes one`,
    );
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(configPath, "utf8"));
  } catch (e) {
    throw new Error(`${configPath}: invalid JSON (${(e as Error).message})`);
  }
  const r = configSchema.safeParse(json);
  if (!r.success)
    throw new Error(
      `${configPath}: not a LoRA adapter config: ${r.error.issues[0]?.path.join(".")}: ${r.error.issues[0]?.message}`,
    );
  return r.data;
}

/** The base model directory an adapter names (relative paths are relative to the adapter). */
export function adapterBase(adapterDir: string): string {
  const base = readAdapterConfig(adapterDir).base_model_name_or_path;
  return isAbsolute(base) ? base : resolve(adapterDir, base);
}

/** The base model named by an adapter directory, with the adapters attached (not merged). */
export function loadWithAdapter(adapterDir: string, baseOverride?: string): Model {
  const c = readAdapterConfig(adapterDir);
  const basePath = baseOverride ?? adapterBase(adapterDir);
  const model = loadModel(basePath);
  const { tensors } = readSafetensors(join(adapterDir, ADAPTER_WEIGHTS));
  const adapters: Adapters = model.adapters;
  for (const [name, t] of tensors) {
    const m = /^base_model\.model\.(.+)\.lora_A\.weight$/.exec(name);
    if (!m) continue;
    const module = m[1] as string;
    const B = tensors.get(`base_model.model.${module}.lora_B.weight`);
    if (!B) throw new Error(`${adapterDir}: ${module} has lora_A but no lora_B`);
    const weight = model.params.get(`${module}.weight`);
    if (!weight)
      throw new Error(`${adapterDir}: adapter for ${module}, which the base model ${basePath} does not have`);
    adapters.set(`${module}.weight`, {
      A: new Tensor(t.data, t.shape, false),
      B: new Tensor(B.data, B.shape, false),
      scale: c.lora_alpha / c.r,
      dropout: c.lora_dropout,
    });
  }
  return model;
}

/** A model directory, or a LoRA adapter directory (its base with the adapters attached). */
export function loadAnyModel(dir: string): Model {
  return isAdapterDir(dir) ? loadWithAdapter(dir) : loadModel(dir);
}

/** Folds every attached adapter into the model's weights and detaches them; returns how many. */
export function mergeIntoBase(model: Model): number {
  const { layout } = architectureOf(model.config);
  for (const [name, adapter] of model.adapters) {
    const weight = model.params.get(name);
    if (!weight) throw new Error(`adapter for ${name}, which the model does not have`);
    mergeAdapter(weight, layout, adapter);
  }
  const count = model.adapters.size;
  model.adapters.clear();
  return count;
}
