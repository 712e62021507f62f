// A tokenizer as the Hugging Face Hub ships it: tokenizer.json (added tokens, normalizer,
// pre-tokenizer, BPE model, post-processor, decoder) and tokenizer_config.json (bos/eos,
// add_bos_token, chat_template). Byte-level BPE (GPT-2, Llama 3, Qwen, SmolLM) and
// SentencePiece-style BPE (Llama 2, TinyLlama, Mistral: "▁" for spaces, byte fallback)
// encode to the ids the `tokenizers` library gives.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { parseJsonText } from "../io/json.ts";
import { BpeModel } from "./merges.ts";
import {
  byteCharsToBytes,
  type Decoder,
  decoderOf,
  type Normalizer,
  normalizerOf,
  type PreTokenizer,
  preTokenizerOf,
} from "./pretrained-steps.ts";

const utf8 = new TextEncoder();

const addedTokenSchema = z.object({
  id: z.number().int().min(0),
  content: z.string(),
  special: z.boolean().default(false),
  lstrip: z.boolean().default(false),
  rstrip: z.boolean().default(false),
});
type AddedToken = z.infer<typeof addedTokenSchema>;

const tokenizerJsonSchema = z.object({
  added_tokens: z.array(addedTokenSchema).default([]),
  normalizer: z.record(z.string(), z.unknown()).nullish(),
  pre_tokenizer: z.record(z.string(), z.unknown()).nullish(),
  post_processor: z.record(z.string(), z.unknown()).nullish(),
  decoder: z.record(z.string(), z.unknown()).nullish(),
  model: z.object({
    type: z.literal("BPE", { message: "only BPE models are supported (not WordPiece, Unigram or WordLevel)" }),
    vocab: z.record(z.string(), z.number().int().min(0)),
    merges: z.array(z.union([z.string(), z.tuple([z.string(), z.string()])])).default([]),
    unk_token: z.string().nullish(),
    byte_fallback: z.boolean().nullish(),
    fuse_unk: z.boolean().nullish(),
    ignore_merges: z.boolean().nullish(),
    continuing_subword_prefix: z.string().nullish(),
    end_of_word_suffix: z.string().nullish(),
  }),
});

/** A token in tokenizer_config.json: its text, or an AddedToken object. */
const tokenRef = z.union([z.string(), z.object({ content: z.string() }).transform((t) => t.content)]).nullish();

const configSchema = z.object({
  bos_token: tokenRef,
  eos_token: tokenRef,
  pad_token: tokenRef,
  add_bos_token: z.boolean().nullish(),
  chat_template: z.union([z.string(), z.array(z.object({ name: z.string(), template: z.string() }))]).nullish(),
  clean_up_tokenization_spaces: z.boolean().nullish(),
});

export type TokenizerConfig = z.infer<typeof configSchema>;

interface Wrap {
  before: number[];
  after: number[];
}

export interface PretrainedEncodeOptions {
  /** the post-processor's special tokens (Llama 2's <s>); off for rendered chats, which carry their own */
  addSpecialTokens?: boolean;
  /** added tokens written in the text are their ids (default); off, they are ordinary text */
  parseSpecial?: boolean;
}

export class PretrainedTokenizer {
  readonly vocabSize: number;
  /** added tokens marked special (control tokens), by text */
  readonly specialTokens = new Map<string, number>();
  readonly config: TokenizerConfig;
  private readonly tokens: string[] = [];
  private readonly added: AddedToken[];
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedByText = new Map<string, AddedToken>();
  private readonly addedRegex: RegExp | null;
  private readonly normalize: Normalizer;
  private readonly preTokenize: PreTokenizer;
  private readonly decoder: Decoder;
  private readonly model: BpeModel;
  /** ids the post-processor puts before and after a single sequence */
  private readonly wrap: Wrap;
  /** the vocabulary spells bytes with GPT-2's byte characters (a ByteLevel decoder) */
  private readonly byteLevel: boolean;
  /** decoding is the tokens' bytes in order, nothing else (a plain ByteLevel decoder, no clean-up) */
  private readonly bytesOnly: boolean;

