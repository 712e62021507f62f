// The tokenizer of a run or a model directory, as the codecs the stages use: a text codec
// for training, and a chat codec (encoding, rendering conversations with the model's own
// template, stop tokens, streaming decode) for everything that talks.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { TOOL_CALL_END, TOOL_CALL_START, type ToolCallMarkers } from "../agent/loop.ts";
import {
  type ChatMessage,
  PLAIN_CHAT_TEMPLATE,
  renderChat,
  type TemplateTokens,
  type ToolSpec,
} from "../infer/chat.ts";
import type { EngineTokenizer } from "../infer/engine.ts";
import { readJsonFile } from "../io/json.ts";
import { CHAR_TOKENIZER_FILE, CharTokenizer } from "../tokenizer/char.ts";
import { TOKENIZER_FILE, tokenizerFiles } from "../tokenizer/files.ts";
import { CHAT_TEMPLATE } from "../tokenizer/huggingface.ts";
import { PretrainedTokenizer } from "../tokenizer/pretrained.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { TextCodec } from "../train/pretrain.ts";

const utf8 = new TextEncoder();

export function bpeCodec(tok: Tokenizer): TextCodec {
  return {
    vocabSize: tok.vocabSize,
    encode: (text) => Int32Array.from(tok.encodeOrdinary(text)),
    decode: (ids) => tok.decode(ids),
    files: () => tokenizerFiles(tok),
  };
}

export function charCodec(tok: CharTokenizer): TextCodec {
  return {
    vocabSize: tok.vocabSize,
    encode: (text) => tok.encode(text),
    decode: (ids) => tok.decode(ids),
    files: () => ({ [CHAR_TOKENIZER_FILE]: tok.toJSON() }),
  };
}

/** What inference needs of a tokenizer: prompts in, streamed text out, chat template, stop tokens. */
export interface ChatCodec extends EngineTokenizer {
  /** encodes a rendered chat (special tokens in it are parsed) or a plain prompt */
  encode(text: string, parseSpecial: boolean): number[];
  decode(ids: number[]): string;
  /** decodes with special tokens written out (to find tool calls in an answer) */
  decodeRaw(ids: number[]): string;
  /** the tokens around a tool call, where the vocabulary has them */
  toolCallIds: ToolCallMarkers | null;
  chatTemplate: string;
  /** A conversation as the model's template writes it (its bos/eos tokens filled in). */
  renderChat(messages: ChatMessage[], addGenerationPrompt?: boolean, tools?: ToolSpec[]): string;
}

const generationConfigSchema = z.object({ eos_token_id: z.union([z.number(), z.array(z.number())]).nullish() });

/** Stop ids a model directory's generation_config.json names (eos_token_id: one id or a list). */
function generationStops(dir: string): number[] {
  const path = join(dir, "generation_config.json");
  if (!existsSync(path)) return [];
  const eos = readJsonFile(path, generationConfigSchema).eos_token_id;
  return eos === null || eos === undefined ? [] : [eos].flat();
}

export function loadChatCodec(dir: string): ChatCodec {
  if (existsSync(join(dir, TOKENIZER_FILE))) return pretrainedChatCodec(dir);
  const codec = loadModelCodec(dir);
  return {
    encode: (text) => [...codec.encode(text)],
    decode: (ids) => codec.decode(ids),
    decodeRaw: (ids) => codec.decode(ids),
    streamDecoder: () => ({ push: (ids) => codec.decode(ids), flush: () => "" }),
    tokenBytes: (id) => utf8.encode(codec.decode([id])),
    vocabSize: codec.vocabSize,
    stopIds: new Set(),
    toolCallIds: null,
    chatTemplate: PLAIN_CHAT_TEMPLATE,
    renderChat: (messages, addGenerationPrompt, tools) =>
      renderChat(PLAIN_CHAT_TEMPLATE, messages, addGenerationPrompt, tools),
  };
}

/** The chat codec of a tokenizer.json directory: llmfab's own, or one from the Hub. */
function pretrainedChatCodec(dir: string): ChatCodec {
  const tok = PretrainedTokenizer.fromDirectory(dir);
  const config = tok.config;
  const has = (t: string) => tok.tokenId(t) !== undefined;
  const hasChatTokens = has("<|user_start|>") && has("<|assistant_start|>");
  const named = Array.isArray(config.chat_template)
    ? config.chat_template.find((t) => t.name === "default")?.template
    : config.chat_template;
  const template = named ? named : hasChatTokens ? CHAT_TEMPLATE : PLAIN_CHAT_TEMPLATE;
  const stopTexts = ["<|endoftext|>", "<|assistant_end|>", config.eos_token ?? ""];
  const stops = [...stopTexts.flatMap((t) => tok.tokenId(t) ?? []), ...generationStops(dir)];
  const specials: TemplateTokens = {
    ...(config.bos_token ? { bos_token: config.bos_token } : {}),
    ...(config.eos_token ? { eos_token: config.eos_token } : {}),
    ...(config.pad_token ? { pad_token: config.pad_token } : {}),
  };
  const markers = [tok.tokenId(TOOL_CALL_START), tok.tokenId(TOOL_CALL_END)];
  const decode = (ids: number[]) => tok.decode(ids, { skipSpecial: true });
  return {
    encode: (text, parseSpecial) => tok.encode(text, { parseSpecial }),
    // Answers never show markup: special tokens that are not stops decode to nothing.
    decode,
    decodeRaw: (ids) => tok.decode(ids),
    streamDecoder: () => tok.streamDecoder({ skipSpecial: true }),
    tokenBytes: (id) => tok.tokenBytes(id),
    vocabSize: tok.vocabSize,
    stopIds: new Set(stops),
    toolCallIds: markers[0] !== undefined && markers[1] !== undefined ? { start: markers[0], end: markers[1] } : null,
    chatTemplate: template,
    renderChat: (messages, addGenerationPrompt, tools) =>
      renderChat(template, messages, addGenerationPrompt, tools, specials),
  };
}

/** The text codec of a tokenizer.json directory (llmfab's or the Hub's): plain text, no special tokens. */
function pretrainedCodec(dir: string): TextCodec {
  const tok = PretrainedTokenizer.fromDirectory(dir);
  return {
    vocabSize: tok.vocabSize,
    encode: (text) => Int32Array.from(tok.encode(text, { parseSpecial: false })),
    decode: (ids) => tok.decode(ids),
    files: () => tokenizerFilesOf(dir),
  };
}

export const TOKENIZER_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "tokenizer.tiktoken",
  "char_tokenizer.json",
  // its stop tokens (eos_token_id) and sampling defaults
  "generation_config.json",
];

/** The tokenizer (and generation) files of a model directory, to carry into a derived one. */
export function tokenizerFilesOf(dir: string): Record<string, string> {
  return Object.fromEntries(
    TOKENIZER_FILES.filter((f) => existsSync(join(dir, f))).map((f) => [f, readFileSync(join(dir, f), "utf8")]),
  );
}

/** The tokenizer saved in a model directory: BPE (tokenizer.json) or character-level. */
export function loadModelCodec(dir: string): TextCodec {
  if (existsSync(join(dir, TOKENIZER_FILE))) return pretrainedCodec(dir);
  const charPath = join(dir, CHAR_TOKENIZER_FILE);
  if (existsSync(charPath)) return charCodec(CharTokenizer.fromJSON(readFileSync(charPath, "utf8"), charPath));
  throw new Error(`${dir}: no tokenizer found (${TOKENIZER_FILE} or ${CHAR_TOKENIZER_FILE})`);
}
