// The safetensors format: an 8-byte little-endian header length, a JSON header naming
// each tensor's dtype, shape and byte range, then the raw little-endian data.
// We write float32 (or bfloat16 when asked); we read float32, float16 and bfloat16 (as
// Hugging Face models ship).
import { readFileSync } from "node:fs";
import { decodeHalves, encodeHalves, type HalfKind } from "../tensor/half.ts";

export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

const HEADER_LIMIT = 100 * 1024 * 1024;

/** What we write: float32, or bfloat16 (rounded to nearest even) when a model is saved in bf16. */
export type SaveDtype = "F32" | "BF16";

export function encodeSafetensors(
  tensors: Map<string, NamedTensor>,
  metadata: Record<string, string> = {},
  dtype: SaveDtype = "F32",
): Uint8Array {
  const width = dtype === "F32" ? 4 : 2;
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = t.data.length * width;
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + json.length) % 8)) % 8); // keep the data 8-byte aligned
  const headerBytes = Buffer.from(json, "utf8");
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const t of tensors.values()) {
    if (dtype === "F32") out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    else out.set(encodeHalves(t.data, dtype), pos);
    pos += t.data.length * width;
  }
  return out;
}

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

const BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

export function readSafetensors(path: string): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  const bad = (why: string): Error => new Error(`${path}: not a valid safetensors file: ${why}`);
  if (buf.length < 8) throw bad("shorter than its 8-byte header length");
  const headerLen = Number(buf.readBigUInt64LE(0));
  if (headerLen > HEADER_LIMIT || 8 + headerLen > buf.length) throw bad(`header length ${headerLen} exceeds the file`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + headerLen).toString("utf8"));
  } catch {
    throw bad("header is not JSON");
  }
  const dataStart = 8 + headerLen;
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = (value ?? {}) as Record<string, string>;
      continue;
    }
    const e = value as Entry;
    const width = BYTES[e?.dtype];
    if (!width) throw bad(`tensor ${name} has unsupported dtype ${e?.dtype} (F32, F16 and BF16 are read)`);
    const count = e.shape.reduce((a, b) => a * b, 1);
    const [start, end] = e.data_offsets;
    if (end - start !== count * width || dataStart + end > buf.length || start < 0) {
      throw bad(`tensor ${name} has byte range [${start}, ${end}) that does not match its shape or the file size`);
    }
    tensors.set(name, {
      shape: e.shape,
      data: decode(buf.subarray(dataStart + start, dataStart + end), e.dtype, count),
    });
  }
  return { tensors, metadata };
}

function decode(bytes: Buffer, dtype: string, count: number): Float32Array {
  if (dtype !== "F32") return decodeHalves(bytes, dtype as HalfKind, count);
  const out = new Float32Array(count);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}