  constructor(tokenizerJson: string, configJson: string | null, where: string) {
    const spec = parseJsonText(tokenizerJson, tokenizerJsonSchema, where, "not a BPE tokenizer.json");
    const configWhere = where.replace(/tokenizer\.json$/, "tokenizer_config.json");
    this.config = configJson ? parseJsonText(configJson, configSchema, configWhere, "not a tokenizer_config.json") : {};
    const m = spec.model;
    if (m.continuing_subword_prefix || m.end_of_word_suffix)
      throw new Error(`${where}: model.continuing_subword_prefix / end_of_word_suffix are not supported`);
    const vocab = new Map(Object.entries(m.vocab));
    for (const [text, id] of vocab) this.tokens[id] = text;
    this.added = spec.added_tokens;
    for (const t of this.added) {
      this.tokens[t.id] = t.content;
      this.addedById.set(t.id, t);
      this.addedByText.set(t.content, t);
      if (t.special) this.specialTokens.set(t.content, t.id);
    }
    this.vocabSize = this.tokens.length;
    const unk = m.unk_token ? vocab.get(m.unk_token) : undefined;
    this.model = new BpeModel(
      {
        vocab,
        merges: m.merges.map((x) => (typeof x === "string" ? splitMerge(x, where) : x)),
        byteFallback: m.byte_fallback === true,
        unkId: unk ?? null,
        fuseUnk: m.fuse_unk === true,
        ignoreMerges: m.ignore_merges === true,
      },
      where,
    );
    this.normalize = normalizerOf(spec.normalizer, `${where}: normalizer`);
    this.preTokenize = preTokenizerOf(spec.pre_tokenizer, `${where}: pre_tokenizer`);
    this.decoder = decoderOf(spec.decoder, `${where}: decoder`);
    this.byteLevel = JSON.stringify(spec.decoder ?? {}).includes('"ByteLevel"');
    this.bytesOnly = spec.decoder?.type === "ByteLevel" && !this.config.clean_up_tokenization_spaces;
    this.wrap = this.postProcessorWrap(spec.post_processor, where);
    const sorted = [...this.added].sort((a, b) => b.content.length - a.content.length);
    this.addedRegex =
      sorted.length > 0
        ? new RegExp(sorted.map((t) => t.content.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "gu")
        : null;
  }

  /** tokenizer.json (and tokenizer_config.json when present) of a directory. */
  static fromDirectory(dir: string): PretrainedTokenizer {
    const path = join(dir, "tokenizer.json");
    if (!existsSync(path)) throw new Error(`${dir}: tokenizer.json is missing`);
    const configPath = join(dir, "tokenizer_config.json");
    const config = existsSync(configPath) ? readFileSync(configPath, "utf8") : null;
    return new PretrainedTokenizer(readFileSync(path, "utf8"), config, path);
  }

  /** The id of an added token (special or not) by its text. */
  tokenId(text: string): number | undefined {
    return this.addedByText.get(text)?.id;
  }

  /** The text of a token as the vocabulary spells it (byte characters, "▁"), or undefined. */
  tokenText(id: number): string | undefined {
    return this.tokens[id];
  }

  /**
   * The bytes a token adds to the text (null for special tokens): byte characters mapped
   * back for byte-level vocabularies; "▁" as a space and <0xHH> as its byte for
   * SentencePiece-style ones.
   */
  tokenBytes(id: number): Uint8Array | null {
    const text = this.tokens[id];
    if (text === undefined || this.addedById.get(id)?.special) return null;
    if (this.addedById.has(id)) return utf8.encode(text);
    if (this.byteLevel) return byteCharsToBytes(text);
    const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(text);
    return byte ? Uint8Array.of(Number.parseInt(byte[1] as string, 16)) : utf8.encode(text.replaceAll("▁", " "));
  }

  encode(text: string, o: PretrainedEncodeOptions = {}): number[] {
    const out: number[] = [];
    if (o.addSpecialTokens) out.push(...this.wrap.before);
    if (o.parseSpecial === false || !this.addedRegex) this.encodeSegment(text, true, out);
    else this.encodeWithAdded(text, out);
    if (o.addSpecialTokens) out.push(...this.wrap.after);
    return out;
  }

  /** Splits at added tokens (stripping whitespace beside those that ask for it), then encodes the rest. */
  private encodeWithAdded(text: string, out: number[]): void {
    let last = 0;
    let stripNext = false;
    for (const m of text.matchAll(this.addedRegex as RegExp)) {
      const token = this.addedByText.get(m[0]) as AddedToken;
      let before = text.slice(last, m.index);
      if (stripNext) before = before.trimStart();
      if (token.lstrip) before = before.trimEnd();
      this.encodeSegment(before, last === 0, out);
      out.push(token.id);
      last = m.index + m[0].length;
      stripNext = token.rstrip;
    }
    let rest = text.slice(last);
    if (stripNext) rest = rest.trimStart();
    this.encodeSegment(rest, last === 0, out);
  }

  private encodeSegment(text: string, first: boolean, out: number[]): void {
    if (text.length === 0) return;
    for (const piece of this.preTokenize([this.normalize(text)], first)) {
      if (piece.length > 0) this.model.encodeWord(piece, out);
    }
  }

  decode(ids: ArrayLike<number>, o: { skipSpecial?: boolean } = {}): string {
    const tokens: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      const text = this.tokens[id];
      if (text === undefined) throw new Error(`token id ${id} is not in the vocabulary`);
      if (o.skipSpecial && this.addedById.get(id)?.special) continue;
      tokens.push(text);
    }
    const text = this.decoder(tokens).join("");
    return this.config.clean_up_tokenization_spaces ? cleanUpSpaces(text) : text;
  }

