// Constrained decoding: at each step only tokens that keep the output a valid prefix of a
// JSON value matching the schema may be sampled. The schema (json-schema.ts) drives a
// byte-level automaton whose state is a small stack of frames (one per open object,
// array, string, number or literal); the tokens allowed from a state are found by walking
// a trie of the vocabulary's token bytes, pruning as soon as the automaton rejects a byte,
// and are cached per state, so a state seen before costs a map lookup. Under anyOf the
// state holds every reading still possible. Outside strings the only whitespace is an
// optional space after ":" and "," (json.dumps' style); properties come in the schema's order.
import { compileSchema, type SchemaNode } from "./json-schema.ts";

type Phase = "first" | "key" | "colon" | "after" | "comma";

type Frame =
  | { t: "value"; node: SchemaNode }
  /** an optional space (after ":" and ",", as Python's json.dumps writes them) */
  | { t: "ws" }
  | { t: "obj"; node: Extract<SchemaNode, { kind: "object" }>; pos: number; phase: Phase; cands: number[]; off: number }
  | { t: "aobj"; phase: Phase }
  | { t: "arr"; items: SchemaNode; phase: Phase }
  /**
   * a string: `esc` counts down an escape's bytes, `cont` a UTF-8 character's continuation
   * bytes (the next one in lo..hi); `left` characters may still come (null: any), `need` must
   */
  | { t: "str"; esc: number; cont: number; lo: number; hi: number; left: number | null; need: number }
  | { t: "lit"; values: readonly string[]; off: number }
  | { t: "num"; integer: boolean; st: number; len: number };

/** One reading of the output so far: the open frames, innermost last; empty when the value is complete. */
type Stack = readonly Frame[];
/** Every reading still possible (more than one only under anyOf). */
type State = readonly Stack[];

const MAX_DEPTH = 16;
const MAX_NUMBER_LENGTH = 24;
const WORDS = ["true", "false", "null"] as const;
const BOOLEANS = ["true", "false"];
const NULL = ["null"];
const WS: Frame = { t: "ws" };
const ANY_STRING: Extract<Frame, { t: "str" }> = { t: "str", esc: 0, cont: 0, lo: 0x80, hi: 0xbf, left: null, need: 0 };
/**
 * String lengths this far from a bound all allow the same tokens (no token is this long),
 * so states differing only beyond it share one cached mask.
 */
const LENGTH_HORIZON = 256;
const horizon = (n: number) => Math.min(n, LENGTH_HORIZON);

/**
 * What a UTF-8 character starting with byte b needs next: its continuation bytes and the
 * range of the first (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF);
 * null when b cannot start one.
 */
function utf8Lead(b: number): { cont: number; lo: number; hi: number } | null {
  if (b < 0x80) return { cont: 0, lo: 0x80, hi: 0xbf };
  if (b >= 0xc2 && b <= 0xdf) return { cont: 1, lo: 0x80, hi: 0xbf };
  if (b >= 0xe0 && b <= 0xef) return { cont: 2, lo: b === 0xe0 ? 0xa0 : 0x80, hi: b === 0xed ? 0x9f : 0xbf };
  if (b >= 0xf0 && b <= 0xf4) return { cont: 3, lo: b === 0xf0 ? 0x90 : 0x80, hi: b === 0xf4 ? 0x8f : 0xbf };
  return null;
}

const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isHex = (b: number) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
const ESCAPES = new Set([...'"\\/bfnrt'].map((c) => c.charCodeAt(0)));
const latin1 = (s: string) => Buffer.from(s, "utf8").toString("latin1");

/** Property indices a key may name next: from pos on, without skipping a required one. */
function nextKeys(node: Extract<SchemaNode, { kind: "object" }>, pos: number): number[] {
  const out: number[] = [];
  for (let j = pos; j < node.properties.length; j++) {
    out.push(j);
    if (node.properties[j]?.required) break;
  }
  return out;
}

function mayClose(node: Extract<SchemaNode, { kind: "object" }>, pos: number): boolean {
  return node.properties.slice(pos).every((p) => !p.required);
}

/** The key bytes still to match after the opening quote: the JSON-escaped key and its closing quote. */
const keyTail = new WeakMap<object, string[]>();
function keyTails(node: Extract<SchemaNode, { kind: "object" }>): string[] {
  let tails = keyTail.get(node);
  if (!tails) {
    tails = node.properties.map((p) => latin1(JSON.stringify(p.key)).slice(1));
    keyTail.set(node, tails);
  }
  return tails;
}

