import { endianness } from 'node:os';
import { UsageError } from '../errors/index.js';
import type { EncodingName } from '../tokenize/index.js';

/**
 * Megatron-LM's `IndexedDataset` layout, as `megatron/core/datasets/indexed_dataset.py` (`_IndexWriter`,
 * `_IndexReader`, `IndexedDatasetBuilder`) writes and reads it. `.bin`: the token ids of every sequence back to back,
 * little-endian, in the index's dtype. `.idx`: a 34-byte header (magic `MMIDIDX\0\0`, version 1 as u64, dtype code
 * as u8, sequence count as u64, document count as u64), then the sequence lengths (int32), the byte offset of each
 * sequence in `.bin` (int64), and the document indices (int64: 0, then the sequence index where each document ends).
 * One page is one sequence and one document, so the document indices are 0, 1, …, n.
 */
export type MegatronDtype = 'uint16' | 'int32';

/** Megatron's `DType` enum values. */
const DTYPE_CODES: Record<MegatronDtype, number> = { uint16: 8, int32: 4 };
export const DTYPE_BYTES: Record<MegatronDtype, number> = { uint16: 2, int32: 4 };

/** tiktoken's `n_vocab` of each encoding (ordinary ranks plus special tokens): every id is below it. */
export const VOCABULARY_SIZE: Record<EncodingName, number> = {
  r50k_base: 50257,
  p50k_base: 50281,
  cl100k_base: 100277,
  o200k_base: 200019,
};

/**
 * The narrowest dtype that holds the vocabulary, by the rule of Megatron's `DType.optimal_dtype` (uint16 below
 * 65500, else int32), which `preprocess_data.py` applies to the tokenizer's vocabulary size.
 */
export function dtypeFor(encoding: EncodingName): MegatronDtype {
  return VOCABULARY_SIZE[encoding] < 65500 ? 'uint16' : 'int32';
}

const MAGIC = Buffer.from('MMIDIDX\x00\x00', 'latin1');
export const IDX_HEADER_BYTES = 34;
/** Document indices per buffer when they are generated for a large index. */
const INDICES_PER_CHUNK = 1 << 16;

/** Size of the `.idx` of `sequences` one-sequence documents. */
export function idxBytes(sequences: number): number {
  return IDX_HEADER_BYTES + sequences * 4 + sequences * 8 + (sequences + 1) * 8;
}

