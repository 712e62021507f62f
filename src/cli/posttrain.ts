// `llmfab sft`, `llmfab merge` and `llmfab synth`.
import type { Command } from "commander";
import { writeDirAtomic } from "../io/atomic.ts";
import { modelFiles } from "../model/directory.ts";
import { mergeAdapter } from "../model/lora.ts";
import { loadWithAdapter } from "../model/peft.ts";
import { refuseExisting, runSftCommand, type SftCommand, tokenizerFilesOf } from "../pipeline/sft.ts";
import { synthesizeFromSotu, writeSynthetic } from "../pipeline/synth.ts";
import { parseMix, type SynthTask } from "../posttrain/synth.ts";

export function registerPosttrainCommands(program: Command): void {
  program
    .command("sft")
    .description("supervised fine-tuning on chat conversations (full, top blocks only, or LoRA)")
    .requiredOption("--model <dir>", "base model directory")
    .requiredOption("--data <files...>", "conversations: OpenAI chat, ShareGPT or Alpaca JSONL")
    .option("--mode <mode>", "full | freeze | lora", "full")
    .option("--trainable-layers <n>", "freeze mode: number of top blocks that train", (v) => Number(v), 1)
    .option("--train-head", "freeze mode: the final norm and an untied head train too", false)
    .option("--lora-rank <r>", "LoRA rank", (v) => Number(v), 8)
    .option("--lora-alpha <a>", "LoRA alpha (the update is scaled by alpha / rank)", (v) => Number(v), 16)
    .option("--lora-dropout <p>", "dropout on the adapters' input", (v) => Number(v), 0.05)
    .option("--lora-targets <names...>", "layers that get adapters (default: attention and MLP projections)")
    .option("--lora-fa", "LoRA-FA: freeze A after init, train only B", false)
    .option("--epochs <n>", "passes over the data", (v) => Number(v), 3)
    .option("--batch-size <n>", "conversations per step", (v) => Number(v), 16)
    .option("--lr <lr>", "peak learning rate", (v) => Number(v), 1e-3)
    .option("--seed <n>", "random seed", (v) => Number(v), 1337)
    .option("--out <dir>", "output: a model directory (full, freeze) or a PEFT adapter directory (lora)", "runs/sft")
    .action((o: SftCommand) => {
      if (!["full", "freeze", "lora"].includes(o.mode))
        throw new Error(`--mode must be full, freeze or lora, got ${o.mode}`);
      const r = runSftCommand(o);
      console.log(
        `fine-tuned ${r.trainableParams.toLocaleString()} parameters for ${r.steps} steps (final loss ${r.finalLoss.toFixed(4)})`,
      );
      console.log(`saved to ${r.out}`);
    });

  program
    .command("merge")
    .description("fold a LoRA adapter into its base model")
    .requiredOption("--adapter <dir>", "PEFT adapter directory (from llmfab sft --mode lora)")
    .option("--model <dir>", "base model (default: the adapter's base_model_name_or_path)")
    .requiredOption("--out <dir>", "output model directory")
    .action((o: { adapter: string; model?: string; out: string }) => {
      refuseExisting(o.out);
      const model = loadWithAdapter(o.adapter, o.model);
      const layout = model.config.arch === "gpt2" ? "in-out" : "out-in";
      for (const [name, adapter] of model.adapters)
        mergeAdapter(model.params.get(name) as NonNullable<ReturnType<typeof model.params.get>>, layout, adapter);
      const count = model.adapters.size;
      model.adapters.clear();
      writeDirAtomic(o.out, { ...modelFiles(model), ...tokenizerFilesOf(o.adapter) });
      console.log(`merged ${count} adapters into ${o.out}`);
    });

  program
    .command("synth")
    .description("generate synthetic chat conversations (and a held-out split) for post-training")
    .requiredOption("--out <file>", "training JSONL; the held-out split goes beside it as <name>.heldout.jsonl")
    .option("--n <n>", "training conversations", (v) => Number(v), 5000)
    .option("--seed <n>", "random seed", (v) => Number(v), 1)
    .option(
      "--mix <weights>",
      "conversations per task in each round of the training split, e.g. arithmetic=18 (default identity=1,weekday=2,date=1,arithmetic=3,in-context=3)",
      parseMix,
    )
    .option("--heldout <n>", "held-out conversations drawn (identity ones are then dropped; default n / 10)", (v) =>
      Number(v),
    )
    .action(
      (o: { out: string; n: number; seed: number; mix?: Partial<Record<SynthTask, number>>; heldout?: number }) => {
        const { train, heldout } = synthesizeFromSotu(o.n, o.seed, { mix: o.mix, heldout: o.heldout });
        const heldoutPath = writeSynthetic(o.out, { train, heldout });
        console.log(`${train.length} training conversations in ${o.out}, ${heldout.length} held-out in ${heldoutPath}`);
      },
    );
}
