// GRPO with verifiable rewards (DeepSeek-R1's recipe, nanochat's chat_rl): for each prompt,
// sample a group of answers with the batched engine, score each with a reward function,
// take each answer's advantage relative to its group (mean-centred; divided by the group's
// std only if asked, as Dr. GRPO argues against it), and push up the log-probability of
// the better answers with the token-level policy-gradient loss. The optimizer step is the
// shared Trainer's; the trainable modes are SFT's. Under mpirun each rank samples and
// trains on every N-th prompt's group; the step's figures are summed over the ranks.
import { communicator } from "../backend/mpi.ts";
import { Engine, type EngineTokenizer } from "../infer/engine.ts";
import type { Model } from "../model/model.ts";
import { IGNORE_INDEX, noGrad, policyLoss, Tensor, tokenLogProbs } from "../tensor/index.ts";
import { EMPTY_SHARE, type MicroBatch, type Trainer } from "../train/trainer.ts";
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
  /** optimizer updates on each batch of samples (PPO's epochs; the ratio is clipped from the second on) */
  updates: number;
  /** PPO's clipping range for the ratio pi / pi_old */
  clip: number;
  /** weight of the KL penalty against `reference` (0: none, the default of recent recipes) */
  klBeta: number;
  /** the frozen starting model, for the KL penalty */
  reference?: Model;
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
  /** mean KL(pi || reference) per trained answer token (k3 estimate), at the batch's first update */
  kl: number;
  /** mean entropy of the policy's next-token distribution over trained answer tokens (those of groups with a signal), in nats */
  entropy: number;
  /** share of trained answer tokens whose ratio was clipped, over the batch's later updates */
  clipped: number;
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

/**
 * G answers for each prompt, decoded together by a fresh engine (the weights changed since
 * the last step). Each prompt comes with its place in the step, which seeds its answers:
 * the same answers whichever rank samples them.
 */
