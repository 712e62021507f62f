// The calculator tool: arithmetic and common functions with mathjs, in a restricted form.
// The expression is parsed, then every node of its tree is checked against an allowlist
// before anything runs: numbers, the operators, a fixed set of functions and constants,
// and small array literals. No assignments or function definitions (so no recursion),
// no property access, strings, objects, ranges or matrix builders (so no huge allocations
// and no prototype tricks), no import/createUnit/evaluate/parse. Inputs and outputs are
// bounded; every refusal is a ToolError the model reads as the tool's answer.
import { all, create, type MathNode } from "mathjs";
import { z } from "zod";
import { defineTool, type Tool, ToolError } from "./tool.ts";

export const MAX_EXPRESSION = 500;
const MAX_ARRAY = 1000;
const MAX_RESULT = 1000;
/** factorial, combinations and permutations loop over their arguments: bound them */
const MAX_COUNTING_ARGUMENT = 10_000;

const FUNCTIONS = new Set(
  [
    "abs sqrt cbrt nthRoot exp expm1 log log10 log2 log1p pow hypot",
    "sin cos tan asin acos atan atan2 sinh cosh tanh sec csc cot",
    "round floor ceil fix sign mod gcd lcm min max",
    "sum prod mean median mode std variance",
    "factorial combinations permutations isPrime",
  ]
    .join(" ")
    .split(" "),
);
const COUNTING = new Set(["factorial", "combinations", "permutations"]);
const CONSTANTS = new Set(["pi", "e", "tau", "phi", "i", "Infinity"]);
const OPERATORS = new Set([
  "add",
  "subtract",
  "multiply",
  "divide",
  "pow",
  "mod",
  "unaryMinus",
  "unaryPlus",
  "factorial",
  "dotMultiply",
  "dotDivide",
  "dotPow",
  "equal",
  "unequal",
  "smaller",
  "larger",
  "smallerEq",
  "largerEq",
  "and",
  "or",
  "not",
]);

const math = create(all);

/** Why a node may not run, or null. */
function refusal(node: MathNode): string | null {
  const n = node as MathNode & {
    fn?: string | { name?: string; type?: string };
    name?: string;
    value?: unknown;
    items?: MathNode[];
    args?: MathNode[];
  };
  switch (node.type) {
    case "ConstantNode":
      return typeof n.value === "number" ? null : "only numbers are allowed (no strings or other values)";
    case "SymbolNode":
      return CONSTANTS.has(n.name ?? "") ? null : `unknown name "${n.name}" (constants: ${[...CONSTANTS].join(", ")})`;
    case "OperatorNode": {
      const fn = typeof n.fn === "string" ? n.fn : "";
      return OPERATORS.has(fn) ? null : `the operator ${fn} is not allowed`;
    }
    case "ParenthesisNode":
    case "ConditionalNode":
      return null;
    case "ArrayNode":
      return (n.items?.length ?? 0) <= MAX_ARRAY ? null : `arrays hold at most ${MAX_ARRAY} numbers`;
    case "FunctionNode": {
      const fn = n.fn as { type?: string; name?: string } | undefined;
      const name = fn?.name ?? "";
      if (!FUNCTIONS.has(name)) return `the function ${name || "(expression)"} is not available`;
      return fn?.type === "SymbolNode" ? null : "calling methods is not allowed";
    }
    case "FunctionAssignmentNode":
      return "defining functions is not allowed";
    case "AssignmentNode":
      return "assigning variables is not allowed";
    case "BlockNode":
      return "give one expression (no ; or several lines)";
    case "AccessorNode":
    case "IndexNode":
      return "indexing and property access are not allowed";
    case "RangeNode":
      return "ranges (a:b) are not allowed";
    case "ObjectNode":
      return "objects are not allowed";
    default:
      return `${node.type} is not allowed`;
  }
}

/** The counting functions' bounded versions, under the names calls to them are rewritten to. */
type Counting = (...args: number[]) => unknown;
const boundedScope = new Map<string, Counting>(
  [...COUNTING].map((name) => {
    const fn = (math as unknown as Record<string, Counting>)[name] as Counting;
    const bounded = (...args: number[]) => {
      if (args.some((a) => typeof a !== "number" || Math.abs(a) > MAX_COUNTING_ARGUMENT))
        throw new ToolError(`${name} takes numbers up to ${MAX_COUNTING_ARGUMENT}`);
      return fn(...args);
    };
    return [`bounded_${name}`, bounded];
  }),
);

/** Evaluates an arithmetic expression, or throws a ToolError saying why not. */
export function calculate(expression: string): string {
  if (expression.length > MAX_EXPRESSION)
    throw new ToolError(`the expression is ${expression.length} characters; at most ${MAX_EXPRESSION}`);
  let tree: MathNode;
  try {
    tree = math.parse(expression);
  } catch (e) {
    throw new ToolError(`cannot parse the expression: ${(e as Error).message}`);
  }
  tree.traverse((node, path) => {
    if (path === "fn") return; // a function's name: checked on its FunctionNode
    const why = refusal(node);
    if (why) throw new ToolError(why);
  });
  let value: unknown;
  try {
    value = evaluateWithCounting(tree);
  } catch (e) {
    throw e instanceof ToolError ? e : new ToolError(`cannot evaluate: ${(e as Error).message}`);
  }
  if (typeof value === "number" && !Number.isFinite(value))
    throw new ToolError(Number.isNaN(value) ? "the result is not a number" : "the result is too large (not finite)");
  // Plain notation below 1e14 (all 14 significant digits shown): 657410, not 6.5741e+5.
  const text = math.format(value, { precision: 14, lowerExp: -7, upperExp: 14 });
  if (text.length > MAX_RESULT) throw new ToolError(`the result is longer than ${MAX_RESULT} characters`);
  return text;
}

/** Calls to the counting functions go through their bounded versions in the scope. */
function evaluateWithCounting(tree: MathNode): unknown {
  const rewritten = tree.transform((node) => {
    const n = node as MathNode & { fn?: string | { name?: string }; args?: MathNode[] };
    const name =
      node.type === "OperatorNode" ? n.fn : node.type === "FunctionNode" ? (n.fn as { name?: string }).name : "";
    if (typeof name === "string" && COUNTING.has(name))
      return new math.FunctionNode(new math.SymbolNode(`bounded_${name}`), n.args ?? []); // n! too
    return node;
  });
  return rewritten.compile().evaluate(boundedScope);
}

const args = z
  .object({
    expression: z.string().max(MAX_EXPRESSION).describe('e.g. "12 * (3 + 4)" or "sqrt(2)"'),
  })
  .strict();

export function calculatorTool(): Tool {
  return defineTool(
    "calculator",
    "Evaluates arithmetic: + - * / ^ %, parentheses, sqrt, log, sin, round, min, max, mean.",
    args,
    (a) => calculate(a.expression),
  );
}
