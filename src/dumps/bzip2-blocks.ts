// The manifest pass over a whole bzip2 file: every block, decoded in parallel `bzip2` children, with its size and
// newline count, and false block magics (splits by chance) merged back. Tasks later cut runs of these blocks out of
// the file (bzip2-realign.ts) and decode them (bzip2-decode.ts).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { BitSink } from './bzip2-bits.js';
import { Bzip2DataError, Bzip2Scanner, type Bzip2Block } from './bzip2-scan.js';
import { decodeBzip2 } from './bzip2-decode.js';
import { copyBits, writeStreamEnd } from './bzip2-realign.js';

export { Bzip2DataError, type Bzip2Block };

export interface Bzip2BlockData {
  /** The block, with false-magic splits already merged back. */
  block: Bzip2Block;
  /** Offset of the block's first byte in the file's whole decompressed output. */
  uncompressedOffset: number;
  uncompressedBytes: number;
  /** Number of '\n' bytes in the block's output. */
  newlines: number;
  /** The block's output, only with `{ withData: true }`. */
  data?: Buffer[];
}

/** How many following candidates may be merged into one block before it counts as corrupt. */
const MAX_MERGES = 3;

/** A batch of the parallel phase: blocks up to about this many compressed bytes, or this many blocks. */
const DEFAULT_BATCH_BYTES = 2 * 1024 * 1024;

const BATCH_BLOCKS = 64;

/**
 * One pass over a whole .bz2 file for the manifest: every block in file order with its uncompressed
 * size and newline count (optionally its output), with bounded memory.
 *
 * Design: `bzip2 -dc` children decode the blocks, each wrapped as its own stream and followed by a
 * tiny stream holding a random 32-byte marker; the marker's appearances in the output delimit blocks.
 * With `concurrency` > 1, runs of blocks (~2 MB compressed) go to that many children at once.
 * A block that fails to decode (CRC error) is merged with the next candidate and decoding restarts
 * from it (one child at a time from then on), which repairs splits by chance magics; genuinely
 * corrupt data still fails after MAX_MERGES merges. Each stream's combined CRC is checked against
 * the confirmed blocks' CRCs.
 */
export async function* decodeBzip2Blocks(
  compressed: AsyncIterable<Uint8Array>,
  opts: {
    withData?: boolean;
    /** bzip2 children decoding at once (default 1). */
    concurrency?: number;
    /** Compressed bytes per child in the parallel phase (default 2 MiB). */
    batchBytes?: number;
  } = {},
): AsyncGenerator<Bzip2BlockData, void, undefined> {
  const ctx = new BlockPass(compressed, opts.withData ?? false);
  try {
    const concurrency = opts.concurrency ?? 1;
    if (concurrency > 1) yield* decodeParallel(ctx, concurrency, (opts.batchBytes ?? DEFAULT_BATCH_BYTES) * 8);
    yield* decodeSequential(ctx);
  } finally {
    await ctx.close();
  }
}

/** State shared by both phases: scanned candidates not yet confirmed, and their compressed bytes. */
class BlockPass {
  readonly marker = makeMarker();
  readonly store = new ChunkStore();
  /** Scanned blocks not yet confirmed by a decoder, in file order. */
  readonly queue: Bzip2Block[] = [];
  private readonly input: AsyncIterator<Uint8Array>;
  private readonly scanner = new Bzip2Scanner();
  private inputDone = false;
  private uncompressedOffset = 0;
  private streamCrc = 0;

  constructor(
    compressed: AsyncIterable<Uint8Array>,
    readonly withData: boolean,
  ) {
    this.input = compressed[Symbol.asyncIterator]();
  }

  /** Scan on until the queue holds `n` blocks; false if the file has fewer. */
  async fill(n: number): Promise<boolean> {
    while (this.queue.length < n && !this.inputDone) {
      const r = await this.input.next();
      if (r.done) {
        this.inputDone = true;
        this.queue.push(...this.scanner.finish());
      } else {
        this.store.append(r.value);
        this.queue.push(...this.scanner.push(r.value));
      }
    }
    return this.queue.length >= n;
  }

  /** The queue's first block decoded to `counts`: check its stream's CRC and report it. */
  confirm(counts: BlockCounts): Bzip2BlockData {
    const block = this.queue.shift()!;
    this.streamCrc = (((this.streamCrc << 1) | (this.streamCrc >>> 31)) ^ block.blockCrc) >>> 0;
    if (block.streamCrc !== undefined) {
      if (block.streamCrc !== this.streamCrc) {
        throw new Bzip2DataError(
          `bzip2 stream ${block.stream} combined CRC mismatch (stored ${hex(block.streamCrc)}, blocks give ${hex(this.streamCrc)}) at bit ${block.bitOffset}`,
          block.bitOffset,
        );
      }
      this.streamCrc = 0;
    }
    const item: Bzip2BlockData = {
      block,
      uncompressedOffset: this.uncompressedOffset,
      uncompressedBytes: counts.bytes,
      newlines: counts.newlines,
    };
    if (this.withData) item.data = counts.data;
    this.uncompressedOffset += counts.bytes;
    this.store.dropBefore(Math.floor((this.queue[0]?.bitOffset ?? block.bitOffset + block.bitLength) / 8));
    return item;
  }

