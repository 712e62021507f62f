// The inference engine: a key/value cache with a slot per sequence, prefill then one
// token per step, and continuous batching: each step decodes every active sequence
// together, and new requests join as slots free up. A slot keeps its tokens after a
// request ends, so the next turn of a chat only prefills what is new.
import { type CacheStep, cacheStep, copySlotRows, createKVCache, type KVCache } from "../model/kv-cache.ts";
import type { ImageBatch, Model } from "../model/model.ts";
import { patchesPerImage, pixelsPerImage } from "../model/vision.ts";
import { Rng } from "../nn/random.ts";
import { type FrozenWeights, noGrad, recyclingBuffers, withFrozenWeights } from "../tensor/index.ts";
import { type JsonConstraint, JsonConstraints } from "./constrain.ts";
import { DEFAULT_SAMPLING, type SamplingParams, sampleNext } from "./sampling.ts";

export interface EngineTokenizer {
  streamDecoder(): { push(ids: number[]): string; flush(): string };
  /** the bytes a token adds to the text (null for special tokens): what constrained decoding matches */
  tokenBytes?(id: number): Uint8Array | null;
  /** ids the tokenizer can decode: a model's padded embedding rows above them are never sampled */
  vocabSize: number;
  /** token ids that end a generation (end of text, end of the assistant's turn) */
  stopIds: ReadonlySet<number>;
}

export interface GenerationOptions extends SamplingParams {
  maxTokens: number;
  seed: number;
  /** strings that end the generation; they are not part of the output */
  stop: string[];
  /** a JSON Schema (the subset of json-schema.ts) the output must be an instance of */
  jsonSchema?: unknown;
  /**
   * Tool calls held to a schema: from the token `start` on, the JSON that follows must match
   * `schema`, and `end` follows it; `open`: the prompt already ends with `start`.
   */
  toolCalls?: { start: number; end: number; schema: unknown; open: boolean };
}

export type FinishReason = "stop" | "length" | "cancelled";

export interface TokenEvent {
  id: number;
  /** text this token completes (may be empty while a character or a stop string is incomplete) */
  text: string;
  logprob: number;
}

export interface GenerationResult {
  ids: number[];
  text: string;
  logprobs: number[];
  finishReason: FinishReason;
  /** the stop token that ended the generation, when one did (it is not in ids) */
  stopId?: number;
  promptTokens: number;
  /** prompt tokens served from the cache instead of prefilled */
  cachedTokens: number;
}

/** A prompt's images (vision models): preprocessed pixels and where each image's placeholder tokens start. */
export interface PromptImages {
  /** [count, C, S, S] */
  pixels: Float32Array;
  count: number;
  /** prompt positions of each image's first placeholder token; its patches fill the positions after */
  starts: number[];
}

export interface Request {
  prompt: number[];
  images?: PromptImages;
  options: Partial<GenerationOptions>;
  onToken?: (e: TokenEvent) => void;
  onDone: (r: GenerationResult) => void;
  /** the request failed inside the engine; its slot is free and the engine serves the others */
  onError: (e: Error) => void;
}

interface Sequence {
  id: number;
  req: Request;
  opts: GenerationOptions;
  slot: number;
  /** tokens in the cache, in order */
  tokens: number[];
  /** the sampled token not yet in the cache */
  next: number;
  out: number[];
  logprobs: number[];
  counts: Map<number, number>;
  rng: Rng;
  decoder: { push(ids: number[]): string; flush(): string };
  text: string;
  /** output held back because it could be the start of a stop string */
  held: string;
  cachedTokens: number;
  /** the JSON the output must stay a prefix of, when the request asked for a schema */
  constraint: JsonConstraint | null;
  /** what comes when the constrained JSON is complete: the end of the answer, or a tool call's end marker */
  afterJson: "finish" | "end-marker";
}

export const DEFAULT_GENERATION: GenerationOptions = { ...DEFAULT_SAMPLING, maxTokens: 256, seed: 0, stop: [] };

