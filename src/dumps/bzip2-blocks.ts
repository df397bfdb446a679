// Random access into bzip2 files. bzip2 blocks are independent (no window), so a run of blocks cut
// out of a file and realigned to a byte boundary, framed by a stream header and an end-of-stream
// marker, is a valid .bz2 stream of its own. We decode with the `bzip2` CLI in child processes: the
// fastest decoder available here (~32 MB/s single thread, against 16-20 MB/s for JS/WASM ones).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { BitSink, readBits } from './bzip2-bits.js';
import { Bzip2DataError, Bzip2Scanner, type Bzip2Block } from './bzip2-scan.js';

export { Bzip2DataError, type Bzip2Block };

const EOS_HI = 0x177245;
const EOS_LO = 0x385090;
const STDERR_LIMIT = 4096;

/**
 * Block candidates in file order. A candidate is a 48-bit block magic found at some bit offset;
 * by chance such a match can also occur inside compressed data (about once per 35 TB of input), which
 * splits a real block in two. decodeBzip2Blocks detects and merges such splits; a task that decodes a
 * run recorded by the manifest never sees them. Throws Bzip2DataError for a missing header, a
 * missing final end-of-stream marker (truncation) or trailing garbage.
 */
export async function* scanBzip2Blocks(compressed: AsyncIterable<Uint8Array>): AsyncGenerator<Bzip2Block, void, undefined> {
  const scanner = new Bzip2Scanner();
  for await (const chunk of compressed) yield* scanner.push(chunk);
  yield* scanner.finish();
}

/**
 * Standalone .bz2 data for a run of consecutive blocks, as listed by decodeBzip2Blocks: per source
 * stream the run touches, "BZh<level>", the blocks' bits shifted to a byte boundary, the end-of-stream
 * marker and the combined CRC of those blocks. `compressed` yields the file's bytes from byte
 * floor(blocks[0].bitOffset / 8) on (it may run past the last block).
 */
export async function* realignBzip2Blocks(
  blocks: readonly Bzip2Block[],
  compressed: AsyncIterable<Uint8Array>,
): AsyncGenerator<Buffer, void, undefined> {
  const runs = streamRuns(blocks);
  const endBit = runs[runs.length - 1]!.endBit;
  const sink = new BitSink();
  let r = 0; // current run
  let inRun = false; // its header is written
  let chunkBit = Math.floor(runs[0]!.startBit / 8) * 8; // absolute bit offset of the current chunk's first bit
  for await (const chunk of compressed) {
    const chunkEnd = chunkBit + chunk.length * 8;
    while (r < runs.length && runs[r]!.startBit < chunkEnd) {
      const run = runs[r]!;
      if (!inRun) {
        sink.bytes(Buffer.from(`BZh${run.level}`), 0, 4);
        inRun = true;
      }
      const from = Math.max(run.startBit, chunkBit) - chunkBit;
      const to = Math.min(run.endBit, chunkEnd) - chunkBit;
      if (to > from) copyBits(sink, chunk, from, to);
      if (run.endBit > chunkEnd) break;
      writeStreamEnd(sink, run.crc);
      r += 1;
      inRun = false;
    }
    chunkBit = chunkEnd;
    const out = sink.take();
    if (out.length > 0) yield out;
    if (chunkBit >= endBit) return;
  }
  throw new Bzip2DataError(
    `truncated bzip2 input: blocks end at bit ${endBit} but the input ends at byte ${chunkBit / 8}`,
    chunkBit,
  );
}

interface StreamRun {
  startBit: number;
  endBit: number;
  level: number;
  crc: number;
}

/** Split a run of blocks at source stream boundaries, checking that no block is left out. */
function streamRuns(blocks: readonly Bzip2Block[]): StreamRun[] {
  const first = blocks[0];
  if (!first) throw new Error('realignBzip2Blocks: no blocks given');
  const runs: StreamRun[] = [];
  let crc = 0;
  let run: StreamRun = { startBit: first.bitOffset, endBit: first.bitOffset, level: first.level, crc: 0 };
  for (const [i, b] of blocks.entries()) {
    const prev = blocks[i - 1];
    if (prev && b.stream === prev.stream) {
      if (b.bitOffset !== prev.bitOffset + prev.bitLength) {
        throw new Error(`realignBzip2Blocks: block at bit ${b.bitOffset} does not follow the block at bit ${prev.bitOffset}`);
      }
    } else if (prev) {
      if (b.stream < prev.stream || prev.streamCrc === undefined) {
        throw new Error(`realignBzip2Blocks: block at bit ${b.bitOffset} does not follow the block at bit ${prev.bitOffset}`);
      }
      runs.push({ ...run, crc });
      run = { startBit: b.bitOffset, endBit: b.bitOffset, level: b.level, crc: 0 };
      crc = 0;
    }
    crc = (((crc << 1) | (crc >>> 31)) ^ b.blockCrc) >>> 0;
    run.endBit = b.bitOffset + b.bitLength;
  }
  runs.push({ ...run, crc });
  return runs;
}

