// The steps of a Hugging Face tokenizer.json pipeline, as the `tokenizers` library
// defines them: normalizers (text -> text), pre-tokenizers (pieces -> smaller pieces)
// and decoders (token strings -> text). Each is built from its JSON object; a type we do
// not implement is an error naming it and where it sits in the file.
import { bytesToUnicode } from "./bytes.ts";
import { compilePattern, PATTERN_SOURCES } from "./patterns.ts";

type Json = Record<string, unknown>;
export type Normalizer = (text: string) => string;
/** Splits each piece further; `first` is true for the text's first section (Metaspace's prepend_scheme "first"). */
export type PreTokenizer = (pieces: string[], first: boolean) => string[];
export type Decoder = (tokens: string[]) => string[];

const BYTE_CHARS = bytesToUnicode();
const CHAR_BYTES = new Map(BYTE_CHARS.map((c, b) => [c, b]));
const utf8 = new TextEncoder();

function fail(where: string, step: Json | null | undefined): never {
  throw new Error(`${where}: ${JSON.stringify(step?.type)} is not supported`);
}

/** A `pattern` field: {"String": literal} or {"Regex": source}, as a global regex. */
function patternOf(p: unknown, where: string): RegExp {
  const o = (p ?? {}) as { String?: string; Regex?: string };
  if (typeof o.String === "string") return new RegExp(o.String.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gu");
  if (typeof o.Regex === "string") return compilePattern(o.Regex);
  throw new Error(`${where}: pattern must be {"String": ...} or {"Regex": ...}`);
}

export function normalizerOf(step: Json | null | undefined, where: string): Normalizer {
  if (!step) return (s) => s;
  switch (step.type) {
    case "Sequence": {
      const steps = ((step.normalizers as Json[]) ?? []).map((s, i) => normalizerOf(s, `${where}.normalizers[${i}]`));
      return (s) => steps.reduce((acc, f) => f(acc), s);
    }
    case "NFC":
    case "NFD":
    case "NFKC":
    case "NFKD":
      return (s) => s.normalize(step.type as string);
    case "Lowercase":
      return (s) => s.toLowerCase();
    case "Prepend":
      return (s) => (s.length > 0 ? `${step.prepend}${s}` : s);
    case "Replace": {
      const re = patternOf(step.pattern, where);
      return (s) => s.replace(re, () => String(step.content));
    }
    case "Strip":
      return (s) => {
        let out = s;
        if (step.strip_left !== false) out = out.trimStart();
        if (step.strip_right !== false) out = out.trimEnd();
        return out;
      };
    default:
      return fail(`${where} normalizer`, step);
  }
}

/** Splits text at the matches of `re` as the Split pre-tokenizer's `behavior` says. */
function splitBy(text: string, re: RegExp, behavior: string, invert: boolean): string[] {
  const parts: string[] = [];
  const matched: boolean[] = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m[0].length === 0) continue;
    if (m.index > last) {
      parts.push(text.slice(last, m.index));
      matched.push(invert);
    }
    parts.push(m[0]);
    matched.push(!invert);
    last = m.index + m[0].length;
  }
  if (last < text.length) {
    parts.push(text.slice(last));
    matched.push(invert);
  }
  if (behavior === "Isolated") return parts;
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    const match = matched[i] as boolean;
    if (behavior === "Removed" && match) continue;
    // A part joins the one before it (which was pushed: only Removed drops parts).
    const prevMatch = matched[i - 1]; // undefined for the first part
    const joinsPrevious =
      (behavior === "MergedWithPrevious" && match && prevMatch === false) ||
      (behavior === "MergedWithNext" && !match && prevMatch === true) ||
      (behavior === "Contiguous" && prevMatch === match);
    if (joinsPrevious) out[out.length - 1] += part;
    else out.push(part);
  }
  return out;
}

/** The bytes a byte-level token stands for (its GPT-2 byte characters); other characters as UTF-8. */
export function byteCharsToBytes(token: string): Uint8Array {
  const bytes: number[] = [];
  for (const ch of token) {
    const b = CHAR_BYTES.get(ch);
    if (b !== undefined) bytes.push(b);
    else bytes.push(...utf8.encode(ch));
  }
  return Uint8Array.from(bytes);
}

/** Bytes of a piece spelled with GPT-2's printable byte characters. */
export function toByteChars(piece: string): string {
  let s = "";
  for (let i = 0; i < piece.length; i++) {
    const code = piece.charCodeAt(i);
    if (code > 127) return byteCharsOfUtf8(piece); // ASCII is its own UTF-8: no encoder, no allocation
    s += BYTE_CHARS[code];
  }
  return s;
}

function byteCharsOfUtf8(piece: string): string {
  let s = "";
  for (const b of utf8.encode(piece)) s += BYTE_CHARS[b];
  return s;
}

