// Parsers for command-line values: numbers checked against the shared ranges, model
// directories (or Hub names) checked once (so every command says the same about a missing model), and
// `--set key.path=value` overrides for config files.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { InvalidArgumentError } from "commander";
import { parse } from "yaml";
import { parseModelRef } from "../hub/pull.ts";
import { describeRange, inRange, RANGES, type RangeName } from "../options/ranges.ts";

/** A commander argument parser for a number in one of the shared ranges. */
export function numberArg(range: RangeName): (value: string) => number {
  return (value) => {
    const n = value.trim() === "" ? Number.NaN : Number(value);
    if (!inRange(n, RANGES[range])) throw new InvalidArgumentError(`It must be ${describeRange(RANGES[range])}.`);
    return n;
  };
}

/** What is wrong with a --model directory, or null: one message for every command. */
export function modelDirProblem(dir: string): string | null {
  if (!existsSync(dir)) return `${dir}: no such model directory`;
  if (!statSync(dir).isDirectory()) return `${dir}: not a directory (a model is a folder holding config.json)`;
  if (!existsSync(join(dir, "config.json")) && !existsSync(join(dir, "adapter_config.json")))
    return `${dir}: not a model directory (no config.json, nor adapter_config.json for a LoRA adapter)`;
  return null;
}

/**
 * A --model value: a model directory, a .gguf file (read into a directory before the
 * command runs), or org/name[@revision] on the Hugging Face Hub (fetched before it runs).
 */
export function modelDirArg(dir: string): string {
  if (!existsSync(dir) && parseModelRef(dir)) return dir;
  if (dir.endsWith(".gguf") && existsSync(dir) && statSync(dir).isFile()) return dir;
  const problem = modelDirProblem(dir);
  if (problem) throw new InvalidArgumentError(`${problem}.`);
  return dir;
}

/** Collects repeated `--set key.path=value` flags; values are YAML scalars (50, 3e-4, true, text). */
export function setArg(value: string, previous: [string, unknown][] = []): [string, unknown][] {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError("expected key.path=value, e.g. train.max_iters=50.");
  const key = value.slice(0, eq).trim();
  if (!/^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$/.test(key))
    throw new InvalidArgumentError(`"${key}" is not a key path like train.max_iters.`);
  return [...previous, [key, parse(value.slice(eq + 1))]];
}

/** Applies --set overrides to a parsed config object (before it is validated). */
export function applyOverrides(config: unknown, overrides: [string, unknown][]): unknown {
  const root = (config ?? {}) as Record<string, unknown>;
  for (const [key, value] of overrides) {
    const path = key.split(".");
    let node = root;
    for (const part of path.slice(0, -1)) {
      const next = node[part];
      if (next !== undefined && (typeof next !== "object" || next === null || Array.isArray(next)))
        throw new Error(`--set ${key}: ${part} is not a section of the config`);
      node[part] ??= {};
      node = node[part] as Record<string, unknown>;
    }
    node[path[path.length - 1] as string] = value;
  }
  return root;
}
