// Models to and from GGUF, as llama.cpp's converter writes them: tensor names and
// hyperparameter keys from each architecture's descriptor (its `gguf` layout), q/k rows
// permuted where llama.cpp rotates adjacent pairs, Llama 3.1's RoPE scaling as a
// rope_freqs tensor, and the byte-level BPE tokenizer (tokens, types, merges, the
// pre-tokenizer's name, special ids, chat template) in the metadata.
import { createHash } from "node:crypto";
import { existsSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { z } from "zod";
import { writeDirAtomic } from "../io/atomic.ts";
import { cacheDir } from "../io/cache.ts";
import { readJsonFile } from "../io/json.ts";
import { type Architecture, architectureOf, architectureOfGguf, fromHfConfig } from "../model/architecture.ts";
import { type ModelConfig, ropeFrequencies } from "../model/config.ts";
import { modelFiles } from "../model/directory.ts";
import { buildModel, emptyModel } from "../model/model.ts";
import { loadAnyModel, mergeIntoBase } from "../model/peft.ts";
import { Tensor } from "../tensor/index.ts";
import { PATTERN_SOURCES } from "../tokenizer/patterns.ts";
import { type GgmlTypeName, type GgufTensor, type GgufType, type GgufValue, readGguf, writeGguf } from "./gguf.ts";

const TYPE_OF: Record<GgufType, GgmlTypeName> = { f32: "F32", f16: "F16", bf16: "BF16", q8_0: "Q8_0" };
/** general.file_type (llama_ftype) of each */
const FILE_TYPE: Record<GgufType, number> = { f32: 0, f16: 1, q8_0: 7, bf16: 32 };

/** llama.cpp's token types */
const TOKEN = { NORMAL: 1, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5 } as const;

/** llama.cpp's names for the pre-tokenizer regexes llmfab's tokenizers and the Hub's byte-level ones use. */
const PRE_TOKENIZERS: Record<string, string> = {
  [PATTERN_SOURCES.gpt2]: "gpt-2",
  [PATTERN_SOURCES.gpt4]: "llama-bpe",
  [PATTERN_SOURCES["gpt4-digits"]]: "qwen2",
};

// ---- names ----

function compileNames(layout: Architecture["gguf"]): {
  toGguf(name: string): string | null;
  toHf(name: string): string | null;
} {
  const pattern = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace("\\{i\\}", "(\\d+)");
  const pairs = layout.tensors.map(([hf, gg]) => ({
    hf,
    gg,
    hfRe: new RegExp(`^${pattern(hf)}$`),
    ggRe: new RegExp(`^${pattern(gg)}$`),
  }));
  const map = (name: string, from: "hfRe" | "ggRe", to: "hf" | "gg") => {
    for (const p of pairs) {
      const m = p[from].exec(name);
      if (m) return p[to].replace("{i}", m[1] ?? "");
    }
    return null;
  };
  return { toGguf: (name) => map(name, "hfRe", "gg"), toHf: (name) => map(name, "ggRe", "hf") };
}

/**
 * llama.cpp's q/k row order: within each head, HF's halves [x0..x(d/2-1) | y0..] become
 * interleaved pairs (x0, y0, x1, y1, ...). inverse undoes it.
 */
function permuteRows(data: Float32Array, rows: number, cols: number, heads: number, inverse: boolean): Float32Array {
  const out = new Float32Array(data.length);
  const d = rows / heads;
  const half = d / 2;
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      for (let s = 0; s < 2; s++) {
        const hfRow = h * d + s * half + j; // HF: half s, position j
        const ggRow = h * d + 2 * j + s; // llama.cpp: pair j, element s
        const [from, to] = inverse ? [ggRow, hfRow] : [hfRow, ggRow];
        out.set(data.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c] as number;
  return out;
}

/** How many heads a q or k tensor holds (by its HF name), for the pair permutation. */
function headsOf(c: ModelConfig, name: string): number | null {
  if (/\.q_proj\.(weight|bias)$/.test(name)) return c.nHead;
  if (/\.k_proj\.(weight|bias)$/.test(name)) return c.nKvHead;
  return null;
}

// ---- tokenizer ----

const tokenizerJsonSchema = z.object({
  added_tokens: z
    .array(z.object({ id: z.number(), content: z.string(), special: z.boolean().default(false) }))
    .default([]),
  pre_tokenizer: z.unknown(),
  model: z.object({
    type: z.string(),
    vocab: z.record(z.string(), z.number()),
    merges: z.array(z.union([z.string(), z.tuple([z.string(), z.string()])])).default([]),
    byte_fallback: z.boolean().nullish(),
  }),
});

const tokenizerConfigSchema = z.object({
  bos_token: z.union([z.string(), z.object({ content: z.string() }).transform((t) => t.content)]).nullish(),
  eos_token: z.union([z.string(), z.object({ content: z.string() }).transform((t) => t.content)]).nullish(),
  add_bos_token: z.boolean().nullish(),
  chat_template: z.string().nullish(),
});

/** The regex of a byte-level pre-tokenizer (a Split with a Regex, or ByteLevel's own). */
function preTokenizerRegex(pre: unknown): string | null {
  const o = pre as { type?: string; pretokenizers?: unknown[]; pattern?: { Regex?: string }; use_regex?: boolean };
  if (o?.type === "Sequence") {
    for (const p of o.pretokenizers ?? []) {
      const r = preTokenizerRegex(p);
      if (r) return r;
    }
    return null;
  }
  if (o?.type === "Split") return o.pattern?.Regex ?? null;
  if (o?.type === "ByteLevel" && o.use_regex !== false) return PATTERN_SOURCES.gpt2;
  return null;
}

function tokenizerMetadata(dir: string, vocabSize: number): Map<string, GgufValue> {
  const path = join(dir, "tokenizer.json");
  if (!existsSync(path))
    throw new Error(`${dir}: GGUF export needs a BPE tokenizer.json (a character tokenizer has none)`);
  const tok = readJsonFile(path, tokenizerJsonSchema);
  if (tok.model.type !== "BPE" || tok.model.byte_fallback)
    throw new Error(`${path}: GGUF export supports byte-level BPE tokenizers (not SentencePiece-style ones yet)`);
  const regex = preTokenizerRegex(tok.pre_tokenizer);
  const pre = regex ? PRE_TOKENIZERS[regex] : undefined;
  if (!pre)
    throw new Error(`${path}: pre_tokenizer ${JSON.stringify(regex)} has no llama.cpp name (gpt-2, llama-bpe, qwen2)`);
  const tokens: string[] = Array.from({ length: vocabSize }, (_, i) => `[PAD${i}]`);
  const types: number[] = new Array(vocabSize).fill(TOKEN.UNUSED);
  for (const [text, id] of Object.entries(tok.model.vocab)) {
    if (id >= vocabSize) throw new Error(`${path}: token id ${id} is beyond the model's ${vocabSize} embeddings`);
    tokens[id] = text;
    types[id] = TOKEN.NORMAL;
  }
  const ids = new Map<string, number>();
  for (const t of tok.added_tokens) {
    if (t.id >= vocabSize) throw new Error(`${path}: token id ${t.id} is beyond the model's ${vocabSize} embeddings`);
    tokens[t.id] = t.content;
    types[t.id] = t.special ? TOKEN.CONTROL : TOKEN.USER_DEFINED;
    ids.set(t.content, t.id);
  }
  for (const [text, id] of Object.entries(tok.model.vocab)) if (!ids.has(text)) ids.set(text, id);
  const configPath = join(dir, "tokenizer_config.json");
  const config = existsSync(configPath) ? readJsonFile(configPath, tokenizerConfigSchema) : {};
  const meta = new Map<string, GgufValue>([
    ["tokenizer.ggml.model", { kind: "string", value: "gpt2" }],
    ["tokenizer.ggml.pre", { kind: "string", value: pre }],
    ["tokenizer.ggml.tokens", { kind: "strings", value: tokens }],
    ["tokenizer.ggml.token_type", { kind: "i32s", value: types }],
    [
      "tokenizer.ggml.merges",
      { kind: "strings", value: tok.model.merges.map((m) => (typeof m === "string" ? m : m.join(" "))) },
    ],
    ["tokenizer.ggml.add_bos_token", { kind: "bool", value: config.add_bos_token === true }],
  ]);
  const special = (key: string, text: string | null | undefined) => {
    const id = text ? ids.get(text) : undefined;
    if (id !== undefined) meta.set(key, { kind: "u32", value: id });
  };
  special("tokenizer.ggml.bos_token_id", config.bos_token ?? (ids.has("<|bos|>") ? "<|bos|>" : null));
  special("tokenizer.ggml.eos_token_id", config.eos_token ?? (ids.has("<|endoftext|>") ? "<|endoftext|>" : null));
  // llmfab's chat models end a turn with <|assistant_end|>: llama.cpp stops there too.
  special("tokenizer.ggml.eot_token_id", ids.has("<|assistant_end|>") ? "<|assistant_end|>" : null);
  const template = config.chat_template;
  if (template) meta.set("tokenizer.chat_template", { kind: "string", value: template });
  return meta;
}

// ---- export ----

export interface GgufExportResult {
  tensors: number;
  /** tensors kept in f16 because Q8_0 needs rows of a multiple of 32 */
  f16Fallbacks: string[];
  bytes: number;
}

/** Writes a model directory (or a LoRA adapter, merged first) as a GGUF file of the given type. */
export function exportGguf(modelDir: string, type: GgufType, out: string): GgufExportResult {
  const model = loadAnyModel(modelDir);
  mergeIntoBase(model);
  const c = model.config;
  if (c.vision)
    throw new Error(
      `${modelDir}: a vision model; GGUF export writes the language model only, and llama.cpp's image encoders take another file (mmproj) that llmfab does not write yet`,
    );
  const arch = architectureOf(c);
  const layout = arch.gguf;
  const names = compileNames(layout);
  const all = new Map<string, { shape: number[]; data: Float32Array }>(
    [...model.params].map(([n, t]) => [n, { shape: [...t.shape], data: t.data }]),
  );
  for (const [n, t] of arch.extraTensors?.(c, model.params) ?? []) all.set(n, t);
  const tensors: GgufTensor[] = [];
  const f16Fallbacks: string[] = [];
  for (const [name, t] of all) {
    const ggName = names.toGguf(name);
    if (!ggName) throw new Error(`GGUF export: ${c.arch} tensor ${name} has no llama.cpp name`);
    let { shape, data } = t;
    if (layout.transposed?.(name)) {
      data = transpose(data, shape[0] as number, shape[1] as number);
      shape = [shape[1] as number, shape[0] as number];
    }
    const heads = layout.permuteQK ? headsOf(c, name) : null;
    if (heads) data = permuteRows(data, shape[0] as number, shape.length > 1 ? (shape[1] as number) : 1, heads, false);
    let ggType: GgmlTypeName = shape.length < 2 ? "F32" : TYPE_OF[type];
    if (ggType === "Q8_0" && (shape[shape.length - 1] as number) % 32 !== 0) {
      ggType = "F16";
      f16Fallbacks.push(name);
    }
    tensors.push({ name: ggName, shape, type: ggType, data });
  }
  const base = Float32Array.from({ length: c.headDim / 2 }, (_, i) => 1 / c.ropeTheta ** ((2 * i) / c.headDim));
  if (c.ropeScaling && c.ropeScaling.type !== "linear") {
    const scaled = ropeFrequencies(c);
    tensors.push({
      name: "rope_freqs.weight",
      shape: [base.length],
      type: "F32",
      data: base.map((f, i) => f / (scaled[i] as number)),
    });
  }
  const meta = new Map<string, GgufValue>([
    ["general.architecture", { kind: "string", value: layout.arch }],
    ["general.name", { kind: "string", value: basename(resolve(modelDir)) }],
    ["general.file_type", { kind: "u32", value: FILE_TYPE[type] }],
    ...(type === "q8_0" ? ([["general.quantization_version", { kind: "u32", value: 2 }]] as const) : []),
  ]);
  for (const [key, v] of Object.entries(layout.metadata(c))) {
    meta.set(`${layout.arch}.${key}`, "u32" in v ? { kind: "u32", value: v.u32 } : { kind: "f32", value: v.f32 });
  }
  meta.set(`${layout.arch}.vocab_size`, { kind: "u32", value: c.vocabSize });
  for (const [k, v] of tokenizerMetadata(modelDir, c.vocabSize)) meta.set(k, v);
  if (existsSync(out)) throw new Error(`${out} already exists; choose another --out`);
  const partial = `${out}.partial`;
  try {
    writeGguf(partial, meta, tensors);
    renameSync(partial, out);
  } catch (e) {
    rmSync(partial, { force: true });
    throw e;
  }
  return { tensors: tensors.length, f16Fallbacks, bytes: statSync(out).size };
}

// ---- import ----

/** The tokenizer files of a GGUF's byte-level BPE vocabulary, in Hugging Face's format. */
function tokenizerFilesFromGguf(meta: Map<string, unknown>, where: string): Record<string, string> {
  const model = meta.get("tokenizer.ggml.model");
  if (model !== "gpt2")
    throw new Error(
      `${where}: tokenizer.ggml.model ${JSON.stringify(model)} is not supported (byte-level BPE, "gpt2", only)`,
    );
  const tokens = meta.get("tokenizer.ggml.tokens") as string[];
  const types = (meta.get("tokenizer.ggml.token_type") as number[] | undefined) ?? tokens.map(() => TOKEN.NORMAL);
  const pre = String(meta.get("tokenizer.ggml.pre") ?? "gpt-2");
  const regex = Object.entries(PRE_TOKENIZERS).find(([, name]) => name === pre)?.[0];
  if (!regex)
    throw new Error(`${where}: tokenizer.ggml.pre ${JSON.stringify(pre)} is not supported (gpt-2, llama-bpe, qwen2)`);
  const vocab: Record<string, number> = {};
  const added: { id: number; content: string; special: boolean }[] = [];
  tokens.forEach((t, id) => {
    const type = types[id];
    if (type === TOKEN.UNUSED) return;
    if (type === TOKEN.CONTROL || type === TOKEN.USER_DEFINED)
      added.push({ id, content: t, special: type === TOKEN.CONTROL });
    else vocab[t] = id;
  });
  const idOf = (key: string) => meta.get(key) as number | undefined;
  const textOf = (id: number | undefined) => (id === undefined ? null : (tokens[id] ?? null));
  const bos = idOf("tokenizer.ggml.bos_token_id");
  const addBos = meta.get("tokenizer.ggml.add_bos_token") === true && bos !== undefined;
  const tokenizer = {
    version: "1.0",
    added_tokens: added.map((t) => ({ ...t, single_word: false, lstrip: false, rstrip: false, normalized: false })),
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: addBos
      ? {
          type: "TemplateProcessing",
          single: [{ SpecialToken: { id: textOf(bos), type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
          pair: [],
          special_tokens: { [textOf(bos) as string]: { id: textOf(bos), ids: [bos], tokens: [textOf(bos)] } },
        }
      : null,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      vocab,
      merges: (meta.get("tokenizer.ggml.merges") as string[] | undefined) ?? [],
      ignore_merges: false,
    },
  };
  const eos = idOf("tokenizer.ggml.eos_token_id");
  const eot = idOf("tokenizer.ggml.eot_token_id");
  const config = {
    tokenizer_class: "PreTrainedTokenizerFast",
    bos_token: textOf(bos),
    eos_token: textOf(eos),
    add_bos_token: addBos,
    ...(typeof meta.get("tokenizer.chat_template") === "string"
      ? { chat_template: meta.get("tokenizer.chat_template") }
      : {}),
  };
  const stops = [eos, eot].filter((x): x is number => x !== undefined);
  return {
    "tokenizer.json": `${JSON.stringify(tokenizer)}\n`,
    "tokenizer_config.json": `${JSON.stringify(config, null, 2)}\n`,
    "generation_config.json": `${JSON.stringify({ ...(bos !== undefined ? { bos_token_id: bos } : {}), ...(stops.length ? { eos_token_id: stops } : {}) }, null, 2)}\n`,
  };
}

/** Reads a GGUF file into a Hugging Face model directory at `outDir` (weights dequantized to fp32). */
export function importGguf(path: string, outDir: string): void {
  const { metadata, tensors } = readGguf(path);
  const archName = metadata.get("general.architecture");
  if (typeof archName !== "string") throw new Error(`${path}: general.architecture is missing`);
  const arch = architectureOfGguf(archName, path);
  const layout = arch.gguf;
  const embd = tensors.get("token_embd.weight");
  if (!embd) throw new Error(`${path}: tensor token_embd.weight is missing`);
  const hfConfig = layout.toHfConfig(
    (key) => metadata.get(`${archName}.${key}`),
    embd.shape[0] as number,
    !tensors.has("output.weight"),
  );
  const config = fromHfConfig(hfConfig, `${path} (metadata)`);
  const ropeFreqs = tensors.get("rope_freqs.weight");
  if (ropeFreqs) config.ropeScaling = { type: "factors", factors: [...ropeFreqs.data] };
  const names = compileNames(layout);
  const params = new Map<string, Tensor>();
  for (const [ggName, t] of tensors) {
    if (ggName === "rope_freqs.weight") continue;
    const name = names.toHf(ggName);
    if (!name) throw new Error(`${path}: tensor ${ggName} is not part of a ${archName} model`);
    let { shape, data } = t;
    const heads = layout.permuteQK ? headsOf(config, name) : null;
    if (heads) data = permuteRows(data, shape[0] as number, shape.length > 1 ? (shape[1] as number) : 1, heads, true);
    if (layout.transposed?.(name)) {
      data = transpose(data, shape[0] as number, shape[1] as number);
      shape = [shape[1] as number, shape[0] as number];
    }
    params.set(name, new Tensor(data, shape, true));
  }
  for (const [name, t] of emptyModel(config).params) {
    const found = params.get(name);
    if (!found) throw new Error(`${path}: tensor ${names.toGguf(name) ?? name} is missing`);
    if (found.shape.join(",") !== t.shape.join(","))
      throw new Error(
        `${path}: tensor ${names.toGguf(name)} has shape [${found.shape}] but the metadata needs [${t.shape}]`,
      );
  }
  const model = buildModel(config, params);
  writeDirAtomic(outDir, { ...modelFiles(model), ...tokenizerFilesFromGguf(metadata, path) });
}

/** The model directory a .gguf file is read into (once; later runs reuse it), under llmfab's cache. */
export function ggufModelDir(path: string): string {
  const stat = statSync(path);
  const key = createHash("sha1")
    .update(`${resolve(path)}\0${stat.size}\0${stat.mtimeMs}`)
    .digest("hex")
    .slice(0, 16);
  const cache = join(cacheDir(), "gguf");
  const dir = join(cache, `${basename(path, ".gguf")}-${key}`);
  if (!existsSync(join(dir, "config.json"))) importGguf(path, dir);
  return dir;
}

export function isGgufFile(path: string): boolean {
  return path.endsWith(".gguf") && existsSync(path) && statSync(path).isFile();
}
