// 16-bit floats as files store them (safetensors, GGUF): bfloat16 and IEEE half, encoded
// with round-to-nearest-even and decoded exactly, a whole tensor at a time.

export type HalfKind = "F16" | "BF16";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> bfloat16 bits, rounded to nearest even (NaN stays NaN). */
export function bf16Bits(v: number): number {
  f32[0] = v;
  const u = u32[0] as number;
  if ((u & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
}

/** float32 -> IEEE half bits, rounded to nearest even; overflow to infinity, underflow through subnormals to zero. */
export function f16Bits(v: number): number {
  f32[0] = v;
  const u = u32[0] as number;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf, NaN
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00; // overflow: inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow: zero
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    return sign | ((m + half - 1 + ((m >>> shift) & 1)) >>> shift);
  }
  const rounded = mant + 0xfff + ((mant >>> 13) & 1);
  return (sign | (e << 10)) + (rounded >>> 13); // a mantissa carry bumps the exponent
}

/** IEEE half bits -> the float32 bits of the same value. */
function halfToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) {
    if (mant === 0) return sign >>> 0;
    // subnormal: renormalise
    let e = -1;
    let m = mant;
    do {
      e++;
      m <<= 1;
    } while ((m & 0x400) === 0);
    return (sign | ((127 - 15 - e) << 23) | ((m & 0x3ff) << 13)) >>> 0;
  }
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  return (sign | ((exp - 15 + 127) << 23) | (mant << 13)) >>> 0;
}

/** The value of one IEEE half. */
export function halfToFloat(h: number): number {
  u32[0] = halfToFloatBits(h);
  return f32[0] as number;
}

/** `count` little-endian 16-bit floats as float32. */
export function decodeHalves(bytes: Uint8Array, kind: HalfKind, count: number): Float32Array {
  const out = new Float32Array(count);
  const bits = new Uint32Array(out.buffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) {
    const h = view.getUint16(2 * i, true);
    bits[i] = kind === "BF16" ? h << 16 : halfToFloatBits(h);
  }
  return out;
}

/** float32 values as little-endian 16-bit floats. */
export function encodeHalves(data: Float32Array, kind: HalfKind): Buffer {
  const out = Buffer.alloc(data.length * 2);
  const encode = kind === "F16" ? f16Bits : bf16Bits;
  for (let i = 0; i < data.length; i++) out.writeUInt16LE(encode(data[i] as number), 2 * i);
  return out;
}
