// The clock tool: today's date, the time and the weekday in an IANA time zone, the weekday
// named in the language asked for (as Intl names it: "Saturday", "星期六", "samedi"). The
// clock itself is injectable, so tests (and evaluations) run at a fixed moment.
import { z } from "zod";
import { defineTool, type Tool, ToolError } from "./tool.ts";

const args = z
  .object({
    timezone: z.string().max(64).optional().describe('IANA time zone, e.g. "Asia/Shanghai" (default: the server\'s)'),
    language: z.string().max(35).optional().describe('language of the weekday\'s name, e.g. "zh" (default: "en")'),
  })
  .strict();

export interface ClockReading {
  date: string;
  time: string;
  weekday: string;
  timezone: string;
}

/** The reading of `now` in `timezone`, the weekday in `language` (ToolError for an unknown zone or language). */
export function readClock(now: Date, timezone?: string, language = "en"): ClockReading {
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
    weekday: weekdayIn(now, zone, language),
    timezone: zone,
  };
}

function weekdayIn(now: Date, zone: string, language: string): string {
  try {
    return new Intl.DateTimeFormat(language, { timeZone: zone, weekday: "long" }).format(now);
  } catch {
    throw new ToolError(`unknown language "${language}" (use a language tag such as "en" or "zh")`);
  }
}

/** The clock tool; `now` and `zone` (the zone when the call names none) are injectable for tests and evaluations. */
export function clockTool(now: () => Date = () => new Date(), zone?: string): Tool {
  return defineTool("clock", "Today's date, the time and the day of the week.", args, (a) =>
    JSON.stringify(readClock(now(), a.timezone ?? zone, a.language)),
  );
}
