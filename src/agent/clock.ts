// The clock tool: today's date, the time and the weekday in an IANA time zone. The clock
// itself is injectable, so tests (and evaluations) run at a fixed moment.
import { z } from "zod";
import { defineTool, type Tool, ToolError } from "./tool.ts";

const args = z
  .object({
    timezone: z
      .string()
      .max(64)
      .optional()
      .describe('IANA time zone, e.g. "Europe/Paris" or "Asia/Shanghai" (default: the server\'s)'),
  })
  .strict();

export interface ClockReading {
  date: string;
  time: string;
  weekday: string;
  timezone: string;
}

/** The reading of `now` in `timezone` (throws ToolError for an unknown zone). */
export function readClock(now: Date, timezone?: string): ClockReading {
  const zone = timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      weekday: "long",
      hourCycle: "h23",
    }).formatToParts(now);
  } catch {
    throw new ToolError(`unknown time zone "${zone}" (use an IANA name such as "Europe/Paris")`);
  }
  const part = (type: Intl.DateTimeFormatPartTypes) => parts.find((p) => p.type === type)?.value ?? "";
  return {
    date: `${part("year")}-${part("month")}-${part("day")}`,
    time: `${part("hour")}:${part("minute")}:${part("second")}`,
    weekday: part("weekday"),
    timezone: zone,
  };
}

export function clockTool(now: () => Date = () => new Date()): Tool {
  return defineTool(
    "clock",
    "The current date, time and day of the week. Call it whenever a question depends on today's date.",
    args,
    (a) => JSON.stringify(readClock(now(), a.timezone)),
  );
}

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
const WEEKDAYS_ZH: Record<string, string> = {
  Sunday: "星期日",
  Monday: "星期一",
  Tuesday: "星期二",
  Wednesday: "星期三",
  Thursday: "星期四",
  Friday: "星期五",
  Saturday: "星期六",
};

/** Whether a text is written in Chinese (any CJK ideograph). */
export const isChinese = (text: string) => /\p{Script=Han}/u.test(text);

/**
 * Today's date as deployed assistants put it in their system turn, in the user's language:
 * "Today is Saturday, 9 March 2024." or "今天是2024年3月9日，星期六。" (the forms llmfab synth
 * trains on), so a model without tools can answer what day it is.
 */
export function todayLine(now: Date, chinese: boolean, timezone?: string): string {
  const c = readClock(now, timezone);
  const [y, m, d] = c.date.split("-").map(Number) as [number, number, number];
  return chinese
    ? `今天是${y}年${m}月${d}日，${WEEKDAYS_ZH[c.weekday]}。`
    : `Today is ${c.weekday}, ${d} ${MONTHS[m - 1]} ${y}.`;
}
