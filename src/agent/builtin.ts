// The built-in tools by name, for --tools and the server.
import { calculatorTool } from "./calculator.ts";
import { clockTool } from "./clock.ts";
import type { Tool } from "./tool.ts";

export const BUILTIN_TOOLS = ["clock", "calculator"] as const;

/** A fixed clock for tests and evaluations: the moment it reads, and its time zone. */
export interface FixedClock {
  now: () => Date;
  timezone?: string;
}

/** The named built-in tools; an unknown name is an error that lists the known ones. */
export function builtinTools(names: string[], clock?: FixedClock): Tool[] {
  return names.map((name) => {
    if (name === "clock") return clockTool(clock?.now, clock?.timezone);
    if (name === "calculator") return calculatorTool();
    throw new Error(`unknown tool "${name}" (built in: ${BUILTIN_TOOLS.join(", ")})`);
  });
}
