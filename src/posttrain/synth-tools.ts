// Synthetic tool-use conversations: date and weekday questions with no date in the
// context, answered by calling the clock and reading its result (English and Chinese),
// and sums and products answered through the calculator. The tool results are the real
// tools' output for the conversation's moment, so a model trained on them reads what the
// tools will say. Held-out conversations differ in values and in layout: other phrasings,
// other system prompts (some that say other things), other time zones, the tools listed
// in another order.
import { calculate, calculatorTool } from "../agent/calculator.ts";
import { clockTool, readClock } from "../agent/clock.ts";
import { toolSpecs } from "../agent/tool.ts";
import type { ChatMessage, ToolSpec } from "../infer/chat.ts";
import type { Rng } from "../nn/random.ts";
import { isHeldoutDate, operandsOf, pick, type Split } from "./synth-values.ts";

export type ToolTask = "tool-weekday" | "tool-date" | "tool-sum";

export interface ToolConversation {
  messages: ChatMessage[];
  tools: ToolSpec[];
  /** the moment and time zone the clock reads, for evaluating through the agent loop */
  clock?: { now: string; timezone: string };
}

const PHRASES = {
  "tool-weekday": {
    en: {
      train: [
        "What day of the week is it today?",
        "Which day of the week is today?",
        "What weekday is it?",
        "What day is today?",
        "Which weekday is it today?",
        "Can you tell me the day of the week?",
        "Is it a weekday or the weekend? Which day?",
        "Remind me what day of the week it is.",
        "which day is it today",
        "Today is which day of the week?",
        "Please say what day of the week it is.",
        "What's the day today?",
        "Which day are we on?",
        "I lost track of time. What day is it today?",
        "Could you check the weekday for me?",
      ],
      heldout: ["What day is it?", "Do you know what day of the week it is today?", "Tell me today's weekday."],
    },
    zh: {
      train: ["今天星期几?", "今天是星期几?", "今天星期几？", "现在是星期几?", "今天是周几?", "告诉我今天星期几。"],
      heldout: ["请问今天星期几?", "你知道今天是星期几吗?"],
    },
  },
  "tool-date": {
    en: {
      train: ["What is the date today?", "What is today's date?", "Which date is today?", "What's the date?"],
      heldout: ["Tell me today's date.", "Which date is it today?"],
    },
    zh: { train: ["今天几号?", "今天是几月几号?", "今天的日期是?"], heldout: ["请问今天的日期是?"] },
  },
  "tool-sum": {
    en: {
      train: ["What is {a} {op} {b}?", "Compute {a} {op} {b}.", "Use the calculator: {a} {op} {b}"],
      heldout: ["How much is {a} {op} {b}?", "Work out {a} {op} {b} for me."],
    },
    zh: { train: ["{a} {op} {b} 等于多少?"], heldout: ["请计算 {a} {op} {b}。"] },
  },
} as const;

/** System prompts: training's; the held-out ones are other assistants' prompts, some saying other things. */
const SYSTEMS = {
  train: ["You are a helpful assistant.", "You are llmfab, a small assistant.", "Answer briefly.", "你是一个助手。"],
  heldout: [
    "You are a friendly assistant. Keep answers short and polite.",
    "You help people plan their week. Be concise and accurate.",
    "你是一个乐于助人的助手，请简洁地回答。",
    "The user is on a phone; reply in one short sentence.",
  ],
};

const ZONES = {
  train: ["UTC", "Europe/London", "America/New_York", "Asia/Shanghai", "Europe/Paris", "Asia/Kolkata"],
  heldout: ["Asia/Tokyo", "Australia/Sydney", "America/Los_Angeles", "Europe/Berlin"],
};

/** The built-in tools' specs, as the chat page and `llmfab chat` offer them. */
const CLOCK = toolSpecs([clockTool()])[0] as ToolSpec;
const CALCULATOR = toolSpecs([calculatorTool()])[0] as ToolSpec;
/** What a chat offers a model trained on these conversations. */
export const CHAT_TOOLS = [CLOCK, CALCULATOR];

/**
 * The tools listed: held-out conversations list both in the default order; training
 * ones list the needed tool alone, or both in either order.
 */
