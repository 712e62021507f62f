// The tokenizer of a run or a model directory, as the text codec the stages use.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TOOL_CALL_END, TOOL_CALL_START, type ToolCallMarkers } from "../agent/loop.ts";
import { PLAIN_CHAT_TEMPLATE } from "../infer/chat.ts";
import type { EngineTokenizer } from "../infer/engine.ts";
import { CHAR_TOKENIZER_FILE, CharTokenizer } from "../tokenizer/char.ts";
import { loadBpeTokenizer, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, tokenizerFiles } from "../tokenizer/files.ts";
import { CHAT_TEMPLATE } from "../tokenizer/huggingface.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { TextCodec } from "../train/pretrain.ts";

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
}

export function loadChatCodec(dir: string): ChatCodec {
  if (existsSync(join(dir, TOKENIZER_FILE))) {
    const tok = loadBpeTokenizer(dir);
    const configPath = join(dir, TOKENIZER_CONFIG_FILE);
    const config = existsSync(configPath)
      ? (JSON.parse(readFileSync(configPath, "utf8")) as { chat_template?: unknown })
      : {};
    const hasChatTokens = tok.specialTokens.has("<|user_start|>") && tok.specialTokens.has("<|assistant_start|>");
    const template =
      typeof config.chat_template === "string"
        ? config.chat_template
        : hasChatTokens
          ? CHAT_TEMPLATE
          : PLAIN_CHAT_TEMPLATE;
    const stops = ["<|endoftext|>", "<|assistant_end|>"].flatMap((t) =>
      tok.specialTokens.has(t) ? [tok.specialId(t)] : [],
    );
    const hasCalls = tok.specialTokens.has(TOOL_CALL_START) && tok.specialTokens.has(TOOL_CALL_END);
    return {
      encode: (text, parseSpecial) =>
        parseSpecial ? tok.encode(text, { allowedSpecial: "all" }) : tok.encodeOrdinary(text),
      // Answers never show markup: special tokens that are not stops decode to nothing.
      decode: (ids) => tok.decode(ids, true),
      decodeRaw: (ids) => tok.decode(ids),
      streamDecoder: () => tok.streamDecoder(true),
      vocabSize: tok.vocabSize,
      stopIds: new Set(stops),
      toolCallIds: hasCalls ? { start: tok.specialId(TOOL_CALL_START), end: tok.specialId(TOOL_CALL_END) } : null,
      chatTemplate: template,
    };
  }
  const codec = loadModelCodec(dir);
  return {
    encode: (text) => [...codec.encode(text)],
    decode: (ids) => codec.decode(ids),
    decodeRaw: (ids) => codec.decode(ids),
    streamDecoder: () => ({ push: (ids) => codec.decode(ids), flush: () => "" }),
    vocabSize: codec.vocabSize,
    stopIds: new Set(),
    toolCallIds: null,
    chatTemplate: PLAIN_CHAT_TEMPLATE,
  };
}

/** The tokenizer saved in a model directory: BPE (tokenizer.json) or character-level. */
export function loadModelCodec(dir: string): TextCodec {
  if (existsSync(join(dir, TOKENIZER_FILE))) return bpeCodec(loadBpeTokenizer(dir));
  const charPath = join(dir, CHAR_TOKENIZER_FILE);
  if (existsSync(charPath)) return charCodec(CharTokenizer.fromJSON(readFileSync(charPath, "utf8"), charPath));
  throw new Error(`${dir}: no tokenizer found (${TOKENIZER_FILE} or ${CHAR_TOKENIZER_FILE})`);
}