export class Engine {
  readonly cache: KVCache;
  private readonly slotTokens: number[][];
  private readonly busy: boolean[];
  private readonly waiting: { id: number; req: Request }[] = [];
  private readonly active: Sequence[] = [];
  /** bf16 copies of the weights, made once (the model does not change while an engine serves it) */
  private readonly frozen: FrozenWeights = new WeakMap();
  private jsonConstraints: JsonConstraints | null = null;
  private nextId = 1;

  constructor(
    readonly model: Model,
    private readonly tokenizer: EngineTokenizer,
    slots = 4,
  ) {
    this.cache = createKVCache(model.config, slots);
    this.slotTokens = Array.from({ length: slots }, () => []);
    this.busy = new Array<boolean>(slots).fill(false);
  }

  get contextLength(): number {
    return this.cache.capacity;
  }

  /** Queues a request; returns its id (for cancel). Work happens in step(). */
  submit(req: Request): number {
    if (req.prompt.length === 0) throw new Error("the prompt is empty");
    if (req.prompt.length >= this.cache.capacity) {
      throw new Error(`the prompt has ${req.prompt.length} tokens; the context holds ${this.cache.capacity}`);
    }
    if (req.images) this.checkImages(req.prompt, req.images);
    const id = this.nextId++;
    this.waiting.push({ id, req });
    return id;
  }

  cancel(id: number): void {
    const w = this.waiting.findIndex((x) => x.id === id);
    if (w >= 0) this.waiting.splice(w, 1);
    const seq = this.active.find((s) => s.id === id);
    if (seq) this.finish(seq, "cancelled");
  }

  get idle(): boolean {
    return this.waiting.length === 0 && this.active.length === 0;
  }

  /**
   * Admits waiting requests into free slots (prefilling them), then decodes one token for
   * every active sequence. An error ends only the requests it touched.
   */
  step(): void {
    // A step's activations are done with when it ends: their buffers go back to the pool.
    recyclingBuffers(() =>
      noGrad(() => {
        const admitted: Admitted[] = [];
        while (this.waiting.length > 0 && this.busy.includes(false))
          admitted.push(this.admit(this.waiting.shift() as { id: number; req: Request }));
        for (const group of prefillGroups(admitted)) this.prefill(group);
        if (this.active.length > 0) this.decode();
      }),
    );
  }

  /** Steps until every request has finished. */
  runToCompletion(): void {
    while (!this.idle) this.step();
  }

  /** One request, start to finish. */
  generate(
    prompt: number[],
    options: Partial<GenerationOptions> = {},
    onToken?: (e: TokenEvent) => void,
    images?: PromptImages,
  ): GenerationResult {
    let result: GenerationResult | null = null;
    let error: Error | null = null;
    this.submit({
      prompt,
      ...(images ? { images } : {}),
      options,
      onToken,
      onDone: (r) => {
        result = r;
      },
      onError: (e) => {
        error = e;
      },
    });
    this.runToCompletion();
    if (error) throw error;
    return result as unknown as GenerationResult;
  }

  private checkImages(prompt: number[], images: PromptImages): void {
    const vision = this.model.config.vision;
    if (!vision) throw new Error("this model has no vision encoder: it cannot see images");
    const N = patchesPerImage(vision);
    if (images.starts.length !== images.count || images.pixels.length !== images.count * pixelsPerImage(vision))
      throw new Error(`${images.count} images do not match their pixels and placeholders`);
    for (const start of images.starts)
      if (start < 0 || start + N > prompt.length) throw new Error(`an image at position ${start} runs past the prompt`);
  }

