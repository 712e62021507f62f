// Hugging Face's tokenizer.json for byte-level BPE (what GPT-2, Llama 3 and others ship):
// a Split pre-tokenizer with our regex, then ByteLevel, a BPE model whose vocabulary
// spells bytes with GPT-2's printable byte map, merges, and the special tokens.
import { z } from "zod";
import type { Ranks } from "./bpe.ts";
import { bytesToUnicode } from "./bytes.ts";
import { PATTERN_SOURCES } from "./patterns.ts";
import { Tokenizer } from "./tokenizer.ts";

const byteChars = bytesToUnicode();
const charToByte = new Map(byteChars.map((c, b) => [c, b]));

function toVocabString(bin: string): string {
  let s = "";
  for (let i = 0; i < bin.length; i++) s += byteChars[bin.charCodeAt(i)];
  return s;
}

function fromVocabString(s: string, where: string): string {
  let bin = "";
  for (const ch of s) {
    const b = charToByte.get(ch);
    if (b === undefined)
      throw new Error(
        `${where}: vocabulary entry ${JSON.stringify(s)} is not byte-level (character ${JSON.stringify(ch)})`,
      );
    bin += String.fromCharCode(b);
  }
  return bin;
}

/**
 * Merges recovered from ranks (vocabularies imported from tiktoken): BPE on each token's
 * own bytes with only lower-ranked tokens allowed ends in exactly the two parts that
 * the token's merge joins.
 */
function mergesOf(tok: Tokenizer): [number, number][] {
  if (tok.merges) return tok.merges;
  const merges: [number, number, number][] = [];
  for (const [bin, rank] of tok.ranks) {
    if (bin.length < 2) continue;
    const parts = restrictedBpe(bin, tok.ranks, rank);
    if (parts.length !== 2) continue; // not reachable by merges (never produced by BPE)
    merges.push([tok.ranks.get(parts[0] as string) as number, tok.ranks.get(parts[1] as string) as number, rank]);
  }
  return merges.sort((x, y) => x[2] - y[2]).map(([a, b]) => [a, b]);
}

function restrictedBpe(bin: string, ranks: Ranks, maxRank: number): string[] {
  let parts = [...bin];
  for (;;) {
    let at = -1;
    let best = maxRank;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = ranks.get((parts[i] as string) + (parts[i + 1] as string));
      if (r !== undefined && r < best) {
        best = r;
        at = i;
      }
    }
    if (at < 0) return parts;
    parts = [...parts.slice(0, at), (parts[at] as string) + (parts[at + 1] as string), ...parts.slice(at + 2)];
  }
}

export function toTokenizerJson(tok: Tokenizer): string {
  const vocab: Record<string, number> = {};
  for (const [bin, id] of [...tok.ranks].sort((a, b) => a[1] - b[1])) vocab[toVocabString(bin)] = id;
  const spell = (id: number) => toVocabString(tok.tokenBytes(id) as string);
  const json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [...tok.specialTokens].map(([content, id]) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: tok.pattern }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: true,
      vocab,
      merges: mergesOf(tok).map(([a, b]) => [spell(a), spell(b)]),
    },
  };
  return `${JSON.stringify(json, null, 1)}\n`;
}

const tokenizerJsonSchema = z.object({
  added_tokens: z
    .array(z.object({ id: z.number().int().min(0), content: z.string(), special: z.boolean().optional() }))
    .default([]),
  pre_tokenizer: z.unknown().optional(),
  model: z.object({
    type: z.literal("BPE", { message: "only byte-level BPE models are supported" }),
    vocab: z.record(z.string(), z.number().int().min(0)),
    merges: z.array(z.union([z.string(), z.tuple([z.string(), z.string()])])).optional(),
  }),
});

