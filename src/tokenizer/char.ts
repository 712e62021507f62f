// Character-level tokenizer (nanoGPT's shakespeare_char): the vocabulary is the sorted
// set of characters (Unicode code points) of the training text.

export const CHAR_TOKENIZER_FILE = "char_tokenizer.json";

export class CharTokenizer {
  private readonly ids = new Map<string, number>();

  constructor(readonly chars: string[]) {
    chars.forEach((c, i) => {
      this.ids.set(c, i);
    });
  }

  static fromText(text: string): CharTokenizer {
    return new CharTokenizer([...new Set(text)].sort());
  }

  static fromJSON(json: string, where: string): CharTokenizer {
    let parsed: { type?: unknown; chars?: unknown };
    try {
      parsed = JSON.parse(json);
    } catch {
      throw new Error(`${where}: invalid JSON`);
    }
    if (parsed.type !== "char" || !Array.isArray(parsed.chars) || !parsed.chars.every((c) => typeof c === "string")) {
      throw new Error(`${where}: not a character tokenizer (expected {"type": "char", "chars": [...]})`);
    }
    return new CharTokenizer(parsed.chars as string[]);
  }

  get vocabSize(): number {
    return this.chars.length;
  }

  encode(text: string, where = "text"): Int32Array {
    const out = new Int32Array(text.length);
    let n = 0;
    for (const ch of text) {
      const id = this.ids.get(ch);
      if (id === undefined)
        throw new Error(`${where}: character ${JSON.stringify(ch)} is not in the tokenizer's vocabulary`);
      out[n++] = id;
    }
    return out.subarray(0, n);
  }

  decode(ids: ArrayLike<number>): string {
    let s = "";
    for (let i = 0; i < ids.length; i++) s += this.chars[ids[i] as number] ?? "\uFFFD";
    return s;
  }

  toJSON(): string {
    return `${JSON.stringify({ type: "char", chars: this.chars })}\n`;
  }
}
