// `llmfab pretrain` and `llmfab quickstart`.
import { mkdirSync } from "node:fs";
import type { Command } from "commander";
import { jsonLine } from "../io/json.ts";
import { applyOverrides, setArg } from "./options.ts";
import type { Runtime } from "./program.ts";

interface PretrainFlags {
  config: string;
  data?: string;
  out: string;
  resume: boolean;
  json: boolean;
  set?: [string, unknown][];
}

export function registerPretrainCommands(program: Command, runtime: Runtime): void {
  program
    .command("pretrain")
    .description("pretrain a model on a text corpus (nanoGPT-style)")
    .requiredOption("--config <file>", "YAML config (see configs/)")
    .option("--data <path>", "corpus: a text file, or a built-in name (sotu, tinyshakespeare); overrides the config")
    .option("--set <key=value>", "override a config value, e.g. --set train.max_iters=50 (repeatable)", setArg)
    .option(
      "--out <dir>",
      "run directory (checkpoints in <dir>/model, metrics in <dir>/metrics.jsonl)",
      "runs/pretrain",
    )
    .option("--resume", "continue the run in --out from its last checkpoint", false)
    .option("--json", "print one JSON line with the results at the end", false)
    .action(async (o: PretrainFlags) => {
      const { readPretrainConfig } = await import("../train/config.ts");
      const { runPretrain } = await import("../pipeline/pretrain.ts");
      const config = readPretrainConfig(o.config, (value) => applyOverrides(value, o.set ?? []));
      const precision = runtime.precision();
      if (precision) config.train.precision = precision;
      const r = await runPretrain({
        config,
        data: o.data,
        out: o.out,
        resume: o.resume,
        quiet: false,
        threads: runtime.threads(),
      });
      // Under mpirun, rank 0 reports for the job.
      if ((await import("../backend/mpi.ts")).communicator().rank !== 0) return;
      if (o.json) {
        const { samples: _, modelDir, wallSeconds, tokPerSec, ...rest } = r;
        process.stdout.write(jsonLine({ ...rest, wallS: wallSeconds, tokPerS: tokPerSec, out: modelDir }));
        return;
      }
      console.log(`\nval loss ${r.valLoss.toFixed(4)}, train loss ${r.trainLoss.toFixed(4)} after ${r.steps} steps`);
      console.log(
        `${r.tokens.toLocaleString()} tokens in ${r.wallSeconds.toFixed(1)} s (${Math.round(r.tokPerSec)} tok/s)`,
      );
      r.samples.forEach((s, i) => {
        console.log(`\n--- sample ${i + 1} ---\n${s}`);
      });
      console.log(`\nmodel directory: ${r.modelDir}`);
    });

  program
    .command("quickstart")
    .description(
      "the whole pipeline on the built-in corpus: chat data, tokenizer, pretraining, SFT, RL, evaluation (npm start)",
    )
    .option("--out <dir>", "run directory", "runs/quickstart")
    .action(async (o: { out: string }) => {
      const { runQuickstart, scoreTable } = await import("../pipeline/quickstart.ts");
      mkdirSync(o.out, { recursive: true });
      const r = await runQuickstart({
        out: o.out,
        threads: runtime.threads(),
        log: (line) => console.log(`\n== ${line}`),
      });
      console.log(`\n--- a sample from the base model ---\n${r.samples[0] ?? ""}`);
      console.log("\nheld-out chat tasks, exact-match accuracy:\n");
      console.log(scoreTable(r.columns));
      const [chat, rl] = r.arithmeticPassAt8.map((p) => `${(100 * p).toFixed(1)}%`);
      console.log(`\nheld-out arithmetic, pass@8 (8 answers at temperature 1): chat ${chat}, rl ${rl}`);
      console.log(`\nbase model: ${r.baseModel}\nchat model: ${r.chatModel}\nRL model:   ${r.rlModel}`);
      // The RL model is the finished assistant: the chat model after its reward stages.
      console.log(`talk to it:  npx llmfab chat --model ${r.rlModel}`);
      console.log(`or serve it: npx llmfab serve --model ${r.rlModel}`);
    });
}
