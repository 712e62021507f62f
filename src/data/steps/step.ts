// What a cleaning step is. A document step looks at one document and keeps it (perhaps
// rewriting its text) or removes it with a reason; it runs on any worker thread. A dedup
// step only computes a fingerprint on the worker; whether the document was seen before
// is decided in input order on the main thread, so the output never depends on threads.
import { createHash } from "node:crypto";
import { type Tokens, tokenize } from "./text.ts";

export type Meta = Record<string, string | number>;

export class Doc {
  private current: string;
  private cachedTokens: Tokens | null = null;
  private cachedLines: string[] | null = null;
  private cachedParagraphs: string[] | null = null;
  private cachedHash: Uint32Array | null = null;

  constructor(
    text: string,
    /** "html" for pages still to be extracted, "text" otherwise */
    public format: "text" | "html",
    public readonly meta: Meta,
  ) {
    this.current = text;
  }

  get text(): string {
    return this.current;
  }

  set text(value: string) {
    if (value === this.current) return;
    this.current = value;
    this.cachedTokens = null;
    this.cachedLines = null;
    this.cachedParagraphs = null;
    this.cachedHash = null;
  }

  /** Word and punctuation tokens of the current text (computed once per text). */
  tokens(): Tokens {
    this.cachedTokens ??= tokenize(this.current);
    return this.cachedTokens;
  }

  /** 64 bits of the current text's SHA-1 (exact dedup and the train/val split share it). */
  contentHash(): Uint32Array {
    if (!this.cachedHash) {
      const digest = createHash("sha1").update(this.current).digest();
      this.cachedHash = Uint32Array.of(digest.readUInt32LE(0), digest.readUInt32LE(4));
    }
    return this.cachedHash;
  }

  /**
   * The lines that hold text, trailing whitespace trimmed: blank lines (paragraph breaks)
   * are layout, not lines, as in datatrove, which splits lines on runs of newlines. Any of
   * \n, \r\n and \r ends a line, so the same text reads the same in any layout.
   */
  lines(): string[] {
    this.cachedLines ??= this.current
      .split(/\r\n|\r|\n/)
      .map((line) => line.trimEnd())
      .filter((line) => line.trim() !== "");
    return this.cachedLines;
  }

  /** Paragraphs: text between blank (or whitespace-only) lines, as datatrove splits on \n{2,}. */
  paragraphs(): string[] {
    this.cachedParagraphs ??= this.current
      .split(/(?:\r\n|\r|\n)(?:[ \t]*(?:\r\n|\r|\n))+/)
      .map((p) => p.trim())
      .filter((p) => p !== "");
    if (this.cachedParagraphs.length === 0) this.cachedParagraphs = [""];
    return this.cachedParagraphs;
  }

  /** Line breaks in the text (\r\n counts once). */
  lineBreaks(): number {
    return this.current.match(/\r\n|\r|\n/g)?.length ?? 0;
  }
}

export type Verdict = { keep: true } | { keep: false; reason: string };

export const KEEP: Verdict = { keep: true };
export const remove = (reason: string): Verdict => ({ keep: false, reason });

export interface DocumentStep {
  kind: "document";
  name: string;
  /** loads what the step needs (a model) before the first document */
  init?(): Promise<void>;
  run(doc: Doc): Verdict;
}

export interface DedupStep {
  kind: "dedup";
  name: string;
  /** keys that identify the document: it is a duplicate if any key was seen before */
  fingerprint(doc: Doc): Uint32Array;
}

export type Step = DocumentStep | DedupStep;
