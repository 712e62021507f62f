// `llmfab rl`: GRPO on tasks written as conversations (llmfab synth's format): the prompt
// is the conversation up to its last assistant turn, that turn is the expected answer.
// Writes the trained model (or LoRA adapter) and metrics.jsonl.

import { createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { communicator } from "../backend/mpi.ts";
import { writeDirAtomic } from "../io/atomic.ts";
import { loadAnyModel } from "../model/peft.ts";
import { checkRange } from "../options/ranges.ts";
import { type Conversation, readConversations } from "../posttrain/data.ts";
import { type GrpoHooks, REWARDS, type Reward, type RlTask, runGrpo } from "../posttrain/grpo.ts";
import { loadRewardModule, type RewardModule } from "../posttrain/reward-module.ts";
import { loadTrainerState, STATE_JSON, saveTrainerState } from "../train/checkpoint.ts";
import { truncateMetrics } from "../train/pretrain.ts";
import { createReporter } from "../train/progress.ts";
import { type ChatCodec, loadChatCodec } from "./codec.ts";
import { checkSftCommand, loraOf, openMetrics, refuseFinishedOutput, type SftCommand, trainedFiles } from "./sft.ts";

export type RlCommand = Omit<
  SftCommand,
  "data" | "valData" | "valFraction" | "gradAccum" | "evalInterval" | "epochs" | "maxSteps" | "batchSize"
> & {
  tasks: string[];
  reward: string;
  steps: number;
  promptsPerStep: number;
  group: number;
  temperature: number;
  maxTokens: number;
  scaleByStd: boolean;
  /** optimizer updates per batch of samples (default 1) */
  updates?: number;
  /** PPO's clipping range (default 0.2) */
  clip?: number;
  /** KL penalty weight against the starting model (default 0: none) */
  klBeta?: number;
  /** seconds a reward module may take per answer */
  rewardTimeout?: number;
  /** save a checkpoint (in OUT/checkpoint) every this many steps (default: about ten times a run) */
  checkpointInterval?: number;
  /** go on from OUT/checkpoint, exactly where it was saved */
  resume?: boolean;
  /** tests only: fail after this step, as a crash would */
  interruptAfter?: number;
};

const CHECKPOINT_DIR = "checkpoint";

/** A digest of everything that decides a run's course, so --resume refuses a changed one. */
function rlDigest(o: RlCommand): string {
  // Where and how it runs (threads, ranks, a sharded optimizer) does not change its course.
  const {
    out: _o,
    threads: _t,
    quiet: _q,
    resume: _r,
    interruptAfter: _i,
    checkpointInterval: _c,
    zeroStage: _z,
    ...settings
  } = o;
  const tasks = o.tasks.map((f) => createHash("sha256").update(readFileSync(f)).digest("hex"));
  return createHash("sha256").update(JSON.stringify({ settings, tasks })).digest("hex").slice(0, 16);
}

/**
 * Tasks as GRPO takes them: the prompt is the conversation up to its last turn, rendered
 * with the tools it offers (a tool task's answer reads the tool's result), and that turn,
 * the assistant's, is the expected answer.
 */
export function encodeRlTasks(
  conversations: Conversation[],
  codec: ChatCodec,
  maxTokens: number,
  contextLength: number,
): RlTask[] {
  return conversations.map((c) => {
    const last = c.messages.at(-1);
    if (last?.role !== "assistant")
      throw new Error(`${c.source}: a task must end with the assistant's expected answer`);
    if (c.messages.some((m) => m.images?.length))
      throw new Error(
        `${c.source}: llmfab rl takes text tasks only (this one has images); train on them with llmfab sft`,
      );
    const prompt = codec.encode(codec.renderChat(c.messages.slice(0, -1), true, c.tools), true);
    if (prompt.length + maxTokens > contextLength)
      throw new Error(
        `${c.source}: ${prompt.length} prompt tokens + --max-tokens ${maxTokens} exceed the context of ${contextLength}`,
      );
    return { prompt, expected: last.content, source: c.source };
  });
}

export function runRlCommand(o: RlCommand): { out: string; steps: number; firstReward: number; lastReward: number } {
  checkSftCommand({ ...o, epochs: 1, batchSize: o.promptsPerStep, valFraction: 0 });
  checkRange("--steps", o.steps, "steps");
  checkRange("--group", o.group, "batchSize");
  const [updates, clip, klBeta] = [o.updates ?? 1, o.clip ?? 0.2, o.klBeta ?? 0];
  checkRange("--updates", updates, "steps");
  checkRange("--clip", clip, "clip");
  checkRange("--kl-beta", klBeta, "klBeta");
  if (o.group < 2) throw new Error("--group must be at least 2: advantages compare answers within a group");
  const builtin: Reward | undefined = Object.hasOwn(REWARDS, o.reward) ? REWARDS[o.reward] : undefined;
  if (!builtin && !/\.(ts|js|mjs)$/.test(o.reward))
    throw new Error(`--reward must be ${Object.keys(REWARDS).join(", ")} or a module file (.ts, .js), got ${o.reward}`);
  if (!builtin && !existsSync(o.reward)) throw new Error(`--reward ${o.reward}: no such file`);
  const checkpointDir = join(o.out, CHECKPOINT_DIR);
  if (o.resume && !existsSync(join(checkpointDir, STATE_JSON)))
    throw new Error(`${o.out}: no checkpoint to resume (${join(CHECKPOINT_DIR, STATE_JSON)} is missing)`);
  if (!o.resume) refuseFinishedOutput(o.out);
  const digest = rlDigest(o);
  const every = o.checkpointInterval ?? Math.max(1, Math.ceil(o.steps / 10));
  checkRange("--checkpoint-interval", every, "steps");
  const module = builtin ? null : loadRewardModule(o.reward, (o.rewardTimeout ?? 10) * 1000);
  const reward = builtin ?? (module as RewardModule).reward;
  const model = loadAnyModel(o.model);
  const codec = loadChatCodec(o.model);
  const tasks = encodeRlTasks(readConversations(o.tasks), codec, o.maxTokens, model.config.blockSize);
  const lora = loraOf(o, model);
  // Under mpirun every rank samples and trains on its share of the prompts; rank 0 alone writes.
  const lead = communicator().rank === 0;
  const { path: metricsPath, log } = lead ? openMetrics(o.out, o.resume) : { path: "", log: () => {} };
  const hooks: GrpoHooks = {
    afterStep: (step, trainer) => {
      if ((step + 1) % every === 0 && step + 1 < o.steps) {
        const optimizer = trainer.optimizerState(); // every rank takes part: a sharded state is gathered
        if (lead) saveTrainerState(checkpointDir, trainer, { step: step + 1, configDigest: digest }, optimizer);
      }
      if (step === o.interruptAfter) throw new Error(`interrupted after step ${step} (a test's crash)`);
    },
    ...(o.resume
      ? {
          restore: (trainer) => {
            const step = loadTrainerState(checkpointDir, trainer, digest);
            if (lead) truncateMetrics(metricsPath, step);
            return step;
          },
        }
      : {}),
  };
  const reporter = createReporter(o.steps, 0, Math.max(1, Math.floor(o.steps / 20)), (o.quiet ?? false) || !lead);
  const rewards: number[] = [];
  try {
    // The KL penalty's reference: the starting model, loaded again and never trained.
    const reference = klBeta > 0 ? loadAnyModel(o.model) : undefined;
    const options = {
      ...o,
      ...{ updates, clip, klBeta, reference },
      ...{ lora, reward, warmupIters: o.warmup, weightDecay: 0, gradClip: 1 },
    };
    const steps = runGrpo(
      model,
      codec,
      tasks,
      options,
      (s) => {
        rewards.push(s.meanReward);
        log(s);
        // The step's time is mostly sampling: its speed is the sampled tokens', not a matmul MFU.
        reporter.step({ step: s.step, loss: s.loss, lr: s.lr, tokPerSec: s.sampleTokPerSec });
      },
      hooks,
    );
    reporter.stop();
    if (lead) writeDirAtomic(o.out, trainedFiles(o, model, lora, metricsPath)); // the run is done: its checkpoint goes
    return { out: o.out, steps, firstReward: rewards[0] ?? 0, lastReward: rewards.at(-1) ?? 0 };
  } catch (e) {
    reporter.stop();
    // A run that saved a checkpoint keeps it (and its metrics) for --resume; one that did not leaves nothing.
    if (lead && !existsSync(join(checkpointDir, STATE_JSON))) rmSync(o.out, { recursive: true, force: true });
    throw e;
  } finally {
    void module?.close();
  }
}