const literalBytes = new WeakMap<object, string[]>();
function literalsOf(node: Extract<SchemaNode, { kind: "literals" }>): string[] {
  let values = literalBytes.get(node);
  if (!values) {
    values = node.values.map(latin1);
    literalBytes.set(node, values);
  }
  return values;
}

function replaceTop(s: Stack, f: Frame): Stack {
  return [...s.slice(0, -1), f];
}

/** A value's first byte, with the frame it opens pushed: every reading that starts so. */
function startValue(below: Stack, node: SchemaNode, b: number): Stack[] {
  if (below.length >= MAX_DEPTH) return [];
  const c = String.fromCharCode(b);
  switch (node.kind) {
    case "anyOf":
      return node.options.flatMap((o) => startValue(below, o, b));
    case "object":
      return c === "{" ? [[...below, { t: "obj", node, pos: 0, phase: "first", cands: [], off: 0 }]] : [];
    case "anyObject":
      return c === "{" ? [[...below, { t: "aobj", phase: "first" }]] : [];
    case "array":
      return c === "[" ? [[...below, { t: "arr", items: node.items, phase: "first" }]] : [];
    case "string":
      return c === '"' ? [[...below, { ...ANY_STRING, left: node.maxLength, need: node.minLength }]] : [];
    case "number":
      return c === "-" || isDigit(b) ? step([...below, { t: "num", integer: node.integer, st: 0, len: 0 }], b) : [];
    case "boolean":
      return step([...below, { t: "lit", values: BOOLEANS, off: 0 }], b);
    case "null":
      return step([...below, { t: "lit", values: NULL, off: 0 }], b);
    case "literals":
      return step([...below, { t: "lit", values: literalsOf(node), off: 0 }], b);
    case "any":
      if (c === "{") return [[...below, { t: "aobj", phase: "first" }]];
      if (c === "[") return [[...below, { t: "arr", items: node, phase: "first" }]];
      if (c === '"') return [[...below, ANY_STRING]];
      if (c === "-" || isDigit(b)) return step([...below, { t: "num", integer: false, st: 0, len: 0 }], b);
      return step([...below, { t: "lit", values: WORDS, off: 0 }], b);
  }
}

/** Whether a number in DFA state st is complete as it stands. */
const NUMBER_ACCEPTS = new Set([2, 3, 5, 8]);

function stepNumber(f: Extract<Frame, { t: "num" }>, b: number): number | null {
  const c = String.fromCharCode(b);
  const frac = !f.integer && (c === "." || c === "e" || c === "E");
  switch (f.st) {
    case 0:
      return c === "-" ? 1 : c === "0" ? 2 : isDigit(b) ? 3 : null;
    case 1:
      return c === "0" ? 2 : isDigit(b) ? 3 : null;
    case 2:
    case 3:
      if (f.st === 3 && isDigit(b)) return 3;
      return frac ? (c === "." ? 4 : 6) : null;
    case 4:
    case 5:
      if (isDigit(b)) return 5;
      return f.st === 5 && (c === "e" || c === "E") ? 6 : null;
    case 6:
      return c === "+" || c === "-" ? 7 : isDigit(b) ? 8 : null;
    default:
      return isDigit(b) ? 8 : null;
  }
}

