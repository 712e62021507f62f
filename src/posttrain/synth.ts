// Synthetic conversations, so post-training can be shown without downloading data:
// greetings and identity; the weekday and the date, answered from the date given in the
// system prompt (English and Chinese); arithmetic; a question answered from a passage
// placed in context; and the same questions answered through tools (synth-tools.ts). The
// held-out split uses other phrasings and other values than training.
import { type ToolSpec, toHfMessage } from "../infer/chat.ts";
import { Rng } from "../nn/random.ts";
import type { Message } from "./data.ts";
import {
  CHAT_TOOLS,
  calculatorConversation,
  clockConversation,
  type ToolConversation,
  type ToolTask,
} from "./synth-tools.ts";
import { dayOf, MONTHS, operandsOf, pick, type Split, WEEKDAYS_EN, WEEKDAYS_ZH } from "./synth-values.ts";

export type SynthTask = "identity" | "weekday" | "date" | "arithmetic" | "in-context" | ToolTask;

export interface SynthConversation {
  messages: Message[];
  /** the tools offered (tool tasks) */
  tools?: ToolSpec[];
  /** clock: the moment and time zone the clock reads in this conversation */
  meta: { task: SynthTask; split: Split; clock?: { now: string; timezone: string } };
}

/** Phrasings per split: held-out questions are worded differently from training's. */
const PHRASES = {
  weekday: {
    en: {
      train: ["What day of the week is it today?", "Which day of the week is today?", "What weekday is it?"],
      heldout: ["Do you know what day of the week it is today?", "Tell me today's weekday."],
    },
    zh: { train: ["今天星期几?", "今天是星期几?"], heldout: ["请问今天星期几?"] },
  },
  date: {
    en: {
      train: ["What is the date today?", "What is today's date?"],
      heldout: ["Tell me today's date.", "Which date is it today?"],
    },
    zh: { train: ["今天几号?", "今天是几月几号?"], heldout: ["请问今天的日期是?"] },
  },
  add: {
    // Many wordings, some after an opener, so the model learns to find the two numbers in a
    // question rather than a few sentences; the held-out ones share none of their frames.
    train: [
      "What is {a} + {b}?",
      "Compute {a} plus {b}.",
      "{a} + {b} = ?",
      "What's {a} plus {b}?",
      "Sum {a} and {b}.",
      "Please add {a} to {b}.",
      "What do {a} and {b} add up to?",
      "What is the sum of {a} and {b}?",
      "{a} plus {b}?",
      "Find {a} + {b}.",
      "Work out {a} plus {b}.",
      "Tell me {a} + {b}.",
      "What does {a} + {b} equal?",
      "Give me the sum of {a} and {b}.",
      "If you add {a} to {b}, what do you get?",
      "Sum up {a} and {b}.",
      "{a} + {b}?",
      "What is {a} added to {b}?",
      "Can you tell me what {a} plus {b} is?",
      "Evaluate {a} + {b}.",
      "Figure out {a} plus {b}.",
      "{a} plus {b} equals?",
      "What number is {a} plus {b}?",
      "Put {a} and {b} together: what is the sum?",
    ],
    openers: ["", "", "", "Quick question: ", "Hey, ", "Math time. ", "I need help. "],
    heldout: ["How much is {a} + {b}?", "Add {a} and {b}.", "Calculate the total of {a} and {b}."],
  },
  context: {
    train: ['In the passage, which word comes right after "{w}"?'],
    heldout: ['Which word follows "{w}" in the passage?'],
  },
} as const;

const IDENTITY: [string, string][] = [
  ["Hi!", "Hello! How can I help you today?"],
  ["Hello", "Hello! How can I help you today?"],
  ["Who are you?", "I am llmfab, a small language model trained from scratch."],
  ["What is your name?", "I am llmfab, a small language model trained from scratch."],
];

/** An English date string in one of several formats. */
const dateZhOf = (d: Date) => `${d.getUTCFullYear()}年${d.getUTCMonth() + 1}月${d.getUTCDate()}日`;

/**
 * The date as a system prompt gives it (the date's UTC fields): "Today is Saturday,
 * 9 March 2024." (style 2; 0: 2024-03-09, 1: March 9, 2024) or "今天是2024年3月9日，星期六。".
 * The synthetic data trains on these, and llmfab chat puts today's in its system turn.
 */