function offered(needed: ToolSpec, split: Split, rng: Rng): ToolSpec[] {
  if (split === "heldout") return CHAT_TOOLS;
  const r = rng.next();
  if (r < 0.25) return [needed];
  return r < 0.6 ? CHAT_TOOLS : [CALCULATOR, CLOCK];
}

const PASSAGE_PREFIXES = { train: ["Context: ", "Note: "], heldout: ["Background: ", ""] };

/**
 * The system turn, or none: its own prompts, or a sentence of the corpus (a prompt that
 * says other things), each split from its own lists.
 */
function systemTurn(split: Split, rng: Rng, passages: string[]): ChatMessage[] {
  const r = rng.next();
  if (r < (split === "train" ? 0.4 : 1 / 3)) return [];
  const text =
    r < (split === "train" ? 0.7 : 2 / 3)
      ? pick(SYSTEMS[split], rng)
      : `${pick(PASSAGE_PREFIXES[split], rng)}${pick(passages, rng)}`;
  return [{ role: "system", content: text }];
}

/** A moment whose date, in the zone, belongs to the split. */
function momentOf(split: Split, rng: Rng, zone: string): Date {
  for (;;) {
    const ms = Date.UTC(2000, 0, 1) + Math.floor(rng.next() * 30 * 365.25 * 86_400_000);
    const moment = new Date(Math.floor(ms / 1000) * 1000);
    const [y, m, d] = readClock(moment, zone).date.split("-").map(Number) as [number, number, number];
    if (isHeldoutDate(new Date(Date.UTC(y, m - 1, d))) === (split === "heldout")) return moment;
  }
}

function call(name: string, args: Record<string, unknown>): ChatMessage {
  return { role: "assistant", content: "", toolCalls: [{ id: "call_1", name, arguments: args }] };
}

function result(content: string): ChatMessage {
  return { role: "tool", content, toolCallId: "call_1" };
}

/** "What day is it?" -> clock -> "It is Saturday." (or the date), in the question's language. */
export function clockConversation(
  task: "tool-weekday" | "tool-date",
  split: Split,
  rng: Rng,
  passages: string[],
): ToolConversation {
  const zh = rng.next() < 0.35;
  const zone = pick(ZONES[split], rng);
  const moment = momentOf(split, rng, zone);
  // A Chinese question asks the clock for the weekday in Chinese: the answer copies it, as an English one does.
  const language = zh ? { language: "zh" } : {};
  const reading = readClock(moment, zone, language.language);
  const question = pick(PHRASES[task][zh ? "zh" : "en"][split], rng);
  const [y, m, d] = reading.date.split("-");
  const answer =
    task === "tool-weekday"
      ? zh
        ? `今天是${reading.weekday}。`
        : `It is ${reading.weekday}.`
      : zh
        ? `今天是${y}年${m}月${d}日。`
        : `It is ${reading.date}.`;
  return {
    messages: [
      ...systemTurn(split, rng, passages),
      { role: "user", content: question },
      call("clock", language),
      result(JSON.stringify(reading)),
      { role: "assistant", content: answer },
    ],
    tools: offered(CLOCK, split, rng),
    clock: { now: moment.toISOString(), timezone: zone },
  };
}

/** "What is 347 * 29?" -> calculator("347 * 29") -> its result, as the answer. */
export function calculatorConversation(split: Split, rng: Rng, passages: string[]): ToolConversation {
  const zh = rng.next() < 0.25;
  const [a, b] = operandsOf(split, rng, 1000);
  const op = rng.next() < 0.6 ? "+" : "*";
  const question = pick(PHRASES["tool-sum"][zh ? "zh" : "en"][split], rng)
    .replace("{a}", String(a))
    .replace("{op}", op)
    .replace("{b}", String(b));
  const expression = `${a} ${op} ${b}`;
  const value = calculate(expression);
  return {
    messages: [
      ...systemTurn(split, rng, passages),
      { role: "user", content: question },
      call("calculator", { expression }),
      result(value),
      { role: "assistant", content: value },
    ],
    tools: offered(CALCULATOR, split, rng),
  };
}
