// The GGUF file format (llama.cpp, Ollama, LM Studio): a header of typed key/value
// metadata, a table of tensors (name, dims innermost first, type, offset), then the
// tensor data, each aligned. Tensor types read and written: F32, F16, BF16 and Q8_0
// (blocks of 32 values: an fp16 scale and 32 int8s).
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { decodeHalves, encodeHalves, f16Bits, halfToFloat } from "../tensor/half.ts";

const MAGIC = 0x46554747; // "GGUF" little-endian
const VERSION = 3;
const DEFAULT_ALIGNMENT = 32;

/** The file types `llmfab export` writes (the weight matrices' type; vectors stay f32). */
export const GGUF_TYPES = ["f32", "f16", "bf16", "q8_0"] as const;
export type GgufType = (typeof GGUF_TYPES)[number];

export const GGML_TYPES = { F32: 0, F16: 1, Q8_0: 8, BF16: 30 } as const;
export type GgmlTypeName = keyof typeof GGML_TYPES;
const TYPE_NAMES = new Map<number, GgmlTypeName>(Object.entries(GGML_TYPES).map(([k, v]) => [v, k as GgmlTypeName]));

/** Metadata value kinds (gguf_type). */
const KIND = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** A metadata value with the GGUF kind it is written as. */
export type GgufValue =
  | { kind: "u32"; value: number }
  | { kind: "i32"; value: number }
  | { kind: "f32"; value: number }
  | { kind: "bool"; value: boolean }
  | { kind: "string"; value: string }
  | { kind: "strings"; value: string[] }
  | { kind: "i32s"; value: number[] }
  | { kind: "f32s"; value: number[] };

export interface GgufTensor {
  name: string;
  /** the shape as PyTorch writes it (outermost first) */
  shape: number[];
  type: GgmlTypeName;
  data: Float32Array;
}

export interface GgufFile {
  metadata: Map<string, unknown>;
  tensors: Map<string, { shape: number[]; type: GgmlTypeName; data: Float32Array }>;
}

// ---- Q8_0 ----

const QK8_0 = 32;

/** Q8_0 as llama.cpp quantizes: per block of 32, d = max|x| / 127 (stored fp16), q = round(x / d). */
function quantizeQ8_0(data: Float32Array): Buffer {
  const blocks = data.length / QK8_0;
  const out = Buffer.alloc(blocks * 34);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let i = 0; i < QK8_0; i++) amax = Math.max(amax, Math.abs(data[b * QK8_0 + i] as number));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    out.writeUInt16LE(f16Bits(d), b * 34);
    for (let i = 0; i < QK8_0; i++) out.writeInt8(Math.round((data[b * QK8_0 + i] as number) * id), b * 34 + 2 + i);
  }
  return out;
}

function dequantizeQ8_0(bytes: Buffer, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let b = 0; b < count / QK8_0; b++) {
    const d = halfToFloat(bytes.readUInt16LE(b * 34));
    for (let i = 0; i < QK8_0; i++) out[b * QK8_0 + i] = d * bytes.readInt8(b * 34 + 2 + i);
  }
  return out;
}

function encodeTensor(t: GgufTensor): Buffer {
  switch (t.type) {
    case "F32":
      return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    case "F16":
    case "BF16":
      return encodeHalves(t.data, t.type);
    case "Q8_0":
      return quantizeQ8_0(t.data);
  }
}

function byteSize(type: GgmlTypeName, count: number): number {
  return type === "F32" ? 4 * count : type === "Q8_0" ? (count / QK8_0) * 34 : 2 * count;
}

// ---- writing ----

class Writer {
  private readonly parts: Buffer[] = [];
  size = 0;

  push(b: Buffer): void {
    this.parts.push(b);
    this.size += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  string(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.push(b);
  }
  value(v: GgufValue): void {
    const array = (kind: number, n: number) => {
      this.u32(KIND.ARRAY);
      this.u32(kind);
      this.u64(n);
    };
    switch (v.kind) {
      case "u32":
        this.u32(KIND.UINT32);
        this.u32(v.value);
        break;
      case "i32":
        this.u32(KIND.INT32);
        this.i32(v.value);
        break;
      case "f32":
        this.u32(KIND.FLOAT32);
        this.f32(v.value);
        break;
      case "bool":
        this.u32(KIND.BOOL);
        this.push(Buffer.from([v.value ? 1 : 0]));
        break;
      case "string":
        this.u32(KIND.STRING);
        this.string(v.value);
        break;
      case "strings":
        array(KIND.STRING, v.value.length);
        for (const s of v.value) this.string(s);
        break;
      case "i32s":
        array(KIND.INT32, v.value.length);
        for (const x of v.value) this.i32(x);
        break;
      case "f32s":
        array(KIND.FLOAT32, v.value.length);
        for (const x of v.value) this.f32(x);
        break;
    }
  }
  pad(alignment: number): void {
    const n = (alignment - (this.size % alignment)) % alignment;
    if (n) this.push(Buffer.alloc(n));
  }
  bytes(): Buffer[] {
    return this.parts;
  }
}

/** Writes a GGUF file; tensors are encoded one at a time, so memory holds one at most. */
export function writeGguf(path: string, metadata: Map<string, GgufValue>, tensors: GgufTensor[]): void {
  for (const t of tensors) {
    if (t.type === "Q8_0" && (t.shape[t.shape.length - 1] as number) % QK8_0 !== 0)
      throw new Error(`${t.name}: Q8_0 needs rows of a multiple of ${QK8_0} values, got ${t.shape}`);
  }
  const head = new Writer();
  head.u32(MAGIC);
  head.u32(VERSION);
  head.u64(tensors.length);
  head.u64(metadata.size);
  for (const [key, value] of metadata) {
    head.string(key);
    head.value(value);
  }
  let offset = 0;
  for (const t of tensors) {
    head.string(t.name);
    head.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) head.u64(d);
    head.u32(GGML_TYPES[t.type]);
    head.u64(offset);
    offset += byteSize(t.type, t.data.length);
    offset += (DEFAULT_ALIGNMENT - (offset % DEFAULT_ALIGNMENT)) % DEFAULT_ALIGNMENT;
  }
  head.pad(DEFAULT_ALIGNMENT);
  const fd = openSync(path, "w");
  try {
    for (const b of head.bytes()) writeSync(fd, b);
    for (const t of tensors) {
      const data = encodeTensor(t);
      writeSync(fd, data);
      const pad = (DEFAULT_ALIGNMENT - (data.length % DEFAULT_ALIGNMENT)) % DEFAULT_ALIGNMENT;
      if (pad) writeSync(fd, Buffer.alloc(pad));
    }
  } finally {
    closeSync(fd);
  }
}