/** A bzip2 decoder program: `bzip2 -dc`, or `lbzip2 -dc -n1` (same format, faster, larger writes). */
export interface Bzip2Decoder {
  command: 'bzip2' | 'lbzip2';
  args: string[];
}
const BZIP2: Bzip2Decoder = { command: 'bzip2', args: ['-dc'] };
const LBZIP2: Bzip2Decoder = { command: 'lbzip2', args: ['-dc', '-n1'] };
let fastest: Bzip2Decoder | undefined;

/**
 * For reading tasks: lbzip2 with one thread when it is installed (it decodes ~15 % faster than bzip2 and writes in
 * large chunks, which costs the reading process a third of bzip2's 5 KB writes), else bzip2. The manifest pass
 * keeps bzip2: its handling of false block magics depends on bzip2's exact failures.
 */
export function fastestBzip2Decoder(): Bzip2Decoder {
  fastest ??= spawnSync(LBZIP2.command, ['--version'], { stdio: 'ignore' }).status === 0 ? LBZIP2 : BZIP2;
  return fastest;
}

/**
 * Decompress a .bz2 byte stream (one or more concatenated streams) with `bzip2 -dc` (or another decoder).
 * Output follows the consumer's pace; stopping early kills the child. A non-zero exit throws Bzip2DataError
 * carrying the decoder's message.
 */
export async function* decodeBzip2(stream: AsyncIterable<Uint8Array>, decoder: Bzip2Decoder = BZIP2): AsyncGenerator<Buffer, void, undefined> {
  const name = `${decoder.command} ${decoder.args.join(' ')}`;
  const child = spawn(decoder.command, decoder.args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    if (stderr.length < STDERR_LIMIT) stderr += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  // bzip2 exits on bad data while we may still be writing: EPIPE here is reported through the exit status.
  child.stdin.on('error', () => {});
  let stop = false;
  let inputError: unknown;
  const writer = (async () => {
    try {
      for await (const buf of stream) {
        if (stop || child.stdin.destroyed) break;
        if (!child.stdin.write(buf)) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              child.stdin.off('drain', done);
              child.stdin.off('close', done);
              resolve();
            };
            child.stdin.on('drain', done);
            child.stdin.on('close', done);
          });
        }
      }
    } catch (err) {
      inputError = err;
      child.kill('SIGKILL');
    } finally {
      child.stdin.end();
    }
  })();
  let finished = false;
  try {
    for await (const out of child.stdout) yield out as Buffer;
    finished = true;
  } finally {
    if (!finished) {
      stop = true;
      child.kill('SIGKILL');
    }
  }
  await writer;
  const { code, signal, error } = await exited;
  if (inputError !== undefined) throw inputError;
  if (error) throw new Error(`cannot run ${name} (is the ${decoder.command} package installed?): ${error.message}`);
  if (code !== 0) {
    const detail = stderr.trim().replace(/\s+/g, ' ') || (signal ? `killed by ${signal}` : 'no message');
    throw new Bzip2DataError(`${name} failed (exit ${code ?? signal}): ${detail}`);
  }
}

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
      throw new Bzip2DataError(`corrupt bzip2 block at bit ${bad.bitOffset} (stream ${bad.stream}): ${err.message}`, bad.bitOffset);
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
async function* decodeParallel(ctx: BlockPass, concurrency: number, batchBits: number): AsyncGenerator<Bzip2BlockData, void, undefined> {
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

function runBatch(streams: Buffer[], blocks: number, ctx: BlockPass): { outcome: Promise<BatchOutcome>; abort: () => void } {
  let aborted = false;
  const outcome = (async (): Promise<BatchOutcome> => {
    const splitter = new MarkerSplitter(ctx.marker.text, ctx.withData);
    const counts: BlockCounts[] = [];
    try {
      for await (const out of decodeBzip2(fromArray(streams))) {
        if (aborted) break;
        counts.push(...splitter.push(out));
      }
      if (!aborted && counts.length !== blocks) throw new Error(`internal: bzip2 decoded ${counts.length} of ${blocks} blocks`);
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

function writeStreamEnd(sink: BitSink, crc: number): void {
  sink.bits(EOS_HI, 24);
  sink.bits(EOS_LO, 24);
  sink.bits(crc >>> 16, 16);
  sink.bits(crc & 0xffff, 16);
  sink.padToByte();
}

/** Bits [from, to) of `buf` (relative bit offsets) onto the sink. */
function copyBits(sink: BitSink, buf: Uint8Array, from: number, to: number): void {
  let p = from;
  if (p % 8 !== 0) {
    const n = Math.min(8 - (p % 8), to - p);
    sink.bits(readBits(buf, p, n), n);
    p += n;
  }
  const fullEnd = Math.floor(to / 8);
  if (p < to && p / 8 < fullEnd) {
    sink.bytes(buf, p / 8, fullEnd);
    p = fullEnd * 8;
  }
  if (p < to) sink.bits(readBits(buf, p, to - p), to - p);
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