export function systemDateLine(d: Date, chinese: boolean, style = 2): string {
  return chinese
    ? `今天是${dateZhOf(d)}，${WEEKDAYS_ZH[d.getUTCDay()]}。`
    : `Today is ${WEEKDAYS_EN[d.getUTCDay()]}, ${formatDate(d, style)}.`;
}

function formatDate(d: Date, style: number): string {
  const [y, m, day] = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()];
  if (style === 0) return `${y}-${String(m + 1).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
  if (style === 1) return `${MONTHS[m]} ${day}, ${y}`;
  return `${day} ${MONTHS[m]} ${y}`;
}

/**
 * The system prompt carries the date with its weekday, as assistants' system prompts do;
 * the model learns to answer weekday and date questions from it. (Working out the weekday
 * of a bare date is a calendar computation, not something a chat model should guess.)
 */
function calendar(task: "weekday" | "date", split: Split, rng: Rng): SynthConversation {
  const d = dayOf(split, rng);
  const zh = rng.next() < 0.3;
  const dayEn = WEEKDAYS_EN[d.getUTCDay()] as string;
  const dayZh = WEEKDAYS_ZH[d.getUTCDay()] as string;
  const style = rng.int(3);
  const dateEn = formatDate(d, style);
  const dateZh = dateZhOf(d);
  const system = systemDateLine(d, zh, style);
  const phrases = task === "weekday" ? PHRASES.weekday : PHRASES.date;
  const question = pick((zh ? phrases.zh : phrases.en)[split], rng);
  const answer =
    task === "weekday" ? (zh ? `今天是${dayZh}。` : `It is ${dayEn}.`) : zh ? `今天是${dateZh}。` : `It is ${dateEn}.`;
  return conversation(task, split, [
    { role: "system", content: system },
    { role: "user", content: question },
    { role: "assistant", content: answer },
  ]);
}

function arithmetic(split: Split, rng: Rng): SynthConversation {
  const [a, b] = operandsOf(split, rng);
  const opener = split === "train" ? pick(PHRASES.add.openers, rng) : "";
  const q = opener + pick(PHRASES.add[split], rng).replace("{a}", String(a)).replace("{b}", String(b));
  return conversation("arithmetic", split, [
    { role: "user", content: q },
    { role: "assistant", content: String(a + b) },
  ]);
}

function inContext(split: Split, rng: Rng, passages: string[]): SynthConversation {
  const pool = passagesFor(split, passages);
  for (;;) {
    const passage = pick(pool, rng);
    const words = passage.split(/\s+/).filter((w) => /^[A-Za-z]+$/.test(w));
    if (words.length < 4) continue;
    const i = rng.int(words.length - 1);
    const w = words[i] as string;
    if (words.indexOf(w) !== i) continue; // the word must be unambiguous
    const q = pick(PHRASES.context[split], rng).replace("{w}", w);
    return conversation("in-context", split, [
      { role: "system", content: `Passage: ${words.join(" ")}` },
      { role: "user", content: q },
      { role: "assistant", content: words[i + 1] as string },
    ]);
  }
}

/** Passages for a split: training's from the first 90% of the list, held-out ones from the rest. */
function passagesFor(split: Split, passages: string[]): string[] {
  const cut = Math.floor(passages.length * 0.9);
  return split === "train" ? passages.slice(0, cut) : passages.slice(cut);
}

/** A greeting; some training ones offer the tools, which a greeting does not call. */
function identity(split: Split, rng: Rng): SynthConversation {
  const [q, a] = pick(IDENTITY, rng);
  const c = conversation("identity", split, [
    { role: "user", content: q },
    { role: "assistant", content: a },
  ]);
  return split === "train" && rng.next() < 0.3 ? { ...c, tools: CHAT_TOOLS } : c;
}

function conversation(task: SynthTask, split: Split, messages: Message[]): SynthConversation {
  return { messages, meta: { task, split } };
}

function withTools(task: ToolTask, split: Split, c: ToolConversation): SynthConversation {
  return { messages: c.messages, tools: c.tools, meta: { task, split, ...(c.clock ? { clock: c.clock } : {}) } };
}

/** How many conversations of each task per round (integers): the default mix. */
export const DEFAULT_MIX: Readonly<Record<SynthTask, number>> = {
  identity: 1,
  weekday: 2,
  date: 1,
  arithmetic: 3,
  "in-context": 3,
  "tool-weekday": 3,
  "tool-date": 1,
  "tool-sum": 2,
};

export interface SynthOptions {
  /** weights that replace the default's for the training split (the held-out split keeps the default mix) */
  mix?: Partial<Record<SynthTask, number>>;
  /** held-out conversations to draw before identity ones are dropped (default max(30, n / 10)) */
  heldout?: number;
}

/** Parses "arithmetic=18,in-context=3" (the `--mix` option); unlisted tasks keep their default weight. */
export function parseMix(text: string): Partial<Record<SynthTask, number>> {
  const mix: Partial<Record<SynthTask, number>> = {};
  for (const part of text.split(",").filter((p) => p.trim() !== "")) {
    const [name, value, extra] = part.split("=").map((p) => p.trim());
    if (!name || value === undefined || extra !== undefined) throw new Error(`--mix: "${part}" is not task=weight`);
    if (!(name in DEFAULT_MIX))
      throw new Error(`--mix: unknown task "${name}" (tasks: ${Object.keys(DEFAULT_MIX).join(", ")})`);
    const weight = Number(value);
    if (!Number.isInteger(weight) || weight < 0)
      throw new Error(`--mix: the weight of ${name} must be a whole number >= 0, got "${value}"`);
    mix[name as SynthTask] = weight;
  }
  return mix;
}

/** Tasks in round-robin order, each repeated by its weight: [identity, weekday, weekday, date, ...]. */
function rounds(mix: Partial<Record<SynthTask, number>>): SynthTask[] {
  const order: SynthTask[] = [];
  for (const task of Object.keys(DEFAULT_MIX) as SynthTask[]) {
    const w = mix[task] ?? 0;
    if (!Number.isInteger(w) || w < 0) throw new Error(`synth mix: ${task} must be a whole number >= 0, got ${w}`);
    for (let i = 0; i < w; i++) order.push(task);
  }
  if (order.length === 0) throw new Error("synth mix: at least one task needs a weight above 0");
  return order;
}

/** n training conversations and about n/10 held-out ones, mixed over the tasks. */
export function synthesize(
  n: number,
  seed: number,
  passages: string[],
  o: SynthOptions = {},
): { train: SynthConversation[]; heldout: SynthConversation[] } {
  if (!Number.isInteger(n) || n < 1) throw new Error(`--n must be a positive integer, got ${n}`);
  const heldoutCount = o.heldout ?? Math.max(30, Math.floor(n / 10));
  if (!Number.isInteger(heldoutCount) || heldoutCount < 1)
    throw new Error(`--heldout must be a positive integer, got ${heldoutCount}`);
  const usable = passages.filter((p) => p.split(/\s+/).length >= 6 && p.length < 300);
  if (usable.length < 20) throw new Error("synth needs at least 20 passages of text for the in-context task");
  const rng = new Rng(seed);
  const one = (task: SynthTask, split: Split): SynthConversation => {
    if (task === "identity") return identity(split, rng);
    if (task === "weekday" || task === "date") return calendar(task, split, rng);
    if (task === "arithmetic") return arithmetic(split, rng);
    if (task === "in-context") return inContext(split, rng, usable);
    const fillers = passagesFor(split, usable).filter((p) => p.length <= 160); // short: a system prompt's length
    if (task === "tool-sum") return withTools(task, split, calculatorConversation(split, rng, fillers));
    return withTools(task, split, clockConversation(task, split, rng, fillers));
  };
  const make = (split: Split, count: number, mix: Partial<Record<SynthTask, number>>) => {
    const order = rounds(mix);
    return Array.from({ length: count }, (_, i) => one(order[i % order.length] as SynthTask, split));
  };
  return {
    train: make("train", n, { ...DEFAULT_MIX, ...o.mix }),
    heldout: make("heldout", heldoutCount, DEFAULT_MIX).filter((c) => c.meta.task !== "identity"),
  };
}

/** A conversation as a JSONL record in OpenAI's fine-tuning format (what readConversations reads). */
export function synthRecord(c: SynthConversation): Record<string, unknown> {
  const messages = c.messages.map((m) => {
    const hf = toHfMessage(m) as { tool_calls?: { function: { arguments: unknown } }[] };
    for (const call of hf.tool_calls ?? []) call.function.arguments = JSON.stringify(call.function.arguments);
    return hf;
  });
  const tools = c.tools?.map((f) => ({ type: "function", function: f }));
  return { messages, ...(tools ? { tools } : {}), meta: c.meta };
}
