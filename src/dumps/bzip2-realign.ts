// Random access into bzip2 files: bzip2 blocks are independent (no window), so a run of blocks cut out of a file
// and realigned to a byte boundary, framed by a stream header and an end-of-stream marker, is a valid .bz2 stream
// of its own.
import { BitSink, readBits } from './bzip2-bits.js';
import { Bzip2DataError, Bzip2Scanner, type Bzip2Block } from './bzip2-scan.js';

const EOS_HI = 0x177245;
const EOS_LO = 0x385090;

/**
 * Block candidates in file order. A candidate is a 48-bit block magic found at some bit offset;
 * by chance such a match can also occur inside compressed data (about once per 35 TB of input), which
 * splits a real block in two. decodeBzip2Blocks detects and merges such splits; a task that decodes a
 * run recorded by the manifest never sees them. Throws Bzip2DataError for a missing header, a
 * missing final end-of-stream marker (truncation) or trailing garbage.
 */
export async function* scanBzip2Blocks(
  compressed: AsyncIterable<Uint8Array>,
): AsyncGenerator<Bzip2Block, void, undefined> {
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
        throw new Error(
          `realignBzip2Blocks: block at bit ${b.bitOffset} does not follow the block at bit ${prev.bitOffset}`,
        );
      }
    } else if (prev) {
      if (b.stream < prev.stream || prev.streamCrc === undefined) {
        throw new Error(
          `realignBzip2Blocks: block at bit ${b.bitOffset} does not follow the block at bit ${prev.bitOffset}`,
        );
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

export function writeStreamEnd(sink: BitSink, crc: number): void {
  sink.bits(EOS_HI, 24);
  sink.bits(EOS_LO, 24);
  sink.bits(crc >>> 16, 16);
  sink.bits(crc & 0xffff, 16);
  sink.padToByte();
}

/** Bits [from, to) of `buf` (relative bit offsets) onto the sink. */
export function copyBits(sink: BitSink, buf: Uint8Array, from: number, to: number): void {
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