/** The regex of a tokenizer.json pre-tokenizer: a Split pattern, or GPT-2's for ByteLevel with use_regex. */
function patternOf(pre: unknown, where: string): string {
  const steps =
    (pre as { type?: string; pretokenizers?: unknown[] })?.type === "Sequence"
      ? ((pre as { pretokenizers: unknown[] }).pretokenizers ?? [])
      : [pre];
  for (const step of steps as { type?: string; pattern?: { Regex?: string }; use_regex?: boolean }[]) {
    if (step?.type === "Split" && step.pattern?.Regex) return step.pattern.Regex;
    if (step?.type === "ByteLevel" && step.use_regex !== false) return PATTERN_SOURCES.gpt2;
  }
  throw new Error(`${where}: no byte-level pre-tokenizer (expected Split with a Regex, or ByteLevel)`);
}

export function parseTokenizerJson(text: string, where: string): Tokenizer {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: invalid JSON (${(e as Error).message})`);
  }
  const r = tokenizerJsonSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(
      `${where}: not a byte-level BPE tokenizer.json: ${issue?.path.join(".") || "(top level)"}: ${issue?.message}`,
    );
  }
  const ranks: Ranks = new Map();
  for (const [spelled, id] of Object.entries(r.data.model.vocab)) ranks.set(fromVocabString(spelled, where), id);
  const specialTokens = new Map(r.data.added_tokens.filter((t) => t.special !== false).map((t) => [t.content, t.id]));
  const merges = r.data.model.merges?.map((m) => {
    const [a, b] = typeof m === "string" ? (m.split(" ") as [string, string]) : m;
    const ia = ranks.get(fromVocabString(a, where));
    const ib = ranks.get(fromVocabString(b, where));
    if (ia === undefined || ib === undefined)
      throw new Error(`${where}: merge ${JSON.stringify(m)} names a token outside the vocabulary`);
    return [ia, ib] as [number, number];
  });
  try {
    return new Tokenizer({ pattern: patternOf(r.data.pre_tokenizer, where), ranks, specialTokens, merges });
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
}

/**
 * The chat template of llmfab's tokenizers (their chat special tokens), in Jinja as
 * Hugging Face's apply_chat_template expects it.
 */
export const CHAT_TEMPLATE =
  "<|bos|>" +
  // Tools are listed in the system turn (merged with the conversation's own system message).
  "{% if tools %}<|system_start|>{% if messages[0].role == 'system' %}{{ messages[0].content }}\n{% endif %}" +
  "You can call these tools: {{ tools | tojson }}<|system_end|>{% endif %}" +
  "{% for m in messages %}" +
  "{% if m.role == 'system' %}{% if not (tools and loop.first) %}<|system_start|>{{ m.content }}<|system_end|>{% endif %}" +
  "{% elif m.role == 'user' %}<|user_start|>{{ m.content }}<|user_end|>" +
  "{% elif m.role == 'assistant' %}<|assistant_start|>{{ m.content }}" +
  "{% if m.tool_calls %}{% for c in m.tool_calls %}<|tool_call_start|>" +
  "{{ {'name': c.function.name, 'arguments': c.function.arguments} | tojson }}<|tool_call_end|>{% endfor %}{% endif %}" +
  "<|assistant_end|>" +
  "{% elif m.role == 'tool' %}<|tool_result_start|>{{ m.content }}<|tool_result_end|>" +
  "{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant_start|>{% endif %}";

/** tokenizer_config.json: tells transformers' AutoTokenizer how to wrap tokenizer.json. */
export function toTokenizerConfigJson(tok: Tokenizer, modelMaxLength?: number): string {
  const has = (t: string) => tok.specialTokens.has(t);
  const config = {
    tokenizer_class: "PreTrainedTokenizerFast",
    bos_token: has("<|bos|>") ? "<|bos|>" : null,
    eos_token: has("<|endoftext|>") ? "<|endoftext|>" : null,
    pad_token: null,
    unk_token: null,
    clean_up_tokenization_spaces: false,
    model_max_length: modelMaxLength ?? 1_000_000_000,
    ...(has("<|user_start|>") && has("<|assistant_start|>") ? { chat_template: CHAT_TEMPLATE } : {}),
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}