function idxHeader(dtype: MegatronDtype, sequences: number): Buffer {
  const header = Buffer.alloc(IDX_HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeBigUInt64LE(1n, 9);
  header.writeUInt8(DTYPE_CODES[dtype], 17);
  header.writeBigUInt64LE(BigInt(sequences), 18);
  header.writeBigUInt64LE(BigInt(sequences + 1), 26);
  return header;
}

function lengthsSection(lengths: ArrayLike<number>): Buffer {
  const out = Buffer.allocUnsafe(lengths.length * 4);
  for (let i = 0; i < lengths.length; i++) out.writeInt32LE(lengths[i] as number, i * 4);
  return out;
}

/** int64 little-endian as two 32-bit halves: offsets stay far below 2^53, and no BigInt per value. */
function writeInt64(out: Buffer, value: number, at: number): void {
  out.writeUInt32LE(value % 0x1_0000_0000, at);
  out.writeUInt32LE(Math.floor(value / 0x1_0000_0000), at + 4);
}

/** Byte offsets of the sequences, the first at `start`; returns them and the offset after the last. */
function pointersSection(lengths: ArrayLike<number>, start: number, width: number): { bytes: Buffer; next: number } {
  const bytes = Buffer.allocUnsafe(lengths.length * 8);
  let pointer = start;
  for (let i = 0; i < lengths.length; i++) {
    writeInt64(bytes, pointer, i * 8);
    pointer += (lengths[i] as number) * width;
  }
  return { bytes, next: pointer };
}

/** Document indices `from`, `from + 1`, …, `to - 1`. */
function indicesSection(from: number, to: number): Buffer {
  const bytes = Buffer.allocUnsafe((to - from) * 8);
  for (let i = from; i < to; i++) writeInt64(bytes, i, (i - from) * 8);
  return bytes;
}

/** The `.idx` of one shard: sequences of these lengths, each its own document. */
export function encodeIdx(dtype: MegatronDtype, lengths: ArrayLike<number>): Buffer {
  return Buffer.concat([
    idxHeader(dtype, lengths.length),
    lengthsSection(lengths),
    pointersSection(lengths, 0, DTYPE_BYTES[dtype]).bytes,
    indicesSection(0, lengths.length + 1),
  ]);
}

/**
 * The `.idx` of many shards' sequences in order, as a stream whose memory does not grow with the count: the lengths
 * arrive in pieces from `lengths()`, which is called twice (the lengths section, then the pointers section).
 */
export async function* concatIdx(
  dtype: MegatronDtype,
  sequences: number,
  lengths: () => AsyncIterable<ArrayLike<number>>,
): AsyncGenerator<Buffer> {
  yield idxHeader(dtype, sequences);
  let seen = 0;
  for await (const piece of lengths()) {
    seen += piece.length;
    yield lengthsSection(piece);
  }
  if (seen !== sequences) throw new Error(`the shards hold ${seen} sequences, their markers ${sequences}`);
  let pointer = 0;
  for await (const piece of lengths()) {
    const section = pointersSection(piece, pointer, DTYPE_BYTES[dtype]);
    pointer = section.next;
    yield section.bytes;
  }
  for (let from = 0; from <= sequences; from += INDICES_PER_CHUNK)
    yield indicesSection(from, Math.min(sequences + 1, from + INDICES_PER_CHUNK));
}

export interface DecodedIdx {
  dtype: MegatronDtype;
  lengths: Int32Array;
}

/**
 * Read an `.idx` this program wrote, checking everything Megatron's reader relies on: magic, version, dtype, counts,
 * file size, pointers that tile `.bin` without gaps, and one document per sequence. Throws naming `source`.
 */
export function decodeIdx(bytes: Buffer, source: string): DecodedIdx {
  const fail = (why: string): never => {
    throw new Error(`${source}: not a Megatron index of this program (${why})`);
  };
  if (bytes.length < IDX_HEADER_BYTES || !bytes.subarray(0, 9).equals(MAGIC)) fail('bad magic');
  if (bytes.readBigUInt64LE(9) !== 1n) fail(`version ${bytes.readBigUInt64LE(9)}`);
  const code = bytes.readUInt8(17);
  const dtype =
    (Object.keys(DTYPE_CODES) as MegatronDtype[]).find((d) => DTYPE_CODES[d] === code) ?? fail(`dtype code ${code}`);
  const sequences = Number(bytes.readBigUInt64LE(18));
  if (Number(bytes.readBigUInt64LE(26)) !== sequences + 1) fail('document count is not sequence count + 1');
  if (bytes.length !== idxBytes(sequences))
    fail(`${bytes.length} bytes, ${idxBytes(sequences)} expected for ${sequences} sequences`);
  const lengths = new Int32Array(sequences);
  for (let i = 0; i < sequences; i++) lengths[i] = bytes.readInt32LE(IDX_HEADER_BYTES + i * 4);
  const expected = encodeIdx(dtype, lengths);
  if (!expected.equals(bytes)) fail('pointers or document indices do not follow from the lengths');
  return { dtype, lengths };
}

/**
 * The token ids of a batch's pages in the dtype's little-endian bytes, and each page's length. Typed arrays write in
 * the host's byte order, so a big-endian host is refused rather than writing files Megatron would misread.
 */
export class TokenBuffer {
  private ids: Uint16Array | Int32Array;
  private used = 0;
  private readonly lengths: number[] = [];
  private readonly limit: number;

  constructor(private readonly dtype: MegatronDtype) {
    if (endianness() !== 'LE') throw new Error('megatron output needs a little-endian host');
    this.ids = this.allocate(1 << 16);
    this.limit = dtype === 'uint16' ? 0xffff : 0x7fffffff;
  }

  /** One sequence: the ids of all `chunks` in order. */
  append(chunks: readonly ArrayLike<number>[]): void {
    let length = 0;
    for (const ids of chunks) {
      if (this.used + ids.length > this.ids.length) this.grow(this.used + ids.length);
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i] as number;
        if (id > this.limit) throw new Error(`token id ${id} does not fit ${this.dtype}`);
        this.ids[this.used++] = id;
      }
      length += ids.length;
    }
    this.lengths.push(length);
  }

  /** The `.bin` bytes and lengths, each in its own exactly sized buffer (they are transferred between threads). */
  finish(): { bin: Uint8Array; lengths: Int32Array } {
    const bin = new Uint8Array(this.used * DTYPE_BYTES[this.dtype]);
    bin.set(new Uint8Array(this.ids.buffer, 0, bin.length));
    return { bin, lengths: Int32Array.from(this.lengths) };
  }

  private allocate(n: number): Uint16Array | Int32Array {
    return this.dtype === 'uint16' ? new Uint16Array(n) : new Int32Array(n);
  }

  private grow(atLeast: number): void {
    const next = this.allocate(Math.max(atLeast, this.ids.length * 2));
    next.set(this.ids.subarray(0, this.used));
    this.ids = next;
  }
}

/** What `export` needs to know of one finished shard: from its marker, without reading the shard. */
export interface ShardExtent {
  task_id: string;
  bin_bytes: number;
  sequences: number;
}

export interface PartPlan {
  index: number;
  /** Positions in the shard list: the part holds shards [first, end). */
  first: number;
  end: number;
  bin_bytes: number;
  sequences: number;
}

/**
 * Cut a run's shards, in manifest order, into parts of whole shards whose `.bin` stays within `maxPartBytes` (one
 * part when no cap is given). Whole shards keep a part's `.idx` the plain concatenation of its shards' indexes; a cap
 * below the largest shard is refused rather than silently exceeded.
 */
export function planParts(shards: readonly ShardExtent[], maxPartBytes: number | undefined): PartPlan[] {
  const parts: PartPlan[] = [];
  let current: PartPlan = { index: 0, first: 0, end: 0, bin_bytes: 0, sequences: 0 };
  shards.forEach((shard, i) => {
    if (maxPartBytes !== undefined) {
      if (shard.bin_bytes > maxPartBytes) {
        const largest = Math.max(...shards.map((s) => s.bin_bytes));
        throw new UsageError(
          `--max-part-bytes ${maxPartBytes}: the shard of task ${shard.task_id} holds ${shard.bin_bytes} bytes of tokens; parts hold whole shards, so give at least ${largest}`,
        );
      }
      if (current.end > current.first && current.bin_bytes + shard.bin_bytes > maxPartBytes) {
        parts.push(current);
        current = { index: current.index + 1, first: i, end: i, bin_bytes: 0, sequences: 0 };
      }
    }
    current.end = i + 1;
    current.bin_bytes += shard.bin_bytes;
    current.sequences += shard.sequences;
  });
  parts.push(current);
  return parts;
}

/** Dataset prefix of a part: `--to` itself for a single dataset, `<to>_00000`, `<to>_00001`, … for capped parts. */
export function partPrefix(to: string, index: number, capped: boolean): string {
  return capped ? `${to}_${String(index).padStart(5, '0')}` : to;
}