  /** The first block failed to decode: merge the next candidate into it, or give up. */
  async mergeFailed(err: Bzip2DataError, merges: number): Promise<void> {
    const bad = this.queue[0]!;
    if (merges >= MAX_MERGES || !(await this.fill(2)) || this.queue[1]!.stream !== bad.stream) {
      throw new Bzip2DataError(
        `corrupt bzip2 block at bit ${bad.bitOffset} (stream ${bad.stream}): ${err.message}`,
        bad.bitOffset,
      );
    }
    this.queue.splice(0, 2, mergeBlocks(bad, this.queue[1]!));
  }

  async close(): Promise<void> {
    await this.input.return?.();
  }
}

interface BlockCounts {
  bytes: number;
  newlines: number;
  data: Buffer[];
}

/** Splits decoder output at marker occurrences into per-block counts. */
class MarkerSplitter {
  private tail: Buffer = Buffer.alloc(0); // output that may hold the start of a marker
  private cur: BlockCounts = { bytes: 0, newlines: 0, data: [] };

  constructor(
    private readonly marker: Buffer,
    private readonly withData: boolean,
  ) {}

  /** Counts of the blocks completed by this output chunk, in order. */
  push(out: Buffer): BlockCounts[] {
    const done: BlockCounts[] = [];
    const buf = this.tail.length > 0 ? Buffer.concat([this.tail, out]) : out;
    let pos = 0;
    for (;;) {
      const at = buf.indexOf(this.marker, pos);
      if (at < 0) break;
      this.count(buf, pos, at);
      done.push(this.cur);
      this.cur = { bytes: 0, newlines: 0, data: [] };
      pos = at + this.marker.length;
    }
    const safe = Math.max(pos, buf.length - (this.marker.length - 1));
    this.count(buf, pos, safe);
    this.tail = Buffer.from(buf.subarray(safe));
    return done;
  }

  private count(buf: Buffer, from: number, to: number): void {
    if (to <= from) return;
    this.cur.bytes += to - from;
    this.cur.newlines += countNewlines(buf, from, to);
    if (this.withData) this.cur.data.push(Buffer.from(buf.subarray(from, to)));
  }
}

/** Decode from the queue's first block on with one child at a time, merging chance splits. */
async function* decodeSequential(ctx: BlockPass): AsyncGenerator<Bzip2BlockData, void, undefined> {
  let merges = 0;
  while (await ctx.fill(1)) {
    let sent = 0; // queue entries handed to the current child
    const feed = async function* (): AsyncGenerator<Buffer> {
      while (await ctx.fill(sent + 1)) {
        yield standaloneStream(ctx.queue[sent++]!, ctx.store);
        yield ctx.marker.stream;
      }
    };
    const splitter = new MarkerSplitter(ctx.marker.text, ctx.withData);
    try {
      for await (const out of decodeBzip2(feed())) {
        for (const counts of splitter.push(out)) {
          sent -= 1;
          merges = 0;
          yield ctx.confirm(counts);
        }
      }
      if (sent !== 0) throw new Error(`internal: bzip2 finished with ${sent} unconfirmed blocks`);
    } catch (err) {
      // Errors with a bit offset are ours (CRC mismatch, truncation) and final; bzip2's own are not.
      if (!(err instanceof Bzip2DataError) || err.bitOffset !== undefined) throw err;
      await ctx.mergeFailed(err, merges);
      merges += 1;
    }
  }
}

interface BatchOutcome {
  counts: BlockCounts[];
  error?: Bzip2DataError;
}

/**
 * Decode batches of blocks in `concurrency` children, reporting in file order. Returns when the file
 * is done, or after a batch failed, leaving the failed block first in the queue for decodeSequential.
 */
