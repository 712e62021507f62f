// GRPO with verifiable rewards (DeepSeek-R1's recipe, nanochat's chat_rl): for each prompt,
// sample a group of answers with the batched engine, score each with a reward function,
// take each answer's advantage relative to its group (mean-centred; divided by the group's
// std only if asked, as Dr. GRPO argues against it), and push up the log-probability of
// the better answers with the token-level policy-gradient loss. The optimizer step is the
// shared Trainer's; the trainable modes are SFT's.
import { Engine, type EngineTokenizer } from "../infer/engine.ts";
import type { Model } from "../model/model.ts";
import { IGNORE_INDEX, policyGradientLoss, sequenceLogProbs } from "../tensor/index.ts";
import type { EncodedConversation } from "./encode.ts";
import { padBatch, posttrainTrainer, prepareTrainable, type SftOptions } from "./sft.ts";

/** A reward: the answer's score against the expected answer (1 for right, 0 for wrong, or in between). */
export type Reward = (answer: string, expected: string) => number;

const numberIn = (s: string) => {
  const m = /-?\d+(?:\.\d+)?/.exec(s.replaceAll(",", ""));
  return m ? Number(m[0]) : null;
};

export const REWARDS: Record<string, Reward> = {
  /** the answer, trimmed, is the expected one */
  exact: (a, e) => (a.trim() === e.trim() ? 1 : 0),
  /** the first number in the answer equals the expected one's */
  numeric: (a, e) => {
    const [x, y] = [numberIn(a), numberIn(e)];
    return x !== null && x === y ? 1 : 0;
  },
  /** the answer contains the expected text */
  contains: (a, e) => (a.includes(e.trim()) ? 1 : 0),
};

export interface RlTask {
  /** the prompt's tokens, ending where the answer starts (the chat template's generation prompt) */
  prompt: number[];
  expected: string;
  source: string;
}

export interface GrpoOptions extends Omit<SftOptions, "gradAccum" | "epochs" | "batchSize"> {
  steps: number;
  promptsPerStep: number;
  /** answers sampled per prompt */
  group: number;
  temperature: number;
  maxTokens: number;
  reward: Reward;
  /** divide advantages by the group's standard deviation (GRPO's original form) */
  scaleByStd: boolean;
}

export interface GrpoStep {
  step: number;
  total: number;
  loss: number;
  lr: number;
  meanReward: number;
  /** share of groups with at least one full-reward answer */
  passAtGroup: number;
  /** share of groups whose answers all scored the same (no learning signal) */
  flat: number;
  meanLength: number;
  sampleTokPerSec: number;
  /** tokens (prompts and answers) through the training step per second; 0 when the step had no signal */
  trainTokPerSec: number;
}

/** A reward's score of an answer; a reward that throws or returns something other than a finite number is an error naming the task. */
function scored(reward: Reward, answer: string, task: RlTask): number {
  let value: number;
  try {
    value = reward(answer, task.expected);
  } catch (e) {
    throw new Error(`${task.source}: the reward failed: ${(e as Error).message}`);
  }
  if (typeof value !== "number" || !Number.isFinite(value))
    throw new Error(`${task.source}: the reward returned ${String(value)}, not a finite number`);
  return value;
}

/** Advantages relative to each group: reward minus the group's mean (over its std, if asked). */
export function groupAdvantages(rewards: number[], group: number, scaleByStd: boolean): number[] {
  const out: number[] = [];
  for (let g = 0; g < rewards.length; g += group) {
    const r = rewards.slice(g, g + group);
    const mean = r.reduce((a, b) => a + b, 0) / r.length;
    const std = Math.sqrt(r.reduce((a, b) => a + (b - mean) ** 2, 0) / r.length);
    for (const x of r) out.push(scaleByStd ? (x - mean) / (std + 1e-6) : x - mean);
  }
  return out;
}

interface Sample {
  ids: number[];
  text: string;
}