/** The readings after one more byte (none when the byte cannot come next). */
export function step(s: Stack, b: number): Stack[] {
  const f = s[s.length - 1];
  if (!f) return []; // the value is complete: nothing may follow
  const below = s.slice(0, -1);
  const c = String.fromCharCode(b);
  switch (f.t) {
    case "value":
      return startValue(below, f.node, b);
    case "ws":
      return c === " " ? [below] : step(below, b);
    case "str":
      if (f.cont > 0)
        return b >= f.lo && b <= f.hi ? [replaceTop(s, { ...f, cont: f.cont - 1, lo: 0x80, hi: 0xbf })] : [];
      if (f.esc === 0) {
        if (c === '"') return f.need === 0 ? [below] : [];
        // A character: an ASCII byte, an escape, or a UTF-8 lead byte and its continuation bytes.
        const lead = utf8Lead(b);
        if (b < 0x20 || !lead || f.left === 0) return [];
        const counted = { ...f, ...lead, left: f.left === null ? null : f.left - 1, need: Math.max(0, f.need - 1) };
        return [replaceTop(s, c === "\\" ? { ...counted, esc: 1 } : counted)];
      }
      if (f.esc === 1) {
        if (c === "u") return [replaceTop(s, { ...f, esc: 5 })];
        return ESCAPES.has(b) ? [replaceTop(s, { ...f, esc: 0 })] : [];
      }
      return isHex(b) ? [replaceTop(s, { ...f, esc: f.esc === 2 ? 0 : f.esc - 1 })] : [];
    case "lit": {
      const values = f.values.filter((v) => v.charCodeAt(f.off) === b);
      if (values.length > 0) {
        const done = values.length === 1 && values[0]?.length === f.off + 1;
        return [done ? below : replaceTop(s, { t: "lit", values, off: f.off + 1 })];
      }
      // A complete literal that another one extends (enum 1 and 12): the byte belongs to what follows.
      return f.values.some((v) => v.length === f.off) ? step(below, b) : [];
    }
    case "num": {
      const st = f.len < MAX_NUMBER_LENGTH ? stepNumber(f, b) : null;
      if (st !== null) return [replaceTop(s, { ...f, st, len: f.len + 1 })];
      return NUMBER_ACCEPTS.has(f.st) ? step(below, b) : [];
    }
    case "arr":
      if (f.phase === "first" && c === "]") return [below];
      if (f.phase === "after") {
        if (c === "]") return [below];
        return c === "," ? [[...replaceTop(s, { ...f, phase: "comma" }), WS]] : [];
      }
      return startValue(replaceTop(s, { ...f, phase: "after" }), f.items, b);
    case "aobj":
      switch (f.phase) {
        case "first":
        case "comma":
          if (f.phase === "first" && c === "}") return [below];
          return c === '"' ? [[...replaceTop(s, { t: "aobj", phase: "colon" }), ANY_STRING]] : [];
        case "colon":
          return c === ":"
            ? [[...replaceTop(s, { t: "aobj", phase: "after" }), { t: "value", node: { kind: "any" } }, WS]]
            : [];
        default:
          if (c === "}") return [below];
          return c === "," ? [[...replaceTop(s, { t: "aobj", phase: "comma" }), WS]] : [];
      }
    case "obj":
      return stepObject(s, below, f, b);
  }
}

function stepObject(s: Stack, below: Stack, f: Extract<Frame, { t: "obj" }>, b: number): Stack[] {
  const c = String.fromCharCode(b);
  switch (f.phase) {
    case "first":
    case "comma": {
      if (f.phase === "first" && c === "}") return mayClose(f.node, f.pos) ? [below] : [];
      const cands = nextKeys(f.node, f.pos);
      return c === '"' && cands.length > 0 ? [replaceTop(s, { ...f, phase: "key", cands, off: 0 })] : [];
    }
    case "key": {
      const tails = keyTails(f.node);
      const cands = f.cands.filter((j) => tails[j]?.charCodeAt(f.off) === b);
      if (cands.length === 0) return [];
      const j = cands[0] as number;
      if (cands.length === 1 && tails[j]?.length === f.off + 1)
        return [replaceTop(s, { ...f, phase: "colon", pos: j, cands: [] })];
      return [replaceTop(s, { ...f, cands, off: f.off + 1 })];
    }
    case "colon": {
      if (c !== ":") return [];
      const node = f.node.properties[f.pos]?.node as SchemaNode;
      return [[...replaceTop(s, { ...f, phase: "after", pos: f.pos + 1 }), { t: "value", node }, WS]];
    }
    default:
      if (c === "}") return mayClose(f.node, f.pos) ? [below] : [];
      return c === "," && nextKeys(f.node, f.pos).length > 0 ? [[...replaceTop(s, { ...f, phase: "comma" }), WS]] : [];
  }
}

/** One reading may end here: complete, or a top-level number or literal that could also go on. */
function stackCanEnd(s: Stack): boolean {
  if (s.length === 0) return true;
  if (s.length !== 1) return false;
  const f = s[0] as Frame;
  return (f.t === "num" && NUMBER_ACCEPTS.has(f.st)) || (f.t === "lit" && f.values.some((v) => v.length === f.off));
}

/** The readings after a byte, each once. */
function stepState(state: State, b: number): State {
  const out = new Map<string, Stack>();
  for (const s of state) for (const next of step(s, b)) out.set(stackKey(next), next);
  return [...out.values()];
}

// ---- the vocabulary side ----

interface TrieNode {
  children: Map<number, TrieNode>;
  ids: number[];
}

/** A tokenizer's tokens as bytes, in a trie (built once per vocabulary). */
export class TokenTrie {
  readonly root: TrieNode = { children: new Map(), ids: [] };

