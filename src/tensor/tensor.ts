// Tensor: a shape over float32 storage shared with the native kernels. A tensor that
// requires grad gets a gradient buffer of the same size, allocated on first use.
import { native } from "../backend/native.ts";
import { give, take, zeroFill } from "./pool.ts";

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export class Tensor {
  readonly shape: Shape;
  requiresGrad: boolean;
  /** A view shares data and gradient with the tensor it was made from. */
  private readonly base: Tensor | null;
  private storage: Float32Array | null;
  private gradBuffer: Float32Array | null = null;

  constructor(data: Float32Array, shape: Shape, requiresGrad = false, base: Tensor | null = null) {
    if (data.length !== sizeOf(shape)) {
      throw new Error(`tensor data has ${data.length} elements but shape [${shape.join(", ")}] needs ${sizeOf(shape)}`);
    }
    this.storage = data;
    this.shape = [...shape];
    this.requiresGrad = requiresGrad;
    this.base = base;
  }

  static zeros(shape: Shape, requiresGrad = false): Tensor {
    return new Tensor(take(sizeOf(shape), true), shape, requiresGrad);
  }

  /** A tensor whose contents the caller will overwrite entirely (an op's output). */
  static empty(shape: Shape): Tensor {
    return new Tensor(take(sizeOf(shape), false), shape);
  }

  static from(values: ArrayLike<number>, shape: Shape, requiresGrad = false): Tensor {
    return new Tensor(Float32Array.from(values), shape, requiresGrad);
  }

  get data(): Float32Array {
    if (this.base) return this.base.data;
    if (!this.storage)
      throw new Error("tensor used after backward() recycled it; read intermediate values before backward()");
    return this.storage;
  }

  get size(): number {
    return sizeOf(this.shape);
  }

  /** The gradient, or null when none has been accumulated yet. */
  get grad(): Float32Array | null {
    return this.base ? this.base.grad : this.gradBuffer;
  }

  /** The gradient buffer, created zero-filled on first use; backward kernels add into it. */
  ensureGrad(): Float32Array {
    if (this.base) return this.base.ensureGrad();
    if (!this.gradBuffer) this.gradBuffer = take(this.size, true);
    return this.gradBuffer;
  }

  /**
   * Where a kernel that writes every element should put this tensor's gradient, and
   * whether it must add to what is there: the first writer of a fresh buffer overwrites it,
   * which saves zero-filling it first. A view is its base reshaped: the base's buffer.
   */
  gradTarget(): { grad: Float32Array; accumulate: boolean } {
    if (this.base) return this.base.gradTarget();
    if (this.gradBuffer) return { grad: this.gradBuffer, accumulate: true };
    this.gradBuffer = take(this.size, false);
    return { grad: this.gradBuffer, accumulate: false };
  }

  /** Adds scale * g to the gradient; a gradient nothing has written yet becomes a copy (no zero fill, one read less). */
  addGrad(g: Float32Array, scale = 1): void {
    const { grad, accumulate } = this.gradTarget();
    if (accumulate) {
      native.accumulate(grad, g, scale, this.size);
      return;
    }
    native.copy(grad, g, this.size);
    if (scale !== 1) native.scale(grad, scale, this.size);
  }

  zeroGrad(): void {
    if (this.base) this.base.zeroGrad();
    else if (this.gradBuffer) zeroFill(this.gradBuffer);
  }

  /** Drops the gradient buffer (frees memory; a frozen or evaluated tensor needs none). */
  freeGrad(): void {
    this.gradBuffer = null;
  }

  /** Hands the gradient buffer back to the buffer pool. */
  recycleGrad(): void {
    if (this.base || !this.gradBuffer) return;
    give(this.gradBuffer);
    this.gradBuffer = null;
  }

  /** Hands data and gradient back to the buffer pool; the tensor is unusable afterwards. */
  recycle(): void {
    if (this.base) return;
    if (this.storage) give(this.storage);
    if (this.gradBuffer) give(this.gradBuffer);
    this.storage = null;
    this.gradBuffer = null;
  }

  /** The same storage seen with another shape of the same size; gradients flow through. */
  view(shape: Shape): Tensor {
    if (sizeOf(shape) !== this.size) throw new Error(`cannot view [${this.shape.join(", ")}] as [${shape.join(", ")}]`);
    return new Tensor(this.data, shape, this.requiresGrad, this.base ?? this);
  }

  item(): number {
    if (this.size !== 1) throw new Error(`item() needs a one-element tensor, got shape [${this.shape.join(", ")}]`);
    return this.data[0] as number;
  }
}