  /** The free slot whose cached tokens share the longest prefix with the prompt. */
  private pickSlot(prompt: number[], firstImage: number): [number, number] {
    let best = -1;
    let bestShared = -1;
    this.busy.forEach((busy, slot) => {
      if (busy) return;
      const cached = this.slotTokens[slot] as number[];
      let n = 0;
      while (n < cached.length && n < prompt.length && cached[n] === prompt[n]) n++;
      if (n > bestShared) {
        best = slot;
        bestShared = n;
      }
    });
    // The last prompt token is always run again: its logits pick the first new token. Placeholder
    // tokens are alike for every image, so nothing from the first image on is taken from the cache.
    return [best, Math.min(bestShared, prompt.length - 1, firstImage)];
  }

  /** Gives a waiting request the free slot that holds most of its prompt. */
  private admit({ id, req }: { id: number; req: Request }): Admitted {
    const [slot, shared] = this.pickSlot(req.prompt, req.images?.starts[0] ?? req.prompt.length);
    this.busy[slot] = true;
    return { id, req, slot, shared };
  }

  /**
   * Runs the uncached part of each prompt in a group (equally long) in one forward pass, then
   * samples each one's first token. A prompt the group holds twice (a GRPO group's answers
   * share theirs) runs once; the others copy its cache rows and its logits.
   */
  private prefill(group: Admitted[]): void {
    // Each request's row among the prompts that run (a request with images is alone in its group).
    const rowOf = new Map<string, number>();
    const rows = group.map((a) => {
      const key = a.req.prompt.join(",");
      if (!rowOf.has(key)) rowOf.set(key, rowOf.size);
      return rowOf.get(key) as number;
    });
    const runs = group.filter((_, i) => rows.indexOf(rows[i] as number) === i);
    const fresh = runs.map((a) => a.req.prompt.slice(a.shared));
    const first = runs[0] as Admitted;
    let logits: Float32Array;
    try {
      const kv = cacheStep(
        this.cache,
        runs.map((a) => a.slot),
        runs.map((a) => a.shared),
        (fresh[0] as number[]).length,
      );
      logits = this.forward(Int32Array.from(fresh.flat()), kv, this.imageRows(first.req.images, first.shared));
    } catch (e) {
      for (const a of group) {
        this.freeSlot(a.slot, []);
        a.req.onError(asError(e));
      }
      return;
    }
    const V = this.model.config.vocabSize;
    group.forEach((a, i) => {
      const row = rows[i] as number;
      const source = runs[row] as Admitted;
      if (source !== a) copySlotRows(this.cache, source.slot, a.slot, a.req.prompt.length);
      this.begin(a, logits.subarray(row * V, (row + 1) * V));
    });
  }

  /** A prefilled request becomes an active sequence; its first token is sampled from `logits`. */
  private begin({ id, req, slot, shared }: Admitted, logits: Float32Array): void {
    const tokens = [...req.prompt];
    this.slotTokens[slot] = tokens;
    const opts: GenerationOptions = { ...DEFAULT_GENERATION, ...req.options };
    const counts = new Map<number, number>();
    for (const t of req.prompt) counts.set(t, (counts.get(t) ?? 0) + 1);
    const seq: Sequence = {
      id,
      req,
      opts,
      slot,
      tokens,
      next: -1,
      out: [],
      logprobs: [],
      counts,
      rng: new Rng(opts.seed),
      decoder: this.tokenizer.streamDecoder(),
      text: "",
      held: "",
      cachedTokens: shared,
      constraint: null,
      afterJson: opts.jsonSchema !== undefined ? "finish" : "end-marker",
    };
    this.active.push(seq);
    try {
      const schema = opts.jsonSchema ?? (opts.toolCalls?.open ? opts.toolCalls.schema : undefined);
      if (schema !== undefined) seq.constraint = this.constraints().create(schema);
    } catch (e) {
      this.fail(seq, asError(e));
      return;
    }
    this.acceptOrFail(seq, logits);
  }