function sampleGroups(
  model: Model,
  tokenizer: EngineTokenizer,
  prompts: [number, RlTask][],
  o: GrpoOptions,
  step: number,
): Sample[] {
  if (prompts.length === 0) return [];
  const engine = new Engine(model, tokenizer, Math.min(prompts.length * o.group, 64));
  const out: Sample[] = new Array(prompts.length * o.group);
  prompts.forEach(([p, task], i) => {
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
          out[i * o.group + k] = { ids: r.stopId === undefined ? r.ids : [...r.ids, r.stopId], text: r.text };
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

/** Where a run starts and what it keeps: for checkpoints and exact resumption. */
export interface GrpoHooks {
  /** puts the trainer back as a checkpoint saved it; returns the steps already done */
  restore?(trainer: Trainer): number;
  /** after each step (its metrics reported) */
  afterStep?(step: number, trainer: Trainer): void;
}

export function runGrpo(
  model: Model,
  tokenizer: EngineTokenizer,
  tasks: RlTask[],
  o: GrpoOptions,
  onStep?: (s: GrpoStep) => void,
  hooks: GrpoHooks = {},
): number {
  if (tasks.length === 0) throw new Error("no tasks to learn from");
  if (o.klBeta > 0 && !o.reference) throw new Error("a KL penalty needs the reference model");
  const params = prepareTrainable(model, { ...o, epochs: 1, batchSize: 1 });
  const trainer = posttrainTrainer(params, o, o.steps * o.updates, o.lr); // a constant rate after warmup
  // Every step's prompts and sampling seeds follow from its number, so a restored run goes on exactly.
  const start = hooks.restore?.(trainer) ?? 0;
  const comm = communicator();
  for (let step = start; step < o.steps; step++) {
    const prompts = Array.from(
      { length: o.promptsPerStep },
      (_, i) => tasks[(step * o.promptsPerStep + i) % tasks.length] as RlTask,
    );
    const mine = prompts.map((task, p) => [p, task] as [number, RlTask]).filter(([p]) => p % comm.size === comm.rank);
    const started = performance.now();
    const samples = sampleGroups(model, tokenizer, mine, o, step);
    const sampleSeconds = (performance.now() - started) / 1000;
    const rewards = samples.map((s, i) =>
      scored(o.reward, s.text, (mine[Math.floor(i / o.group)] as [number, RlTask])[1]),
    );
    const advantages = groupAdvantages(rewards, o.group, o.scaleByStd);
    const groupRewards = mine.map((_, g) => rewards.slice(g * o.group, (g + 1) * o.group));
    const alike = groupRewards.map((r) => new Set(r).size === 1); // no advantage: no learning signal
    const myTokens = samples.reduce((n, s) => n + s.ids.length, 0);
    // The step's figures over all ranks: answer tokens, groups with no signal, groups with a right answer, rewards.
    const totals = new Float64Array([
      myTokens,
      alike.filter(Boolean).length,
      groupRewards.filter((r) => r.some((x) => x >= 1)).length,
      rewards.reduce((a, b) => a + b, 0),
      samples.length ? myTokens / sampleSeconds : 0,
    ]);
    comm.sumScalars(totals);
    const [answerTokens, flat, pass, rewardSum, sampleTokPerSec] = [...totals] as [
      number,
      number,
      number,
      number,
      number,
    ];
    const groups = prompts.length;
    // An answer whose group scored alike has no advantage and, without a KL penalty, no
    // gradient: it is left out of the training batch (DAPO's dynamic sampling, without refilling).
    const trainedAnswers = samples.flatMap((s, i) => {
      const g = Math.floor(i / o.group);
      const signal = !alike[g] || o.klBeta > 0;
      const prompt = (mine[g] as [number, RlTask])[1].prompt;
      return signal ? [{ prompt, ids: s.ids, advantage: advantages[i] as number }] : [];
    });
    const trained =
      answerTokens > 0 && flat < groups ? trainOnSamples(model, trainer, step, trainedAnswers, myTokens, o) : null;
    onStep?.({
      step,
      total: o.steps,
      loss: trained?.loss ?? 0,
      lr: trained?.lr ?? 0,
      meanReward: rewardSum / (groups * o.group),
      passAtGroup: pass / groups,
      flat: flat / groups,
      meanLength: answerTokens / (groups * o.group),
      sampleTokPerSec,
      trainTokPerSec: trained?.tokPerSec ?? 0,
      kl: trained?.kl ?? 0,
      entropy: trained?.entropy ?? 0,
      clipped: trained?.clipped ?? 0,
    });
    hooks.afterStep?.(step, trainer);
  }
  return o.steps;
}

interface TrainedBatch {
  loss: number;
  lr: number;
  tokPerSec: number;
  kl: number;
  entropy: number;
  clipped: number;
}

/** A sampled answer as GRPO trains on it. */
interface TrainedAnswer {
  prompt: number[];
  /** the answer's tokens, its stop token included */
  ids: number[];
  advantage: number;
}

/**
 * `o.updates` optimizer steps on one batch of answers: each a training sequence (the prompt,
 * then the answer, with targets on the answer only), every answer token weighted by its
 * answer's advantage. The loss is a mean over `answerTokens`, all this rank's answer tokens
 * (those left out for having no advantage count as zeros).
 */
function trainOnSamples(
  model: Model,
  trainer: Trainer,
  step: number,
  answers: TrainedAnswer[],
  answerTokens: number,
  o: GrpoOptions,
): TrainedBatch {
  const started = performance.now();
  const micros = lengthClasses(answers).map((group) => policyMicroBatch(model, group, o));
  const trainedTokens = micros.reduce((n, m) => n + m.count, 0);
  const zeros = answerTokens - trainedTokens;
  let clippedTokens = 0;
  let work = 0;
  let result = { loss: 0, lr: 0 };
  for (let u = 0; u < o.updates; u++) {
    const shares: MicroBatch[] = micros.map((m) => ({
      count: m.count,
      loss: () => m.loss(u, (n) => (clippedTokens += n)),
    }));
    if (zeros > 0) shares.push({ count: zeros, loss: () => Tensor.from([0], [1]) });
    // A rank whose share has no answer tokens still takes part in every update's all-reduce.
    result = trainer.step(step * o.updates + u, shares.length ? shares : [EMPTY_SHARE]);
    work += micros.reduce((n, m) => n + m.tokens, 0);
  }
  const seconds = (performance.now() - started) / 1000;
  // Entropy, KL and the clipped share are means over trained answer tokens: weighted sums over the ranks.
  const sums = new Float64Array([
    micros.reduce((sum, m) => sum + m.entropy * m.count, 0),
    micros.reduce((sum, m) => sum + m.kl * m.count, 0),
    clippedTokens,
    trainedTokens,
    work / seconds,
  ]);
  communicator().sumScalars(sums);
  const [entropy, kl, clipped, tokens, tokPerSec] = [...sums] as [number, number, number, number, number];
  return {
    loss: result.loss,
    lr: result.lr,
    entropy: tokens ? entropy / tokens : 0,
    kl: tokens ? kl / tokens : 0,
    clipped: o.updates > 1 && tokens ? clipped / (tokens * (o.updates - 1)) : 0,
    tokPerSec,
  };
}

/** Sequence lengths one micro-batch spans: a few long answers (after a tool's result) do not pad every short one. */
const LENGTH_CLASS = 64;

/** The answers in groups of alike sequence length, each trained as one micro-batch. */
function lengthClasses(answers: TrainedAnswer[]): TrainedAnswer[][] {
  const classes = new Map<number, TrainedAnswer[]>();
  for (const a of answers) {
    const key = Math.ceil((a.prompt.length + a.ids.length) / LENGTH_CLASS);
    classes.set(key, [...(classes.get(key) ?? []), a]);
  }
  return [...classes.values()];
}

/**
 * Answers as one training micro-batch: each a sequence (the prompt, then the answer, with
 * targets on the answer only), every answer token weighted by its answer's advantage; its
 * loss is a mean over its answer tokens (`count`). The first update's pi_old is the policy
 * itself; entropy and KL are measured then.
 */
function policyMicroBatch(model: Model, answers: TrainedAnswer[], o: GrpoOptions) {
  const sequences: EncodedConversation[] = answers.map(({ prompt, ids }) => {
    const tokens = [...prompt, ...ids];
    const start = tokens.length - ids.length;
    return {
      tokens: tokens.slice(0, -1),
      targets: tokens.slice(1).map((t, j) => (j + 1 >= start ? t : IGNORE_INDEX)),
    };
  });
  const n = sequences.length;
  const { x, y, T } = padBatch(
    sequences.map((s) => (s.tokens.length ? s : { tokens: [0], targets: [IGNORE_INDEX] })),
    model.config.blockSize,
  );
  const mask = Uint8Array.from(y, (t) => (t === IGNORE_INDEX ? 0 : 1));
  const count = mask.reduce((a, b) => a + b, 0);
  const tokenAdvantages = Float32Array.from(y, (t, r) =>
    t === IGNORE_INDEX ? 0 : (answers[Math.floor(r / T)] as TrainedAnswer).advantage,
  );
  const reference =
    o.klBeta > 0 && o.reference
      ? noGrad(() => tokenLogProbs((o.reference as Model).forward(x, n, T), y).data.slice())
      : undefined;
  let old: Float32Array | null = null;
  const micro = {
    count,
    tokens: n * T,
    entropy: 0,
    kl: 0,
    loss(update: number, clipped: (n: number) => void): Tensor {
      const logits = model.forward(x, n, T);
      const lp = tokenLogProbs(logits, y);
      if (!old) {
        old = lp.data.slice(); // pi_old: the policy that sampled, before any update
        micro.entropy = meanEntropy(logits, mask);
        if (reference) micro.kl = meanKl(old, reference, mask);
      } else if (update > 0) clipped(countClipped(lp.data, old, mask, o.clip));
      const terms = { old, advantages: tokenAdvantages, mask, tokens: count, clip: o.clip, beta: o.klBeta };
      return policyLoss(lp, reference ? { ...terms, reference } : terms);
    },
  };
  return micro;
}

/** Mean KL(pi || reference) over answer tokens, Schulman's k3 estimate from the sampled tokens. */
function meanKl(lp: ArrayLike<number>, reference: ArrayLike<number>, mask: Uint8Array): number {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    const d = (reference[i] as number) - (lp[i] as number);
    sum += Math.exp(d) - d - 1;
    count++;
  }
  return count ? sum / count : 0;
}

/** Answer tokens whose ratio pi / pi_old lies outside [1 - clip, 1 + clip]. */
function countClipped(lp: ArrayLike<number>, old: ArrayLike<number>, mask: Uint8Array, clip: number): number {
  let count = 0;
  for (let i = 0; i < mask.length; i++) {
    const r = Math.exp((lp[i] as number) - (old[i] as number));
    if (mask[i] && (r < 1 - clip || r > 1 + clip)) count++;
  }
  return count;
}

/** Mean entropy of the next-token distributions at answer positions, in nats. */
function meanEntropy(logits: Tensor, mask: Uint8Array): number {
  const V = logits.shape[logits.shape.length - 1] as number;
  let sum = 0;
  let count = 0;
  for (let r = 0; r < mask.length; r++) {
    if (!mask[r]) continue;
    const row = logits.data.subarray(r * V, (r + 1) * V);
    let max = -Infinity;
    for (const z of row) max = Math.max(max, z);
    let z = 0;
    let weighted = 0;
    for (const v of row) {
      const e = Math.exp(v - max);
      z += e;
      weighted += e * (v - max);
    }
    sum += Math.log(z) - weighted / z;
    count++;
  }
  return count ? sum / count : 0;
}