async function* decodeParallel(
  ctx: BlockPass,
  concurrency: number,
  batchBits: number,
): AsyncGenerator<Bzip2BlockData, void, undefined> {
  const inflight: Array<{ outcome: Promise<BatchOutcome>; abort: () => void }> = [];
  let assigned = 0; // queue entries handed to batches
  const startBatch = async (): Promise<boolean> => {
    const streams: Buffer[] = [];
    let bits = 0;
    let n = 0;
    while (bits < batchBits && n < BATCH_BLOCKS && (await ctx.fill(assigned + 1))) {
      const b = ctx.queue[assigned++]!;
      streams.push(standaloneStream(b, ctx.store), ctx.marker.stream);
      bits += b.bitLength;
      n += 1;
    }
    if (n === 0) return false;
    inflight.push(runBatch(streams, n, ctx));
    return true;
  };
  try {
    for (;;) {
      while (inflight.length < concurrency && (await startBatch()));
      const batch = inflight.shift();
      if (!batch) return;
      const { counts, error } = await batch.outcome;
      for (const c of counts) {
        assigned -= 1;
        yield ctx.confirm(c);
      }
      if (error) return;
    }
  } finally {
    for (const b of inflight) b.abort();
    await Promise.all(inflight.map((b) => b.outcome));
  }
}

function runBatch(
  streams: Buffer[],
  blocks: number,
  ctx: BlockPass,
): { outcome: Promise<BatchOutcome>; abort: () => void } {
  let aborted = false;
  const outcome = (async (): Promise<BatchOutcome> => {
    const splitter = new MarkerSplitter(ctx.marker.text, ctx.withData);
    const counts: BlockCounts[] = [];
    try {
      for await (const out of decodeBzip2(fromArray(streams))) {
        if (aborted) break;
        counts.push(...splitter.push(out));
      }
      if (!aborted && counts.length !== blocks)
        throw new Error(`internal: bzip2 decoded ${counts.length} of ${blocks} blocks`);
      return { counts };
    } catch (err) {
      if (err instanceof Bzip2DataError) return { counts, error: err };
      throw err;
    }
  })();
  return { outcome, abort: () => (aborted = true) };
}

async function* fromArray(bufs: Buffer[]): AsyncGenerator<Buffer> {
  yield* bufs;
}

function mergeBlocks(a: Bzip2Block, b: Bzip2Block): Bzip2Block {
  const merged: Bzip2Block = { ...a, bitLength: a.bitLength + b.bitLength };
  if (b.streamCrc !== undefined) merged.streamCrc = b.streamCrc;
  return merged;
}

/** One block as a complete single-block .bz2 stream (its combined CRC is its block CRC). */
function standaloneStream(b: Bzip2Block, store: ChunkStore): Buffer {
  const firstByte = Math.floor(b.bitOffset / 8);
  const bytes = store.slice(firstByte, Math.ceil((b.bitOffset + b.bitLength) / 8));
  const sink = new BitSink(bytes.length + 16);
  sink.bytes(Buffer.from(`BZh${b.level}`), 0, 4);
  const from = b.bitOffset - firstByte * 8;
  copyBits(sink, bytes, from, from + b.bitLength);
  writeStreamEnd(sink, b.blockCrc);
  return sink.take();
}

export function combinedCrc(blocks: readonly Bzip2Block[]): number {
  let c = 0;
  for (const b of blocks) c = (((c << 1) | (c >>> 31)) ^ b.blockCrc) >>> 0;
  return c;
}

function countNewlines(buf: Buffer, from: number, to: number): number {
  let n = 0;
  for (let i = buf.indexOf(10, from); i >= 0 && i < to; i = buf.indexOf(10, i + 1)) n++;
  return n;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/** A random byte string and a .bz2 stream that decodes to it. */
function makeMarker(): { text: Buffer; stream: Buffer } {
  const text = randomBytes(32);
  const r = spawnSync('bzip2', ['-c', '-1'], { input: text });
  if (r.error) throw new Error(`cannot run bzip2 (is the bzip2 package installed?): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`bzip2 -c failed: ${r.stderr.toString().trim()}`);
  return { text, stream: r.stdout };
}

/** Compressed bytes kept from the first unconfirmed block on, addressable by file offset. */
class ChunkStore {
  private chunks: Buffer[] = [];
  private start = 0; // file offset of chunks[0][0]
  private end = 0;

  append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.end += chunk.length;
  }

  dropBefore(offset: number): void {
    while (this.chunks.length > 0 && this.start + this.chunks[0]!.length <= offset) {
      this.start += this.chunks.shift()!.length;
    }
  }

  /** Bytes [from, to); `to` may exceed the stored end only at the end of the file. */
  slice(from: number, to: number): Buffer {
    if (from < this.start) throw new Error(`internal: byte ${from} was already dropped (kept from ${this.start})`);
    const parts: Buffer[] = [];
    let pos = this.start;
    for (const c of this.chunks) {
      const cEnd = pos + c.length;
      if (cEnd > from && pos < to) parts.push(c.subarray(Math.max(0, from - pos), Math.min(c.length, to - pos)));
      pos = cEnd;
      if (pos >= to) break;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
}