  private decode(): void {
    const seqs = [...this.active];
    const step = cacheStep(
      this.cache,
      seqs.map((s) => s.slot),
      seqs.map((s) => s.tokens.length),
      1,
    );
    let logits: Float32Array;
    try {
      logits = this.forward(Int32Array.from(seqs.map((s) => s.next)), step);
    } catch (e) {
      for (const s of seqs) this.fail(s, asError(e));
      return;
    }
    const V = this.model.config.vocabSize;
    seqs.forEach((s, b) => {
      s.tokens.push(s.next);
      this.acceptOrFail(s, logits.subarray(b * V, (b + 1) * V));
    });
  }

  private acceptOrFail(s: Sequence, logits: Float32Array): void {
    try {
      // Padded embedding rows (a model vocabulary larger than its tokenizer's) are not tokens.
      this.accept(s, logits.length > this.tokenizer.vocabSize ? logits.subarray(0, this.tokenizer.vocabSize) : logits);
    } catch (e) {
      this.fail(s, asError(e));
    }
  }

  /** Ends a sequence with an error; its cache rows may be half-written, so its slot forgets them. */
  private fail(s: Sequence, e: Error): void {
    const i = this.active.indexOf(s);
    if (i < 0) return;
    this.active.splice(i, 1);
    this.freeSlot(s.slot, []);
    s.req.onError(e);
  }

  private freeSlot(slot: number, tokens: number[]): void {
    this.busy[slot] = false;
    this.slotTokens[slot] = tokens;
  }

  private forward(ids: Int32Array, kv: CacheStep, images?: ImageBatch): Float32Array {
    const B = kv.slots.length;
    return withFrozenWeights(
      this.frozen,
      () => this.model.forward(ids, B, ids.length / B, { kv, lastOnly: true, images }).data,
    );
  }

  /** A prefill's images and the rows of its fresh tokens (those from `shared` on) their patches take. */
  private imageRows(images: PromptImages | undefined, shared: number): ImageBatch | undefined {
    const vision = this.model.config.vision;
    if (!images || !vision) return undefined;
    const N = patchesPerImage(vision);
    const rows = Int32Array.from(images.starts.flatMap((s) => Array.from({ length: N }, (_, k) => s - shared + k)));
    return { pixels: images.pixels, count: images.count, rows };
  }

  private constraints(): JsonConstraints {
    const bytes = this.tokenizer.tokenBytes?.bind(this.tokenizer);
    if (!bytes) throw new Error("this model's tokenizer cannot constrain its output to a schema");
    this.jsonConstraints ??= new JsonConstraints({ size: this.tokenizer.vocabSize, bytes });
    return this.jsonConstraints;
  }

  /** Logits with every token the constraint does not allow at -Infinity (end-of-text only where the value may end). */
  private masked(logits: Float32Array, c: JsonConstraint): Float32Array {
    const out = new Float32Array(logits.length).fill(Number.NEGATIVE_INFINITY);
    let any = false;
    for (const id of c.allowed()) {
      if (id < logits.length) {
        out[id] = logits[id] as number;
        any = true;
      }
    }
    if (c.canEnd) {
      for (const id of this.tokenizer.stopIds) {
        if (id < logits.length) {
          out[id] = logits[id] as number;
          any = true;
        }
      }
    }
    if (!any) throw new Error("constrained decoding: no token of this vocabulary can continue the schema here");
    return out;
  }

  /**
   * The logits a sequence samples from: all of them; under a constraint, the tokens it
   * allows; after a complete tool call, only the call's end marker (the constraint ends).
   */
  private allowedLogits(s: Sequence, logits: Float32Array): Float32Array {
    const c = s.constraint;
    const calls = s.opts.toolCalls;
    if (c?.done && calls) {
      s.constraint = null;
      return this.onlyToken(logits, calls.end);
    }
    return c ? this.masked(logits, c) : logits;
  }

  /** Only the end marker of a tool call may come next. */
  private onlyToken(logits: Float32Array, id: number): Float32Array {
    const out = new Float32Array(logits.length).fill(Number.NEGATIVE_INFINITY);
    out[id] = logits[id] as number;
    return out;
  }

