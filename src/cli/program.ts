// The llmfab command line: every command, its options and their checks. Commands load
// what they run only when they run (dynamic imports), so `llmfab --help` stays quick.
// Global options (--threads, --precision) may stand anywhere on the line.
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { Command, Option } from "commander";
import { localRanks } from "../backend/mpi.ts";
import { registerCorpusCommands } from "./corpus.ts";
import { registerEvalCommands } from "./evaluate.ts";
import { registerHubCommands, resolveModelOption } from "./hub.ts";
import { registerOcrCommands } from "./ocr.ts";
import { numberArg } from "./options.ts";
import { registerPosttrainCommands } from "./posttrain.ts";
import { registerPretrainCommands } from "./pretrain.ts";
import { registerPromptCommands } from "./prompt.ts";
import { registerRetrievalCommands } from "./retrieval.ts";
import { registerServeCommands } from "./serve.ts";
import { registerTokenizerCommands } from "./tokenizer.ts";

export type PrecisionChoice = "auto" | "fp32" | "bf16";

export interface GlobalOptions {
  threads?: number;
  precision?: PrecisionChoice;
}

/** The compute settings every command runs with, read after parsing. */
export interface Runtime {
  threads(): number;
  precision(): PrecisionChoice | undefined;
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

export function buildProgram(): Command {
  const program = new Command("llmfab")
    .description("Make your own large language model, end to end.")
    .version(packageVersion(), "-V, --version", "print the version")
    .addOption(
      new Option(
        "--threads <n>",
        "compute threads (default: all cores; under mpirun, per rank: the cores over the ranks on the machine)",
      ).argParser(numberArg("threads")),
    )
    .addOption(
      new Option("--precision <p>", "matmul precision (auto: bf16 where the CPU has avx512_bf16)").choices([
        "auto",
        "fp32",
        "bf16",
      ]),
    )
    .configureHelp({ showGlobalOptions: true })
    .hook("preAction", async (_program, command) => {
      await resolveModelOption(command);
      const { native } = await import("../backend/native.ts");
      const { resolvePrecision, setPrecision } = await import("../tensor/index.ts");
      native.setThreads(runtime.threads());
      setPrecision(resolvePrecision(runtime.precision() ?? "auto"));
    });
  const runtime: Runtime = {
    // Under mpirun the ranks on a machine share its cores.
    threads: () => program.opts<GlobalOptions>().threads ?? Math.max(1, Math.floor(cpus().length / localRanks())),
    precision: () => program.opts<GlobalOptions>().precision,
  };
  registerPretrainCommands(program, runtime);
  registerEvalCommands(program);
  registerCorpusCommands(program, runtime);
  registerTokenizerCommands(program, runtime);
  registerPosttrainCommands(program, runtime);
  registerServeCommands(program, runtime);
  registerHubCommands(program);
  registerRetrievalCommands(program);
  registerOcrCommands(program);
  registerPromptCommands(program);
  return program;
}
