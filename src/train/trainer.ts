// The optimizer step every training method shares: gradients accumulated over
// micro-batches (each weighted by its share of the step's loss terms, so accumulation
// equals one batch that holds them all), clipped by the global norm, AdamW at the
// schedule's learning rate, gradients cleared. Pretraining and SFT supply their batches
// and losses; preference and RL methods are to do the same. Under mpirun each rank brings
// its share of the batch: the loss terms are counted over all ranks and the gradients
// summed across them before the step, so the step is the one the whole batch would give.
import { type Communicator, communicator } from "../backend/mpi.ts";
import { AdamW, type AdamWOptions, type AdamWState } from "../optim/adamw.ts";
import { clipScale, globalGradNorm } from "../optim/clip.ts";
import { type CosineSchedule, learningRate } from "../optim/schedule.ts";
import { backward, type Tensor } from "../tensor/index.ts";
import {
  gatherOptimizerState,
  gradientBucket,
  shardOwners,
  shareUpdatedParameters,
  sumGradients,
} from "./distributed.ts";

/** One micro-batch: how many loss terms (tokens) it averages over, and its mean loss (built when run). */
export interface MicroBatch {
  count: number;
  loss(): Tensor;
}

/** A rank's share of a batch that holds nothing (it still joins the step's all-reduce). */
export const EMPTY_SHARE: MicroBatch = {
  count: 0,
  loss: () => {
    throw new Error("an empty share of a batch has no loss");
  },
};

export interface StepResult {
  /** the step's loss: the mean over all its terms */
  loss: number;
  lr: number;
  gradNorm: number;
  /** seconds spent summing gradients across ranks (0 in a job of one) */
  allreduceSeconds: number;
}

export interface TrainerOptions {
  adam: AdamWOptions;
  schedule: CosineSchedule;
  gradClip: number;
  /** the ranks sharing each batch (default: this process's job, one rank unless under mpirun) */
  comm?: Communicator;
  /** ZeRO stage 1: each rank keeps the optimizer moments of its share of the parameters only */
  shardOptimizer?: boolean;
}

export class Trainer {
  /** this rank's optimizer: over all parameters, or with a sharded optimizer over those it owns */
  readonly optimizer: AdamW;
  private readonly comm: Communicator;
  /** with a sharded optimizer: the rank that updates each parameter */
  private readonly owners: Map<string, number> | null;
  /** where gradients are staged for the all-reduce (made at the first step of a job of several ranks) */
  private bucket: Float32Array | null = null;

  constructor(
    readonly params: [string, Tensor][],
    private readonly o: TrainerOptions,
  ) {
    this.comm = o.comm ?? communicator();
    this.owners = o.shardOptimizer && this.comm.size > 1 ? shardOwners(params, this.comm.size) : null;
    const owned = this.owners ? params.filter(([name]) => this.owners?.get(name) === this.comm.rank) : params;
    this.optimizer = new AdamW(owned, o.adam);
  }

  /** The whole optimizer state, for a checkpoint (with a sharded optimizer, every rank must ask at once). */
  optimizerState(): AdamWState {
    return this.owners
      ? gatherOptimizerState(this.params, this.owners, this.optimizer.state, this.comm)
      : this.optimizer.state;
  }

  /** Runs the micro-batches of step `step`, then one optimizer update. */
  step(step: number, micros: MicroBatch[]): StepResult {
    const comm = this.comm;
    const counts = new Float64Array([micros.reduce((n, m) => n + m.count, 0)]);
    comm.sumScalars(counts);
    const total = counts[0] as number;
    if (total === 0) throw new Error(`step ${step}: the batch has nothing to learn from (no targets)`);
    const sums = new Float64Array(1);
    for (const m of micros) {
      if (m.count === 0) continue;
      const weight = m.count / total;
      const l = m.loss();
      sums[0] += l.item() * weight;
      backward(l, weight);
    }
    if (comm.size > 1) this.bucket ??= gradientBucket(this.params);
    const allreduceSeconds = this.bucket ? sumGradients(this.params, comm, this.bucket) : 0;
    comm.sumScalars(sums);
    const lr = learningRate(step, this.o.schedule);
    const gradNorm = globalGradNorm(this.params);
    this.optimizer.step(lr, clipScale(gradNorm, this.o.gradClip));
    if (this.owners) shareUpdatedParameters(this.params, this.owners, comm);
    for (const [, p] of this.params) p.zeroGrad();
    return { loss: sums[0] as number, lr, gradNorm, allreduceSeconds };
  }
}