export function preTokenizerOf(step: Json | null | undefined, where: string): PreTokenizer {
  if (!step) return (pieces) => pieces;
  const each = (f: (piece: string, first: boolean) => string[]): PreTokenizer => {
    return (pieces, first) => pieces.flatMap((p, i) => f(p, first && i === 0));
  };
  switch (step.type) {
    case "Sequence": {
      const steps = ((step.pretokenizers as Json[]) ?? []).map((s, i) =>
        preTokenizerOf(s, `${where}.pretokenizers[${i}]`),
      );
      return (pieces, first) => steps.reduce((acc, f) => f(acc, first), pieces);
    }
    case "Split": {
      const re = patternOf(step.pattern, where);
      const behavior = String(step.behavior ?? "Isolated");
      if (!["Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous"].includes(behavior))
        throw new Error(`${where}: Split behavior ${JSON.stringify(behavior)} is not supported`);
      return each((p) => splitBy(p, re, behavior, step.invert === true));
    }
    case "ByteLevel": {
      const re = step.use_regex === false ? null : compilePattern(PATTERN_SOURCES.gpt2);
      return each((p) => {
        const text = step.add_prefix_space === true && !p.startsWith(" ") ? ` ${p}` : p;
        const parts = re ? splitBy(text, re, "Isolated", false) : [text];
        return parts.map(toByteChars);
      });
    }
    case "Digits": {
      const re = step.individual_digits === true ? /\p{N}/gu : /\p{N}+/gu;
      return each((p) => splitBy(p, re, "Isolated", false));
    }
    case "Metaspace": {
      const replacement = String(step.replacement ?? "▁");
      const scheme = String(step.prepend_scheme ?? (step.add_prefix_space === false ? "never" : "always"));
      const split = step.split !== false;
      const at = patternOf({ String: replacement }, where);
      return each((p, first) => {
        let text = p.replaceAll(" ", replacement);
        const prepend = scheme === "always" || (scheme === "first" && first);
        if (prepend && !text.startsWith(replacement)) text = replacement + text;
        return split ? splitBy(text, at, "MergedWithNext", false) : [text];
      });
    }
    default:
      return fail(`${where} pre-tokenizer`, step);
  }
}

/** Bytes from GPT-2 byte characters, decoded as UTF-8 (invalid bytes become U+FFFD); other characters stay. */
function fromByteChars(s: string): string {
  return new TextDecoder().decode(byteCharsToBytes(s));
}

export function decoderOf(step: Json | null | undefined, where: string): Decoder {
  if (!step) return (tokens) => tokens;
  switch (step.type) {
    case "Sequence": {
      const steps = ((step.decoders as Json[]) ?? []).map((s, i) => decoderOf(s, `${where}.decoders[${i}]`));
      return (tokens) => steps.reduce((acc, f) => f(acc), tokens);
    }
    case "ByteLevel":
      return (tokens) => [fromByteChars(tokens.join(""))];
    case "Replace": {
      const re = patternOf(step.pattern, where);
      return (tokens) => tokens.map((t) => t.replace(re, () => String(step.content)));
    }
    case "ByteFallback":
      return byteFallback;
    case "Fuse":
      return (tokens) => [tokens.join("")];
    case "Strip": {
      const content = String(step.content);
      const [start, stop] = [Number(step.start ?? 0), Number(step.stop ?? 0)];
      return (tokens) =>
        tokens.map((t) => {
          let s = t;
          for (let i = 0; i < start && s.startsWith(content); i++) s = s.slice(content.length);
          for (let i = 0; i < stop && s.endsWith(content); i++) s = s.slice(0, -content.length);
          return s;
        });
    }
    case "Metaspace": {
      const replacement = String(step.replacement ?? "▁");
      const scheme = String(step.prepend_scheme ?? (step.add_prefix_space === false ? "never" : "always"));
      return (tokens) =>
        tokens.map((t, i) => {
          const s = t.replaceAll(replacement, " ");
          return i === 0 && scheme !== "never" && s.startsWith(" ") ? s.slice(1) : s;
        });
    }
    default:
      return fail(`${where} decoder`, step);
  }
}

/** Runs of <0xHH> byte tokens become the text their bytes spell (U+FFFD for invalid UTF-8). */
function byteFallback(tokens: string[]): string[] {
  const out: string[] = [];
  let bytes: number[] = [];
  const flush = () => {
    if (bytes.length === 0) return;
    out.push(new TextDecoder().decode(Uint8Array.from(bytes)));
    bytes = [];
  };
  for (const t of tokens) {
    const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(t);
    if (m) bytes.push(Number.parseInt(m[1] as string, 16));
    else {
      flush();
      out.push(t);
    }
  }
  flush();
  return out;
}
