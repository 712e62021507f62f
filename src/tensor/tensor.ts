// Tensor: a shape over float32 storage shared with the native kernels. A tensor that
// requires grad gets a gradient buffer of the same size, allocated on first use.
//
// Under native bf16 a tensor may be stored in bf16 instead (as PyTorch's autocast keeps
// activations): a kernel whose output feeds a matmul writes it in bf16, the matmul reads
// it as it is, and `data` widens it to fp32 only for a reader that asks. Likewise a
// gradient that only a matmul's backward reads may be written in bf16.
import { native } from "../backend/native.ts";
import { give, giveBf16, take, takeBf16, zeroFill } from "./pool.ts";

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
  private storage: Float32Array | null = null;
  /** The values in bf16: the only storage until `data` widens them, then a copy beside it. */
  private halfStorage: Uint16Array | null = null;
  private gradBuffer: Float32Array | null = null;
  private gradHalfBuffer: Uint16Array | null = null;
  /** zeroGrad() was called: the buffer's contents are void, read as zeros, and the next writer may write over them. */
  private gradStale = false;
  /**
   * Every reader of this tensor's gradient takes it in bf16 (a linear layer's output: only
   * its own backward reads it), so the first writer may store it in bf16.
   */
  halfGradOk = false;

  /** data: fp32 values, or bf16 values (a Uint16Array) that `data` widens on first read. */
  constructor(data: Float32Array | Uint16Array, shape: Shape, requiresGrad = false, base: Tensor | null = null) {
    if (data.length !== sizeOf(shape)) {
      throw new Error(`tensor data has ${data.length} elements but shape [${shape.join(", ")}] needs ${sizeOf(shape)}`);
    }
    if (data instanceof Uint16Array) this.halfStorage = data;
    else this.storage = data;
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

  /** An op's output stored in bf16 (only where bf16 matmuls are native: a matmul reads it next). */
  static emptyHalf(shape: Shape): Tensor {
    return new Tensor(takeBf16(sizeOf(shape)), shape);
  }

  static from(values: ArrayLike<number>, shape: Shape, requiresGrad = false): Tensor {
    return new Tensor(Float32Array.from(values), shape, requiresGrad);
  }

  get data(): Float32Array {
    if (this.base) return this.base.data;
    if (this.storage) return this.storage;
    if (!this.halfStorage)
      throw new Error("tensor used after backward() recycled it; read intermediate values before backward()");
    this.storage = take(this.size, false);
    native.fromBf16(this.halfStorage, this.storage, this.size);
    return this.storage;
  }

  /** The values in bf16 when the tensor holds them so (a matmul reads them as they are), else null. */
  get half(): Uint16Array | null {
    return this.base ? this.base.half : this.halfStorage;
  }

  /** The values as stored, bf16 or fp32: for the kernels that take either. */
  get stored(): Float32Array | Uint16Array {
    return this.half ?? this.data;
  }

  get size(): number {
    return sizeOf(this.shape);
  }

  /** The gradient, or null when none has been accumulated yet. */
  get grad(): Float32Array | null {
    if (this.base) return this.base.grad;
    this.widenGrad();
    this.clearStale();
    return this.gradBuffer;
  }

  /** A zeroed gradient nothing has written since is zero-filled when it is read or added to. */
  private clearStale(): void {
    if (!this.gradStale) return;
    this.gradStale = false;
    if (this.gradBuffer) zeroFill(this.gradBuffer);
  }

  /** The gradient as written, bf16 or fp32 (null when none): for the backward kernels that read either. */
  get storedGrad(): Float32Array | Uint16Array | null {
    if (this.base) return this.base.storedGrad;
    return this.gradHalfBuffer ?? this.grad;
  }

  /**
   * gradTarget() for a kernel that can write bf16: a fresh bf16 buffer when every reader of the
   * gradient takes bf16 (halfGradOk) and nothing has written it yet; a later writer widens it.
   */
  storedGradTarget(): { grad: Float32Array | Uint16Array; accumulate: boolean } {
    const half = this.halfGradTarget();
    return half ? { grad: half, accumulate: false } : this.gradTarget();
  }

  private halfGradTarget(): Uint16Array | null {
    if (this.base) return this.base.halfGradTarget(); // a view covers all of its base
    if (!this.halfGradOk || this.gradBuffer || this.gradHalfBuffer) return null;
    this.gradHalfBuffer = takeBf16(this.size);
    return this.gradHalfBuffer;
  }

  /** A gradient written in bf16 becomes the fp32 one, for a writer that adds to it or a reader of `grad`. */
  private widenGrad(): void {
    if (!this.gradHalfBuffer) return;
    this.gradBuffer = take(this.size, false);
    native.fromBf16(this.gradHalfBuffer, this.gradBuffer, this.size);
    giveBf16(this.gradHalfBuffer);
    this.gradHalfBuffer = null;
  }

  /** The gradient buffer, created zero-filled on first use; backward kernels add into it. */
  ensureGrad(): Float32Array {
    if (this.base) return this.base.ensureGrad();
    this.widenGrad();
    this.clearStale();
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
    this.widenGrad();
    if (this.gradBuffer) {
      const accumulate = !this.gradStale;
      this.gradStale = false;
      return { grad: this.gradBuffer, accumulate };
    }
    this.gradBuffer = take(this.size, false);
    return { grad: this.gradBuffer, accumulate: false };
  }

  /** Adds scale * g to the gradient; a gradient nothing has written yet becomes a copy (no zero fill, one read less). */
  addGrad(g: Float32Array, scale = 1): void {
    const half = scale === 1 ? this.halfGradTarget() : null;
    if (half) {
      native.toBf16(g, half, this.size);
      return;
    }
    const { grad, accumulate } = this.gradTarget();
    if (accumulate) {
      native.accumulate(grad, g, scale, this.size);
      return;
    }
    native.copy(grad, g, this.size);
    if (scale !== 1) native.scale(grad, scale, this.size);
  }

  /**
   * Takes over `from`'s gradient buffer as this tensor's gradient, when this one has none yet
   * (a residual add passes its output's gradient on unchanged: no copy). False when it cannot.
   */
  adoptGrad(from: Tensor): boolean {
    if (this.base || from.base || this === from || from.size !== this.size) return false;
    if (this.gradBuffer || this.gradHalfBuffer || !from.gradBuffer) return false;
    this.gradBuffer = from.gradBuffer;
    from.gradBuffer = null;
    return true;
  }

  /** Zeroes the gradient: lazily, its first writer writes over it (no fill) and a reader sees zeros. */
  zeroGrad(): void {
    if (this.base) {
      this.base.zeroGrad();
      return;
    }
    if (this.gradHalfBuffer) giveBf16(this.gradHalfBuffer);
    this.gradHalfBuffer = null;
    this.gradStale = this.gradBuffer !== null;
  }

  /** Drops the gradient buffer (frees memory; a frozen or evaluated tensor needs none). */
  freeGrad(): void {
    this.gradBuffer = null;
    this.gradHalfBuffer = null;
    this.gradStale = false;
  }

  /** Hands the gradient buffer back to the buffer pool. */
  recycleGrad(): void {
    if (this.base) return;
    if (this.gradBuffer) give(this.gradBuffer);
    if (this.gradHalfBuffer) giveBf16(this.gradHalfBuffer);
    this.gradBuffer = null;
    this.gradHalfBuffer = null;
    this.gradStale = false;
  }

  /** Hands data and gradient back to the buffer pool; the tensor is unusable afterwards. */
  recycle(): void {
    if (this.base) return;
    if (this.storage) give(this.storage);
    if (this.halfStorage) giveBf16(this.halfStorage);
    this.storage = null;
    this.halfStorage = null;
    this.recycleGrad();
  }

  /** The same storage seen with another shape of the same size; gradients flow through. */
  view(shape: Shape): Tensor {
    if (sizeOf(shape) !== this.size) throw new Error(`cannot view [${this.shape.join(", ")}] as [${shape.join(", ")}]`);
    const root = this.base ?? this;
    return new Tensor(root.storage ?? root.halfStorage ?? root.data, shape, this.requiresGrad, root);
  }

  item(): number {
    if (this.size !== 1) throw new Error(`item() needs a one-element tensor, got shape [${this.shape.join(", ")}]`);
    return this.data[0] as number;
  }
}