// ---- reading ----

/** Reads a GGUF file: metadata as plain values, tensors dequantized to float32. */
export function readGguf(path: string): GgufFile {
  const buf = readFileSync(path);
  const bad = (why: string) => new Error(`${path}: not a valid GGUF file: ${why}`);
  let pos = 0;
  const need = (n: number) => {
    if (pos + n > buf.length) throw bad(`truncated at byte ${pos}`);
  };
  const u32 = () => {
    need(4);
    const v = buf.readUInt32LE(pos);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = Number(buf.readBigUInt64LE(pos));
    pos += 8;
    return v;
  };
  const string = () => {
    const n = u64();
    need(n);
    const s = buf.toString("utf8", pos, pos + n);
    pos += n;
    return s;
  };
  const scalar = (kind: number): unknown => {
    const read = <T>(n: number, f: () => T): T => {
      need(n);
      const v = f();
      pos += n;
      return v;
    };
    switch (kind) {
      case KIND.UINT8:
        return read(1, () => buf.readUInt8(pos));
      case KIND.INT8:
        return read(1, () => buf.readInt8(pos));
      case KIND.UINT16:
        return read(2, () => buf.readUInt16LE(pos));
      case KIND.INT16:
        return read(2, () => buf.readInt16LE(pos));
      case KIND.UINT32:
        return read(4, () => buf.readUInt32LE(pos));
      case KIND.INT32:
        return read(4, () => buf.readInt32LE(pos));
      case KIND.FLOAT32:
        return read(4, () => buf.readFloatLE(pos));
      case KIND.BOOL:
        return read(1, () => buf.readUInt8(pos) !== 0);
      case KIND.STRING:
        return string();
      case KIND.UINT64:
        return read(8, () => Number(buf.readBigUInt64LE(pos)));
      case KIND.INT64:
        return read(8, () => Number(buf.readBigInt64LE(pos)));
      case KIND.FLOAT64:
        return read(8, () => buf.readDoubleLE(pos));
      case KIND.ARRAY: {
        const inner = u32();
        const n = u64();
        return Array.from({ length: n }, () => scalar(inner));
      }
      default:
        throw bad(`metadata value of unknown kind ${kind} at byte ${pos - 4}`);
    }
  };
  if (buf.length < 4 || buf.readUInt32LE(0) !== MAGIC)
    throw bad(`bad magic ${JSON.stringify(buf.toString("latin1", 0, 4))} (expected "GGUF")`);
  pos = 4;
  const version = u32();
  if (version !== 2 && version !== 3) throw bad(`version ${version} (2 and 3 are read)`);
  const tensorCount = u64();
  const kvCount = u64();
  const metadata = new Map<string, unknown>();
  for (let i = 0; i < kvCount; i++) {
    const key = string();
    metadata.set(key, scalar(u32()));
  }
  const infos: { name: string; shape: number[]; type: number; offset: number }[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = string();
    const dims = Array.from({ length: u32() }, () => u64());
    infos.push({ name, shape: dims.reverse(), type: u32(), offset: u64() });
  }
  const alignment = Number(metadata.get("general.alignment") ?? DEFAULT_ALIGNMENT);
  const dataStart = pos + ((alignment - (pos % alignment)) % alignment);
  const tensors = new Map<string, { shape: number[]; type: GgmlTypeName; data: Float32Array }>();
  for (const t of infos) {
    const type = TYPE_NAMES.get(t.type);
    if (!type) throw bad(`tensor ${t.name} has ggml type ${t.type} (F32, F16, BF16 and Q8_0 are read)`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    const start = dataStart + t.offset;
    const size = byteSize(type, count);
    if (start + size > buf.length) throw bad(`tensor ${t.name} runs past the end of the file`);
    tensors.set(t.name, { shape: t.shape, type, data: decodeTensor(buf.subarray(start, start + size), type, count) });
  }
  return { metadata, tensors };
}

function decodeTensor(bytes: Buffer, type: GgmlTypeName, count: number): Float32Array {
  if (type === "F32") return new Float32Array(Uint8Array.from(bytes).buffer);
  if (type === "Q8_0") return dequantizeQ8_0(bytes, count);
  return decodeHalves(bytes, type, count);
}
