// The built-in tools by name, for --tools and the server.
import { calculatorTool } from "./calculator.ts";
import { clockTool } from "./clock.ts";
import type { Tool } from "./tool.ts";

export const BUILTIN_TOOLS = ["clock", "calculator"] as const;

/** The named built-in tools; an unknown name is an error that lists the known ones. */
export function builtinTools(names: string[], now?: () => Date): Tool[] {
  return names.map((name) => {
    if (name === "clock") return clockTool(now);
    if (name === "calculator") return calculatorTool();
    throw new Error(`unknown tool "${name}" (built in: ${BUILTIN_TOOLS.join(", ")})`);
  });
}