  /**
   * A decoder for a stream of ids that emits text as soon as it can no longer change.
   * Where decoding is just the tokens' bytes in order, each token costs its own bytes;
   * otherwise (SentencePiece's decoders strip, clean-up joins) the text so far is decoded
   * again and only a stable prefix is emitted: an incomplete character and a trailing
   * space that a later token may remove are held back.
   */
  streamDecoder(o: { skipSpecial?: boolean } = {}): { push(ids: ArrayLike<number>): string; flush(): string } {
    if (this.bytesOnly) {
      const decoder = new TextDecoder();
      return {
        push: (ids) => {
          let out = "";
          for (let i = 0; i < ids.length; i++) {
            const id = ids[i] as number;
            if (o.skipSpecial && this.addedById.get(id)?.special) continue;
            out += decoder.decode(this.tokenBytes(id) ?? utf8.encode(this.tokens[id] ?? ""), { stream: true });
          }
          return out;
        },
        flush: () => decoder.decode(),
      };
    }
    const all: number[] = [];
    let emitted = "";
    const emit = (text: string) => {
      if (!text.startsWith(emitted)) return "";
      const out = text.slice(emitted.length);
      emitted = text;
      return out;
    };
    return {
      push: (ids) => {
        for (let i = 0; i < ids.length; i++) all.push(ids[i] as number);
        return emit(
          this.decode(all, o)
            .replace(/\uFFFD+$/, "")
            .replace(/ +$/, ""),
        );
      },
      flush: () => emit(this.decode(all, o)),
    };
  }

  /** The ids the post-processor's `single` template puts around a sequence ($A). */
  private postProcessorWrap(step: Record<string, unknown> | null | undefined, where: string): Wrap {
    const none: Wrap = { before: [], after: [] };
    if (!step) return none;
    if (step.type === "Sequence") {
      const parts = ((step.processors as Record<string, unknown>[]) ?? []).map((s) => this.postProcessorWrap(s, where));
      return { before: parts.flatMap((p) => p.before), after: parts.flatMap((p) => p.after) };
    }
    if (step.type === "ByteLevel") return none;
    if (step.type !== "TemplateProcessing")
      throw new Error(`${where}: post_processor ${JSON.stringify(step.type)} is not supported`);
    const specials = (step.special_tokens ?? {}) as Record<string, { ids: number[] }>;
    const single = (step.single ?? []) as { SpecialToken?: { id: string }; Sequence?: unknown }[];
    const wrap: Wrap = { before: [], after: [] };
    let seen = false;
    for (const part of single) {
      if (part.Sequence) seen = true;
      else if (part.SpecialToken) {
        const ids = specials[part.SpecialToken.id]?.ids;
        if (!ids) throw new Error(`${where}: post_processor names ${part.SpecialToken.id}, which it does not define`);
        (seen ? wrap.after : wrap.before).push(...ids);
      }
    }
    return wrap;
  }
}

function splitMerge(merge: string, where: string): [string, string] {
  const at = merge.indexOf(" ", 1);
  if (at < 0) throw new Error(`${where}: merge ${JSON.stringify(merge)} is not two tokens`);
  return [merge.slice(0, at), merge.slice(at + 1)];
}

/** transformers' clean_up_tokenization: no space before punctuation and English contractions. */
function cleanUpSpaces(text: string): string {
  return text
    .replaceAll(" .", ".")
    .replaceAll(" ?", "?")
    .replaceAll(" !", "!")
    .replaceAll(" ,", ",")
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}
