// `llmfab sft`, `llmfab dpo`, `llmfab rl`, `llmfab merge` and `llmfab synth`.
import { type Command, Option } from "commander";
import type { DpoCommand } from "../pipeline/dpo.ts";
import type { RlCommand } from "../pipeline/rl.ts";
import type { SftCommand } from "../pipeline/sft.ts";
import type { SynthTask } from "../posttrain/synth.ts";
import { modelDirArg, numberArg } from "./options.ts";
import type { Runtime } from "./program.ts";

type SftFlags = Omit<SftCommand, "threads">;

/** What SFT, DPO and RL share: the model, what trains (full, freeze, LoRA), warmup, the seed, the output. */
function trainingOptions(command: Command, out: string): Command {
  return command
    .requiredOption("--model <dir>", "base model directory", modelDirArg)
    .option("--mode <mode>", "full | freeze | lora", "full")
    .option("--trainable-layers <n>", "freeze mode: number of top blocks that train", numberArg("trainableLayers"), 1)
    .option("--train-head", "freeze mode: the final norm and an untied head train too", false)
    .option("--lora-rank <r>", "LoRA rank", numberArg("loraRank"), 8)
    .option("--lora-alpha <a>", "LoRA alpha (the update is scaled by alpha / rank)", numberArg("loraAlpha"), 16)
    .option("--lora-dropout <p>", "dropout on the adapters' input", numberArg("dropout"), 0.05)
    .option("--lora-targets <names...>", "layers that get adapters (default: attention and MLP projections)")
    .option("--lora-fa", "LoRA-FA: freeze A after init, train only B", false)
    .option("--warmup <n>", "learning-rate warmup steps", numberArg("warmup"), 20)
    .option("--seed <n>", "random seed", numberArg("seed"), 1337)
    .option(
      "--zero-stage <n>",
      "under mpirun, 1 shards AdamW's moments over the ranks (ZeRO stage 1)",
      numberArg("zeroStage"),
      0,
    )
    .addOption(
      new Option("--save-dtype <dtype>", "weights on disk (full and freeze modes)")
        .choices(["float32", "bfloat16"])
        .default("float32"),
    )
    .option(
      "--out <dir>",
      "output: a model directory (full, freeze) or a PEFT adapter directory (lora), with metrics.jsonl",
      out,
    );
}

/** SFT's and DPO's length: epochs over the data in batches, or a number of steps. */
function epochOptions(command: Command, batchHelp: string): Command {
  return command
    .option("--epochs <n>", "passes over the data (0.5: half of one)", numberArg("epochs"), 3)
    .option("--max-steps <n>", "stop after this many steps", numberArg("steps"))
    .option("--batch-size <n>", batchHelp, numberArg("batchSize"), 16);
}

function checkMode(mode: string): void {
  if (!["full", "freeze", "lora"].includes(mode)) throw new Error(`--mode must be full, freeze or lora, got ${mode}`);
}

