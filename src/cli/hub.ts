// Models from the Hugging Face Hub: `llmfab pull org/name[@revision]`, and org/name in
// place of a model directory anywhere --model is taken (fetched into the shared cache
// first, or found there).
import { existsSync } from "node:fs";
import cliProgress from "cli-progress";
import { type Command, Option } from "commander";
import { GGUF_TYPES, type GgufType } from "../hub/gguf.ts";
import {
  cachedSnapshot,
  hubSettings,
  type ModelRef,
  type PullProgress,
  type PullResult,
  parseModelRef,
  pullModel,
} from "../hub/pull.ts";
import { modelDirArg } from "./options.ts";

/** A progress bar per file on a terminal; one line per finished file elsewhere. */
function progressPrinter(): { update(p: PullProgress): void; stop(): void } {
  if (!process.stderr.isTTY) {
    return {
      update: (p) => {
        if (p.bytes === p.total) process.stderr.write(`fetched ${p.file} (${p.total.toLocaleString()} bytes)\n`);
      },
      stop: () => {},
    };
  }
  const bars = new cliProgress.MultiBar(
    { format: "{file} {bar} {percentage}% | {value}/{total} bytes", stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  const byFile = new Map<string, cliProgress.SingleBar>();
  return {
    update: (p) => {
      const bar = byFile.get(p.file) ?? bars.create(p.total, 0, { file: p.file });
      byFile.set(p.file, bar);
      bar.update(p.bytes, { file: p.file });
    },
    stop: () => bars.stop(),
  };
}

async function pullWithProgress(ref: ModelRef): Promise<PullResult> {
  const progress = progressPrinter();
  try {
    return await pullModel(ref, hubSettings(), (p) => progress.update(p));
  } finally {
    progress.stop();
  }
}

/**
 * The local directory of a --model value: itself, the directory a .gguf file is read into,
 * or the cached snapshot of org/name (pulled if absent).
 */
export async function resolveModelOption(command: Command): Promise<void> {
  const value = command.opts<{ model?: unknown }>().model;
  if (typeof value !== "string") return;
  if (value.endsWith(".gguf") && existsSync(value)) {
    const { ggufModelDir } = await import("../hub/gguf-model.ts");
    command.setOptionValue("model", ggufModelDir(value));
    return;
  }
  if (existsSync(value)) return;
  const ref = parseModelRef(value);
  if (!ref) return;
  const snapshot = cachedSnapshot(hubSettings(), ref) ?? (await pullWithProgress(ref)).snapshot;
  command.setOptionValue("model", snapshot);
}

export function registerHubCommands(program: Command): void {
  program
    .command("export")
    .description("write a model as a GGUF file for llama.cpp, Ollama and LM Studio")
    .requiredOption("--model <dir>", "model directory (a LoRA adapter is merged into its base first)", modelDirArg)
    .addOption(new Option("--format <format>", "output format").choices(["gguf"]).default("gguf"))
    .addOption(
      new Option("--type <type>", "tensor type of the weight matrices").choices([...GGUF_TYPES]).default("f16"),
    )
    .requiredOption("--out <file>", "the .gguf file to write")
    .action(async (o: { model: string; type: GgufType; out: string }) => {
      const { exportGguf } = await import("../hub/gguf-model.ts");
      const r = exportGguf(o.model, o.type, o.out);
      const fallback = r.f16Fallbacks.length
        ? ` (${r.f16Fallbacks.length} kept in f16: rows not a multiple of 32)`
        : "";
      console.log(`wrote ${o.out}: ${r.tensors} tensors, ${o.type}${fallback}, ${r.bytes.toLocaleString()} bytes`);
    });

  program
    .command("pull")
    .description("download a model from the Hugging Face Hub into its cache (shared with Python's huggingface_hub)")
    .argument("<model>", "org/name, optionally @revision (a branch, tag or commit)")
    .action(async (spec: string) => {
      const ref = parseModelRef(spec);
      if (!ref) throw new Error(`${spec}: expected org/name or org/name@revision`);
      const r = await pullWithProgress(ref);
      const fetched = r.downloaded.length ? `fetched ${r.downloaded.length} files` : "already in the cache";
      console.log(`${ref.name}@${ref.revision} (${r.commit.slice(0, 12)}): ${fetched}\n${r.snapshot}`);
    });
}
