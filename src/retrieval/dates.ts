// Date words in a question ("today", "this week", "今天", "本周") turned into a time window
// on the clock's calendar, in the user's time zone, so "what happened today?" searches
// today's items only.
import { readClock } from "../agent/clock.ts";

export interface DateWindow {
  /** ISO instants: since is inclusive, until exclusive */
  since: string;
  until: string;
  /** the words that set it, as written in the question */
  words: string;
  /** its first and last calendar days in the time zone, YYYY-MM-DD */
  days: [string, string];
}

type Span = "today" | "yesterday" | "week" | "month";

const WORDS: [RegExp, Span][] = [
  [/\b(today|tonight|this morning|this evening)\b|今天|今日|今晚/i, "today"],
  [/\byesterday\b|昨天|昨日/i, "yesterday"],
  [/\b(this|past) week\b|本周|这周|这个星期|本星期/i, "week"],
  [/\b(this|past) month\b|本月|这个月/i, "month"],
];

/** The instant (ms) of local midnight starting the calendar day y-m-d in a time zone. */
function midnight(y: number, m: number, d: number, timezone: string): number {
  const wall = Date.UTC(y, m - 1, d);
  const offsetAt = (ms: number) => {
    const r = readClock(new Date(ms), timezone);
    const [yy, mm, dd] = r.date.split("-").map(Number) as [number, number, number];
    const [h, mi, s] = r.time.split(":").map(Number) as [number, number, number];
    return Date.UTC(yy, mm - 1, dd, h, mi, s) - ms;
  };
  // Twice, so a change of offset (daylight saving) between the guess and the answer is caught.
  const guess = wall - offsetAt(wall);
  return wall - offsetAt(guess);
}

/** The window a question's date words name, on the calendar of `now` in `timezone`; null when it has none. */
export function dateWindow(question: string, now: Date, timezone?: string): DateWindow | null {
  const found = WORDS.map(([re, span]) => ({ match: re.exec(question), span })).find((w) => w.match !== null);
  if (!found?.match) return null;
  const clock = readClock(now, timezone);
  const [y, m, d] = clock.date.split("-").map(Number) as [number, number, number];
  const zone = clock.timezone;
  const today = midnight(y, m, d, zone);
  const tomorrow = midnight(y, m, d + 1, zone);
  const weekday = new Date(Date.UTC(y, m - 1, d)).getUTCDay();
  const since = {
    today,
    yesterday: midnight(y, m, d - 1, zone),
    week: midnight(y, m, d - ((weekday + 6) % 7), zone),
    month: midnight(y, m, 1, zone),
  }[found.span];
  const until = found.span === "yesterday" ? today : tomorrow;
  const calendar = (day: number) => new Date(Date.UTC(y, m - 1, day)).toISOString().slice(0, 10);
  const first = { today: d, yesterday: d - 1, week: d - ((weekday + 6) % 7), month: 1 }[found.span];
  const days: [string, string] = [calendar(first), calendar(found.span === "yesterday" ? d - 1 : d)];
  return { since: new Date(since).toISOString(), until: new Date(until).toISOString(), words: found.match[0], days };
}