export function registerPosttrainCommands(program: Command, runtime: Runtime): void {
  epochOptions(
    trainingOptions(
      program
        .command("sft")
        .description("supervised fine-tuning on chat conversations (full, top blocks only, or LoRA)"),
      "runs/sft",
    ),
    "conversations per micro-batch",
  )
    .requiredOption("--data <files...>", "conversations: OpenAI chat, ShareGPT or Alpaca JSONL")
    .option("--val-data <files...>", "validation conversations (default: --val-fraction of --data held out)")
    .option("--val-fraction <f>", "share of --data held out for the validation loss", numberArg("valFraction"), 0.05)
    .option("--grad-accum <n>", "micro-batches per optimizer step", numberArg("gradAccum"), 1)
    .option("--lr <lr>", "peak learning rate", numberArg("lr"), 1e-3)
    .option("--eval-interval <n>", "steps between validation losses (default: ten per run)", numberArg("steps"))
    .option(
      "--vision-encoder <new|dir>",
      "give a text model eyes: a fresh ViT encoder and projector (new), or those of a vision model directory",
    )
    .addOption(
      new Option("--stage <stage>", "vision models: what trains — projector, vision (encoder + projector) or full")
        .choices(["projector", "vision", "full"])
        .default("full"),
    )
    .action(async (o: SftFlags) => {
      checkMode(o.mode);
      const { runSftCommand } = await import("../pipeline/sft.ts");
      const r = await runSftCommand({ ...o, threads: runtime.threads() });
      if ((await import("../backend/mpi.ts")).communicator().rank !== 0) return; // rank 0 reports for the job
      const val = r.valLoss === null ? "" : `, validation loss ${r.valLoss.toFixed(4)}`;
      console.log(
        `fine-tuned ${r.trainableParams.toLocaleString()} parameters for ${r.steps} steps (final loss ${r.finalLoss.toFixed(4)}${val})`,
      );
      console.log(`saved to ${r.out}`);
    });

  epochOptions(
    trainingOptions(
      program.command("dpo").description("preference tuning (DPO) on chosen/rejected answer pairs"),
      "runs/dpo",
    ),
    "preference pairs per step",
  )
    .requiredOption("--data <files...>", "preference pairs: TRL's prompt/chosen/rejected JSONL (text or messages)")
    .option("--val-fraction <f>", "share of the pairs held out for preference accuracy", numberArg("valFraction"), 0.1)
    .option("--lr <lr>", "peak learning rate", numberArg("lr"), 5e-5)
    .option("--beta <b>", "DPO's beta: how far from the reference the policy may move", numberArg("lr"), 0.1)
    .action(async (o: Omit<DpoCommand, "threads">) => {
      checkMode(o.mode);
      const { runDpoCommand } = await import("../pipeline/dpo.ts");
      const r = runDpoCommand({ ...o, threads: runtime.threads() });
      const held = r.heldOut
        ? `; held-out preference accuracy ${(100 * r.heldOut.accuracy).toFixed(1)}%, mean reward margin ${r.heldOut.margin.toFixed(3)}`
        : "";
      console.log(`DPO: ${r.steps} steps${held}`);
      console.log(`saved to ${r.out}`);
    });

  trainingOptions(
    program.command("rl").description("reinforcement learning (GRPO) from a reward on sampled answers"),
    "runs/rl",
  )
    .requiredOption(
      "--tasks <files...>",
      "conversations whose last assistant turn is the expected answer (llmfab synth)",
    )
    .option(
      "--reward <name|file>",
      "how an answer scores: exact, numeric, contains, or a module (./reward.ts)",
      "exact",
    )
    .option("--reward-timeout <s>", "seconds a reward module may take per answer", numberArg("lr"), 10)
    .option("--steps <n>", "optimizer steps", numberArg("steps"), 50)
    .option("--prompts-per-step <n>", "prompts sampled per step", numberArg("batchSize"), 8)
    .option("--group <n>", "answers sampled per prompt", numberArg("batchSize"), 8)
    .option("--temperature <t>", "sampling temperature", numberArg("temperature"), 1)
    .option("--max-tokens <n>", "longest answer", numberArg("maxTokens"), 64)
    .option("--scale-by-std", "divide advantages by the group's std (GRPO's original form)", false)
    .option(
      "--updates <n>",
      "optimizer updates per batch of samples (PPO epochs; ratios clipped after the first)",
      numberArg("steps"),
      1,
    )
    .option("--clip <eps>", "PPO clipping range of the ratio pi / pi_old", numberArg("clip"), 0.2)
    .option("--kl-beta <b>", "weight of a KL penalty against the starting model (0: none)", numberArg("klBeta"), 0)
    .option("--checkpoint-interval <n>", "save OUT/checkpoint every n steps (default: steps / 10)", numberArg("steps"))
    .option("--resume", "go on from OUT/checkpoint exactly where it was saved", false)
    .option("--lr <lr>", "learning rate", numberArg("lr"), 1e-5)
    .action(async (o: Omit<RlCommand, "threads">) => {
      checkMode(o.mode);
      const { runRlCommand } = await import("../pipeline/rl.ts");
      const r = runRlCommand({ ...o, threads: runtime.threads() });
      if ((await import("../backend/mpi.ts")).communicator().rank !== 0) return; // rank 0 reports for the job
      console.log(
        `GRPO: ${r.steps} steps; mean reward ${r.firstReward.toFixed(3)} in the first step, ${r.lastReward.toFixed(3)} in the last`,
      );
      console.log(`saved to ${r.out}`);
    });

  program
    .command("feedback")
    .description("what people said about answers on the chat page")
    .command("export")
    .description("turn feedback into preference pairs for llmfab dpo")
    .option("--data <file>", "the server's feedback file", "runs/feedback.jsonl")
    .addOption(new Option("--format <format>", "output format").choices(["dpo"]).default("dpo"))
    .requiredOption("--out <file>", "preference pairs (JSONL, TRL's message format)")
    .action(async (o: { data: string; out: string }) => {
      const { feedbackPairs } = await import("../posttrain/feedback.ts");
      const { writeFileAtomic } = await import("../io/atomic.ts");
      const pairs = feedbackPairs(o.data);
      writeFileAtomic(o.out, pairs.map((p) => `${JSON.stringify(p)}\n`).join(""));
      console.log(`${pairs.length} preference pairs written to ${o.out}`);
    });

  program
    .command("merge")
    .description("fold a LoRA adapter into its base model")
    .requiredOption("--adapter <dir>", "PEFT adapter directory (from llmfab sft --mode lora)")
    .option("--model <dir>", "base model (default: the adapter's base_model_name_or_path)", modelDirArg)
    .requiredOption("--out <dir>", "output model directory")
    .addOption(
      new Option("--save-dtype <dtype>", "weights on disk").choices(["float32", "bfloat16"]).default("float32"),
    )
    .action(async (o: { adapter: string; model?: string; out: string; saveDtype: "float32" | "bfloat16" }) => {
      const { refuseExisting, writeDirAtomic } = await import("../io/atomic.ts");
      const { modelFiles } = await import("../model/directory.ts");
      const { loadWithAdapter, mergeIntoBase } = await import("../model/peft.ts");
      const { tokenizerFilesOf } = await import("../pipeline/codec.ts");
      refuseExisting(o.out);
      const model = loadWithAdapter(o.adapter, o.model);
      const count = mergeIntoBase(model);
      const dtype = o.saveDtype === "bfloat16" ? "BF16" : "F32";
      writeDirAtomic(o.out, { ...modelFiles(model, dtype), ...tokenizerFilesOf(o.adapter) });
      console.log(`merged ${count} adapters into ${o.out}`);
    });

  program
    .command("synth")
    .description("generate synthetic chat conversations (and a held-out split) for post-training")
    .requiredOption("--out <file>", "training JSONL; the held-out split goes beside it as <name>.heldout.jsonl")
    .option("--n <n>", "training conversations", numberArg("conversations"), 5000)
    .option("--seed <n>", "random seed", numberArg("seed"), 1)
    .option(
      "--mix <weights>",
      "conversations per task in each round of the training split, e.g. arithmetic=18 (default identity=1,weekday=2,date=1,arithmetic=3,in-context=3)",
    )
    .option(
      "--heldout <n>",
      "held-out conversations drawn (identity ones are then dropped; default n / 10)",
      numberArg("heldout"),
    )
    .option("--vision", "image conversations instead: shapes, colours, positions, printed numbers, MNIST digits")
    .option(
      "--mnist <n>",
      "--vision: MNIST training conversations (8,500 digits kept for training, each moved up to 2 pixels; more repeats them)",
      numberArg("conversations"),
      8500,
    )
    .action(
      async (o: {
        out: string;
        n: number;
        seed: number;
        mix?: string;
        heldout?: number;
        vision?: boolean;
        mnist: number;
      }) => {
        if (o.vision) {
          const { synthesizeVisionFile } = await import("../pipeline/synth.ts");
          const r = synthesizeVisionFile(o.out, o.n, o.mnist, o.heldout, o.seed);
          console.log(`${r.train} training image conversations in ${o.out}, ${r.heldout} held-out in ${r.heldoutPath}`);
          return;
        }
        const { parseMix } = await import("../posttrain/synth.ts");
        const { synthesizeFromSotu, writeSynthetic } = await import("../pipeline/synth.ts");
        const mix: Partial<Record<SynthTask, number>> | undefined = o.mix === undefined ? undefined : parseMix(o.mix);
        const { train, heldout } = synthesizeFromSotu(o.n, o.seed, { mix, heldout: o.heldout });
        const heldoutPath = writeSynthetic(o.out, { train, heldout });
        console.log(`${train.length} training conversations in ${o.out}, ${heldout.length} held-out in ${heldoutPath}`);
      },
    );
}
