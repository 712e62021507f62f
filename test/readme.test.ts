// The README is the front door: every `npx llmfab ...` example in it names a command that
// exists, flags that command takes, and paths that exist or that a documented command
// writes; every command has an example.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { Command } from "commander";
import { buildProgram } from "../src/cli/program.ts";
import { root } from "./cli-helpers.ts";

const readme = readFileSync(join(root, "README.md"), "utf8");

/** Each example command line, continuation lines joined, optional [brackets] opened. */
function examples(): string[][] {
  const lines = readme.split("\n");
  const out: string[][] = [];
  for (let i = 0; i < lines.length; i++) {
    let line = (lines[i] as string).trim();
    if (!line.startsWith("npx llmfab ")) continue;
    while (line.endsWith("\\")) line = `${line.slice(0, -1)} ${(lines[++i] as string).trim()}`;
    const words = line.replace(/[[\]]/g, " ").match(/"[^"]*"|\S+/g) ?? [];
    out.push(words.slice(2).map((w) => w.replace(/^"|"$/g, "")));
  }
  return out;
}

/** The subcommand an example runs, and the words after its name. */
function resolve(program: Command, words: string[]): { command: Command; rest: string[] } {
  let command = program;
  let i = 0;
  while (words[i]?.startsWith("--")) i += 2; // global options before the command
  for (;;) {
    const next = command.commands.find((c) => c.name() === words[i]);
    if (!next) break;
    command = next;
    i++;
  }
  return { command, rest: [...words.slice(0, i).filter((w) => w.startsWith("--")), ...words.slice(i)] };
}

const flagsOf = (c: Command) => c.options.flatMap((o) => [o.long, o.short]).filter((f): f is string => !!f);

/** Folders the quickstart writes under runs/quickstart. */
const QUICKSTART_WRITES = [
  "tokenizer",
  "pretrain",
  "pretrain/model",
  "synth.jsonl",
  "synth.heldout.jsonl",
  "chat",
  "rl-tasks.jsonl",
  "rl-tool-tasks.jsonl",
  "rl-sums",
  "rl",
];

describe("README", () => {
  const program = buildProgram();
  const all = examples();

  test("has examples", () => {
    assert.ok(all.length >= 20, `${all.length} examples`);
  });

  test("every example names a command and flags that command takes", () => {
    for (const words of all) {
      const { command, rest } = resolve(program, words);
      assert.notEqual(command, program, `no command in: llmfab ${words.join(" ")}`);
      const known = new Set([...flagsOf(command), ...flagsOf(program)]);
      for (const w of rest)
        if (w.startsWith("--"))
          assert.ok(known.has(w), `llmfab ${command.name()} has no ${w} (README: ${words.join(" ")})`);
    }
  });

  test("every path an example reads exists, or a documented command writes it", () => {
    const written = new Set<string>();
    for (const words of all) {
      const command = resolve(program, words).command.name();
      const out = words.includes("--out") ? words[words.indexOf("--out") + 1] : undefined;
      if (command === "quickstart") for (const p of QUICKSTART_WRITES) written.add(`${out ?? "runs/quickstart"}/${p}`);
      else if (command === "pretrain" && out) written.add(`${out}/model`);
      else if (out) written.add(out);
      if (command === "synth" && out) written.add(out.replace(/\.jsonl$/, ".heldout.jsonl"));
      // serve appends the chat page's feedback to --feedback
      if (command === "serve" && words.includes("--feedback"))
        written.add(words[words.indexOf("--feedback") + 1] as string);
    }
    for (const words of all)
      for (const [i, w] of words.entries()) {
        if (["--out", "--answers", "--prompt", "--text"].includes(words[i - 1] ?? "")) continue;
        if (words[0] === "serve" && words[i - 1] === "--feedback") continue;
        if (!/^(runs|configs|\.\.\/shared)\//.test(w)) continue;
        assert.ok(
          written.has(w) || existsSync(join(root, w)),
          `README example reads ${w}, which nothing writes: llmfab ${words.join(" ")}`,
        );
      }
  });

  test("every command has a section with an example", () => {
    const documented = new Set(all.map((w) => resolve(program, w).command));
    const commands = program.commands.flatMap((c) => (c.commands.length ? c.commands : [c]));
    for (const c of commands)
      assert.ok(
        documented.has(c),
        `no README example for llmfab ${c.parent === program ? "" : `${c.parent?.name()} `}${c.name()}`,
      );
  });
});