  /** Samples the sequence's next token from its logits and emits or finishes. */
  private accept(s: Sequence, logits: Float32Array): void {
    if (s.constraint?.done && s.afterJson === "finish") {
      this.finish(s, "stop");
      return;
    }
    const choice = sampleNext(this.allowedLogits(s, logits), s.opts, s.counts, s.rng);
    if (this.tokenizer.stopIds.has(choice.id)) {
      this.finish(s, "stop", choice.id);
      return;
    }
    const c = s.constraint;
    const calls = s.opts.toolCalls;
    c?.advance(choice.id);
    if (!c && calls && choice.id === calls.start) s.constraint = this.constraints().create(calls.schema);
    s.out.push(choice.id);
    s.logprobs.push(choice.logprob);
    s.counts.set(choice.id, (s.counts.get(choice.id) ?? 0) + 1);
    s.next = choice.id;
    const stopped = this.emit(s, choice.id, choice.logprob, s.decoder.push([choice.id]));
    if (stopped || (c?.done && s.afterJson === "finish")) this.finish(s, "stop");
    else if (s.out.length >= s.opts.maxTokens || s.tokens.length + 1 >= this.cache.capacity) this.finish(s, "length");
  }

  /** Emits new text, holding back what may begin a stop string; true when a stop string completed. */
  private emit(s: Sequence, id: number, logprob: number, piece: string): boolean {
    const pending = s.held + piece;
    for (const stop of s.opts.stop) {
      const at = pending.indexOf(stop);
      if (stop && at >= 0) {
        this.send(s, id, logprob, pending.slice(0, at));
        s.held = "";
        return true;
      }
    }
    let keep = 0;
    for (const stop of s.opts.stop) {
      for (let n = Math.min(stop.length - 1, pending.length); n > keep; n--) {
        if (pending.endsWith(stop.slice(0, n))) {
          keep = n;
          break;
        }
      }
    }
    s.held = pending.slice(pending.length - keep);
    this.send(s, id, logprob, pending.slice(0, pending.length - keep));
    return false;
  }

  private send(s: Sequence, id: number, logprob: number, text: string): void {
    s.text += text;
    s.req.onToken?.({ id, text, logprob });
  }

  private finish(s: Sequence, reason: FinishReason, stopId?: number): void {
    const i = this.active.indexOf(s);
    if (i < 0) return;
    this.active.splice(i, 1);
    // The cache keeps what a later prompt may share: the tokens before the first image.
    this.freeSlot(s.slot, s.tokens.slice(0, s.req.images?.starts[0] ?? s.tokens.length));
    if (reason !== "stop" || s.held) s.text += s.held + s.decoder.flush();
    s.req.onDone({
      ids: s.out,
      text: s.text,
      logprobs: s.logprobs,
      finishReason: reason,
      ...(stopId !== undefined ? { stopId } : {}),
      promptTokens: s.req.prompt.length,
      cachedTokens: s.cachedTokens,
    });
  }
}

/** A request given a slot, its prompt not yet run; `shared` of its tokens are already in the slot's cache. */
interface Admitted {
  id: number;
  req: Request;
  slot: number;
  shared: number;
}

/**
 * Admitted requests in groups that prefill together: those with as many uncached prompt
 * tokens as each other (a GRPO group's answers share their prompt; a server's clients often
 * send alike prompts); a request with images alone, its patches placed by its own rows.
 */
function prefillGroups(admitted: Admitted[]): Admitted[][] {
  const byLength = new Map<number, Admitted[]>();
  const alone: Admitted[][] = [];
  for (const a of admitted) {
    if (a.req.images) {
      alone.push([a]);
      continue;
    }
    const n = a.req.prompt.length - a.shared;
    byLength.set(n, [...(byLength.get(n) ?? []), a]);
  }
  return [...byLength.values(), ...alone];
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