/** G answers for each prompt, decoded together by a fresh engine (the weights changed since the last step). */
function sampleGroups(
  model: Model,
  tokenizer: EngineTokenizer,
  prompts: RlTask[],
  o: GrpoOptions,
  step: number,
): Sample[] {
  const engine = new Engine(model, tokenizer, Math.min(prompts.length * o.group, 64));
  const out: Sample[] = new Array(prompts.length * o.group);
  prompts.forEach((task, p) => {
    for (let k = 0; k < o.group; k++) {
      engine.submit({
        prompt: task.prompt,
        options: {
          temperature: o.temperature,
          maxTokens: o.maxTokens,
          seed: o.seed * 1_000_003 + step * 997 + p * 31 + k,
        },
        // The stop token that ended an answer is part of it: the model learns where to end.
        onDone: (r) => {
          out[p * o.group + k] = { ids: r.stopId === undefined ? r.ids : [...r.ids, r.stopId], text: r.text };
        },
        onError: (e) => {
          throw e;
        },
      });
    }
  });
  engine.runToCompletion();
  return out;
}

export function runGrpo(
  model: Model,
  tokenizer: EngineTokenizer,
  tasks: RlTask[],
  o: GrpoOptions,
  onStep?: (s: GrpoStep) => void,
): number {
  if (tasks.length === 0) throw new Error("no tasks to learn from");
  const params = prepareTrainable(model, { ...o, epochs: 1, batchSize: 1 });
  const trainer = posttrainTrainer(params, o, o.steps, o.lr); // a constant rate after warmup
  for (let step = 0; step < o.steps; step++) {
    const prompts = Array.from(
      { length: o.promptsPerStep },
      (_, i) => tasks[(step * o.promptsPerStep + i) % tasks.length] as RlTask,
    );
    const started = performance.now();
    const samples = sampleGroups(model, tokenizer, prompts, o, step);
    const sampleSeconds = (performance.now() - started) / 1000;
    const rewards = samples.map((s, i) => scored(o.reward, s.text, prompts[Math.floor(i / o.group)] as RlTask));
    const advantages = groupAdvantages(rewards, o.group, o.scaleByStd);
    // Answers as training sequences: the prompt, then the answer, with targets on the answer only.
    const sequences: EncodedConversation[] = samples.map((s, i) => {
      const tokens = [...(prompts[Math.floor(i / o.group)] as RlTask).prompt, ...s.ids];
      const start = tokens.length - s.ids.length;
      return {
        tokens: tokens.slice(0, -1),
        targets: tokens.slice(1).map((t, j) => (j + 1 >= start ? t : IGNORE_INDEX)),
      };
    });
    const answerTokens = samples.reduce((n, s) => n + s.ids.length, 0);
    const groups = prompts.length;
    const flat = prompts.filter((_, p) => new Set(rewards.slice(p * o.group, (p + 1) * o.group)).size === 1).length;
    const pass = prompts.filter((_, p) => rewards.slice(p * o.group, (p + 1) * o.group).some((r) => r >= 1)).length;
    let loss = 0;
    let lr = 0;
    let trainTokPerSec = 0;
    if (answerTokens > 0 && flat < groups) {
      const trainStarted = performance.now();
      const { x, y, T } = padBatch(
        sequences.map((s) => (s.tokens.length ? s : { tokens: [0], targets: [IGNORE_INDEX] })),
      );
      const r = trainer.step(step, [
        {
          count: answerTokens,
          loss: () =>
            policyGradientLoss(
              sequenceLogProbs(model.forward(x, sequences.length, T), y, sequences.length),
              advantages,
              answerTokens,
            ),
        },
      ]);
      loss = r.loss;
      lr = r.lr;
      trainTokPerSec = (sequences.length * T) / ((performance.now() - trainStarted) / 1000);
    }
    onStep?.({
      step,
      total: o.steps,
      loss,
      lr,
      meanReward: rewards.reduce((a, b) => a + b, 0) / rewards.length,
      passAtGroup: pass / groups,
      flat: flat / groups,
      meanLength: answerTokens / samples.length,
      sampleTokPerSec: answerTokens / sampleSeconds,
      trainTokPerSec,
    });
  }
  return o.steps;
}