  /** bytes(id): the bytes a token adds to the text, or null for tokens that are not text (special ones). */
  constructor(
    readonly size: number,
    bytes: (id: number) => Uint8Array | null,
  ) {
    for (let id = 0; id < size; id++) {
      const b = bytes(id);
      if (!b || b.length === 0) continue;
      let node = this.root;
      for (const x of b) {
        const next = node.children.get(x) ?? { children: new Map(), ids: [] };
        node.children.set(x, next);
        node = next;
      }
      node.ids.push(id);
    }
  }
}

const nodeIds = new WeakMap<object, number>();
let nextNodeId = 1;
function idOf(o: object): number {
  const id = nodeIds.get(o) ?? nextNodeId++;
  nodeIds.set(o, id);
  return id;
}

function frameKey(f: Frame): string {
  switch (f.t) {
    case "value":
      return `v${idOf(f.node)}`;
    case "ws":
      return "w";
    case "obj":
      return `o${idOf(f.node)}.${f.pos}.${f.phase}.${f.cands.join(",")}.${f.off}`;
    case "aobj":
      return `a${f.phase}`;
    case "arr":
      return `r${idOf(f.items)}.${f.phase}`;
    case "str":
      return `s${f.esc}.${f.cont}.${f.lo}.${f.hi}.${f.left === null ? "" : horizon(f.left)}.${horizon(f.need)}`;
    case "lit":
      return `l${f.values.join("\u0001")}.${f.off}`;
    case "num":
      return `n${f.integer ? 1 : 0}.${f.st}.${f.len}`;
  }
}

function stackKey(s: Stack): string {
  return s.map(frameKey).join("|");
}

function stateKey(state: State): string {
  return state.map(stackKey).sort().join("||");
}

/** The tokens allowed from each state of one schema over one vocabulary, computed once per state. */
export class SchemaMasks {
  private readonly cache = new Map<string, Int32Array>();

  constructor(
    readonly schema: SchemaNode,
    readonly trie: TokenTrie,
  ) {}

  initial(): State {
    return [[{ t: "value", node: this.schema }]];
  }

  allowed(s: State): Int32Array {
    const key = stateKey(s);
    let ids = this.cache.get(key);
    if (!ids) {
      const out: number[] = [];
      const walk = (node: TrieNode, state: State) => {
        for (const [b, child] of node.children) {
          const next = stepState(state, b);
          if (next.length === 0) continue;
          for (const id of child.ids) out.push(id);
          walk(child, next);
        }
      };
      walk(this.trie.root, s);
      ids = Int32Array.from(out);
      if (this.cache.size > 50_000) this.cache.clear();
      this.cache.set(key, ids);
    }
    return ids;
  }
}

/** One request's constraint: what may come next, advanced token by token. */
export class JsonConstraint {
  private state: State;

  constructor(
    private readonly masks: SchemaMasks,
    private readonly tokenBytes: (id: number) => Uint8Array | null,
  ) {
    this.state = masks.initial();
  }

  /** The value is complete: nothing more may be generated. */
  get done(): boolean {
    return this.state.every((s) => s.length === 0);
  }

  /** It may end here (end-of-text allowed). */
  get canEnd(): boolean {
    return this.state.some(stackCanEnd);
  }

  allowed(): Int32Array {
    return this.masks.allowed(this.state);
  }

  advance(id: number): void {
    let s = this.state;
    for (const b of this.tokenBytes(id) ?? []) {
      s = stepState(s, b);
      if (s.length === 0) throw new Error(`constrained decoding: token ${id} does not fit the schema here`);
    }
    this.state = s;
  }
}

/** What constraining needs of a tokenizer: how many ids, and the bytes each adds to the text. */
export interface TokenVocabulary {
  size: number;
  bytes(id: number): Uint8Array | null;
}

/** Constraints over one vocabulary: its trie built once, each schema's masks kept (a few dozen schemas). */
export class JsonConstraints {
  private trie: TokenTrie | null = null;
  private readonly bySchema = new Map<string, SchemaMasks>();

  constructor(private readonly vocab: TokenVocabulary) {}

  /** A fresh constraint for one request (the schema compiled once; a bad schema throws SchemaError). */
  create(schema: unknown): JsonConstraint {
    const key = JSON.stringify(schema);
    let masks = this.bySchema.get(key);
    if (!masks) {
      const node = compileSchema(schema);
      this.trie ??= new TokenTrie(this.vocab.size, (id) => this.vocab.bytes(id));
      masks = new SchemaMasks(node, this.trie);
      if (this.bySchema.size >= 64) this.bySchema.clear();
      this.bySchema.set(key, masks);
    }
    return new JsonConstraint(masks, (id) => this.vocab.bytes(id));
  }
}
