import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  Bzip2DataError,
  combinedCrc,
  decodeBzip2Blocks,
  type Bzip2Block,
  type Bzip2BlockData,
} from '../../src/dumps/bzip2-blocks.js';
import { decodeBzip2, fastestBzip2Decoder } from '../../src/dumps/bzip2-decode.js';
import { realignBzip2Blocks, scanBzip2Blocks } from '../../src/dumps/bzip2-realign.js';
import { random } from '../../src/dumps/synth.js';

// Deterministic pseudo-random numbers, so a failure can be replayed.
const rng = random;

const WORDS =
  'the of and in to a is was for on as by with from that at his it an were which are also this be first new has had one their after who its not but two been have they other all'.split(
    ' ',
  );

/** Wiki-like JSON lines mixed with random bytes and long runs (which bzip2's RLE stage expands hugely). */
function content(rand: () => number, bytes: number): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  let id = 0;
  while (size < bytes) {
    const r = rand();
    let part: Buffer;
    if (r < 0.8) {
      const words: string[] = [];
      const n = 20 + Math.floor(rand() * 1500);
      for (let i = 0; i < n; i++)
        words.push(WORDS[Math.floor(rand() * WORDS.length)]! + (rand() < 0.1 ? String(Math.floor(rand() * 1e5)) : ''));
      part = Buffer.from(`{"index":{"_id":"${id}"}}\n{"page_id":${id},"text":"${words.join(' ')}"}\n`);
      id++;
    } else if (r < 0.9) {
      part = Buffer.alloc(1000 + Math.floor(rand() * 30_000));
      for (let i = 0; i < part.length; i++) part[i] = Math.floor(rand() * 256);
    } else {
      part = Buffer.alloc(1000 + Math.floor(rand() * 200_000), 0x20);
    }
    parts.push(part);
    size += part.length;
  }
  return Buffer.concat(parts).subarray(0, bytes);
}

function bzip2(data: Buffer, level: number): Buffer {
  return execFileSync('bzip2', ['-c', `-${level}`], { input: data, maxBuffer: 1 << 30 });
}

async function* chunked(buf: Buffer, rand: () => number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length;) {
    const n = rand() < 0.1 ? 1 + Math.floor(rand() * 16) : 1 + Math.floor(rand() * 65536);
    yield buf.subarray(i, i + n);
    i += n;
  }
}

async function* single(...bufs: Buffer[]): AsyncGenerator<Buffer> {
  yield* bufs;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

interface Fixture {
  name: string;
  data: Buffer;
  bz: Buffer;
  streams: Array<{ level: number; byteOffset: number; empty: boolean }>;
}

function fixture(name: string, seed: number, streams: Array<{ bytes: number; level: number }>): Fixture {
  const rand = rng(seed);
  const datas: Buffer[] = [];
  const bzs: Buffer[] = [];
  const info: Fixture['streams'] = [];
  let off = 0;
  for (const s of streams) {
    const d = content(rand, s.bytes);
    const b = bzip2(d, s.level);
    info.push({ level: s.level, byteOffset: off, empty: s.bytes === 0 });
    datas.push(d);
    bzs.push(b);
    off += b.length;
  }
  return { name, data: Buffer.concat(datas), bz: Buffer.concat(bzs), streams: info };
}

const FIXTURES = [
  fixture('one stream, level 1', 1, [{ bytes: 1_500_000, level: 1 }]),
  fixture('one stream, level 9', 2, [{ bytes: 2_500_000, level: 9 }]),
  // Like pbzip2 / Spark output: many concatenated streams, including tiny and empty ones.
  fixture('concatenated streams', 3, [
    { bytes: 400_000, level: 1 },
    { bytes: 1_000_000, level: 9 },
    { bytes: 10, level: 1 },
    { bytes: 0, level: 9 },
    { bytes: 600_000, level: 5 },
  ]),
];

describe('bzip2 blocks', () => {
  for (const [fi, f] of FIXTURES.entries()) {
    describe(f.name, () => {
      const rand = rng(50 + fi);
      let blocks: Bzip2Block[] = [];
      let decoded: Bzip2BlockData[] = [];

      it('scans block boundaries that match the streams and their combined CRCs', async () => {
        blocks = await collect(scanBzip2Blocks(chunked(f.bz, rand)));
        expect(await collect(scanBzip2Blocks(single(f.bz)))).toEqual(blocks);
        for (const [si, s] of f.streams.entries()) {
          const mine = blocks.filter((b) => b.stream === si);
          if (s.empty) {
            expect(mine).toEqual([]);
            continue;
          }
          expect(mine[0]!.bitOffset).toBe((s.byteOffset + 4) * 8);
          for (let k = 1; k < mine.length; k++)
            expect(mine[k]!.bitOffset).toBe(mine[k - 1]!.bitOffset + mine[k - 1]!.bitLength);
          expect(mine.every((b) => b.level === s.level)).toBe(true);
          expect(mine.slice(0, -1).every((b) => b.streamCrc === undefined)).toBe(true);
          // The stored combined CRC agrees with the block CRCs: no block missed, none invented.
          expect(combinedCrc(mine)).toBe(mine[mine.length - 1]!.streamCrc);
        }
      });

      it('decodes every block with its size and newline count', async () => {
        decoded = await collect(decodeBzip2Blocks(chunked(f.bz, rand), { withData: true }));
        expect(decoded.map((d) => d.block)).toEqual(blocks);
        expect(Buffer.concat(decoded.flatMap((d) => d.data!)).equals(f.data)).toBe(true);
        let off = 0;
        for (const d of decoded) {
          expect(d.uncompressedOffset).toBe(off);
          const slice = f.data.subarray(off, off + d.uncompressedBytes);
          expect(d.newlines).toBe(slice.filter((b) => b === 10).length);
          off += d.uncompressedBytes;
        }
        expect(off).toBe(f.data.length);
        const counts = await collect(decodeBzip2Blocks(single(f.bz)));
        expect(counts.map((c) => [c.uncompressedBytes, c.newlines])).toEqual(
          decoded.map((d) => [d.uncompressedBytes, d.newlines]),
        );
        expect(counts.every((c) => c.data === undefined)).toBe(true);
        // Several children on small batches give the same answer.
        const parallel = await collect(decodeBzip2Blocks(chunked(f.bz, rand), { concurrency: 2, batchBytes: 30_000 }));
        expect(parallel).toEqual(counts);
      });

      it('realigns random runs of blocks into streams that decode to the right bytes', async () => {
        for (let trial = 0; trial < 10; trial++) {
          // Runs may cross from one source stream into the next.
          const i = Math.floor(rand() * decoded.length);
          const run = decoded.slice(i, i + 1 + Math.floor(rand() * 4));
          const startByte = Math.floor(run[0]!.block.bitOffset / 8);
          const last = run[run.length - 1]!.block;
          // Either to the end of the file or exactly to the byte holding the run's last bit.
          const endByte = rand() < 0.5 ? f.bz.length : Math.ceil((last.bitOffset + last.bitLength) / 8);
          const stream = realignBzip2Blocks(
            run.map((d) => d.block),
            chunked(f.bz.subarray(startByte, endByte), rand),
          );
          // Tasks read with the fastest decoder installed (lbzip2 where .ci/run and the image install it).
          const got = Buffer.concat(
            await collect(decodeBzip2(stream, trial % 2 === 0 ? fastestBzip2Decoder() : undefined)),
          );
          const lastDecoded = run[run.length - 1]!;
          const want = f.data.subarray(
            run[0]!.uncompressedOffset,
            lastDecoded.uncompressedOffset + lastDecoded.uncompressedBytes,
          );
          expect(got.equals(want), `run at block ${i}`).toBe(true);
        }
      });
    });
  }

  it('merges blocks split by a chance magic inside the compressed data', async () => {
    // bzip2 writes which byte values a block uses as 16-bit bitmaps, one per used range of 16 values.
    // Data using exactly these values makes the bitmaps of ranges 0-2 spell 0x3141 0x5926 0x5359,
    // the block magic, inside every block header.
    const alphabet = [
      0x02, 0x03, 0x07, 0x09, 0x0f, 0x11, 0x13, 0x14, 0x17, 0x1a, 0x1d, 0x1e, 0x21, 0x23, 0x26, 0x27, 0x29, 0x2b, 0x2c,
      0x2f,
    ];
    const rand = rng(99);
    const data = Buffer.alloc(1_000_000);
    // No byte repeats its predecessor: runs of 4 would add bzip2's run-length count bytes to the used set.
    for (let i = 0; i < data.length; i++) {
      do data[i] = alphabet[Math.floor(rand() * alphabet.length)]!;
      while (i > 0 && data[i] === data[i - 1]);
    }
    const bz = Buffer.concat([bzip2(data, 1), bzip2(data.subarray(0, 300_000), 2)]);
    const all = Buffer.concat([data, data.subarray(0, 300_000)]);
    const candidates = await collect(scanBzip2Blocks(chunked(bz, rand)));
    const decoded = await collect(decodeBzip2Blocks(chunked(bz, rand), { withData: true }));
    expect(Buffer.concat(decoded.flatMap((d) => d.data!)).equals(all)).toBe(true);
    expect(candidates.length).toBe(2 * decoded.length);
    // In parallel mode the split shows up after some good batches; the rest is decoded one child at a time.
    const good = FIXTURES[0]!;
    const mixed = await collect(
      decodeBzip2Blocks(chunked(Buffer.concat([good.bz, bz]), rand), {
        withData: true,
        concurrency: 2,
        batchBytes: 30_000,
      }),
    );
    expect(Buffer.concat(mixed.flatMap((d) => d.data!)).equals(Buffer.concat([good.data, all]))).toBe(true);
    expect(mixed.length).toBe(decoded.length + (await collect(scanBzip2Blocks(single(good.bz)))).length);
    expect(combinedCrc(decoded.filter((d) => d.block.stream === 0).map((d) => d.block))).toBe(
      decoded.find((d) => d.block.streamCrc !== undefined)!.block.streamCrc,
    );
    // The merged blocks are real blocks: a run of them realigns and decodes.
    const run = decoded.slice(3, 6);
    const startByte = Math.floor(run[0]!.block.bitOffset / 8);
    const got = Buffer.concat(
      await collect(
        decodeBzip2(
          realignBzip2Blocks(
            run.map((d) => d.block),
            single(bz.subarray(startByte)),
          ),
        ),
      ),
    );
    expect(
      got.equals(all.subarray(run[0]!.uncompressedOffset, run[2]!.uncompressedOffset + run[2]!.uncompressedBytes)),
    ).toBe(true);
  });

  describe('bad input', () => {
    const f = FIXTURES[2]!;
    const rand = rng(7);

    it('rejects input that is not bzip2, empty, truncated or followed by garbage', async () => {
      await expect(collect(scanBzip2Blocks(single(Buffer.from('hello world'))))).rejects.toThrow(
        /not a bzip2 stream: no "BZh\[1-9\]" header at byte 0/,
      );
      await expect(collect(scanBzip2Blocks(single()))).rejects.toThrow(/empty bzip2 input/);
      for (const cut of [10, Math.floor(f.bz.length / 2), f.bz.length - 1]) {
        await expect(collect(scanBzip2Blocks(chunked(f.bz.subarray(0, cut), rand))), `cut at ${cut}`).rejects.toThrow(
          new RegExp(`bzip2 input ends at byte ${cut} without a final end-of-stream marker`),
        );
        await expect(collect(decodeBzip2Blocks(chunked(f.bz.subarray(0, cut), rand)))).rejects.toThrow(Bzip2DataError);
        await expect(collect(decodeBzip2(chunked(f.bz.subarray(0, cut), rand)))).rejects.toThrow(
          /bzip2 -dc failed \(exit 2\): .*(unexpected|ends)/i,
        );
      }
      const garbage = Buffer.concat([f.bz, Buffer.from('trailing garbage here')]);
      await expect(collect(scanBzip2Blocks(single(garbage)))).rejects.toThrow(/truncated input or trailing garbage/);
    });

    it('reports corrupt blocks with their bit offset', async () => {
      const blocks = await collect(scanBzip2Blocks(single(f.bz)));
      const victim = blocks[1]!;
      const corrupt = Buffer.from(f.bz);
      const at = Math.floor(victim.bitOffset / 8) + 2000;
      for (let k = at; k < at + 50; k++) corrupt[k] = corrupt[k]! ^ 0x5a;
      for (const opts of [{}, { concurrency: 2, batchBytes: 10_000 }]) {
        const err = await collect(decodeBzip2Blocks(chunked(corrupt, rand), opts)).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(Bzip2DataError);
        expect((err as Error).message).toMatch(
          new RegExp(`corrupt bzip2 block at bit ${victim.bitOffset} \\(stream 1\\): bzip2 -dc failed`),
        );
      }
      // A task's realigned run of the corrupt block fails in the task decoder too, naming that decoder.
      const decoder = fastestBzip2Decoder();
      const run = realignBzip2Blocks(blocks.slice(1, 2), single(corrupt.subarray(Math.floor(victim.bitOffset / 8))));
      await expect(collect(decodeBzip2(run, decoder))).rejects.toThrow(
        new RegExp(`^${decoder.command} -dc.* failed \\(exit \\d+\\): .+`),
      );
    });

    it('checks runs given to realignBzip2Blocks and their input', async () => {
      const blocks = await collect(scanBzip2Blocks(single(f.bz)));
      const one = await collect(scanBzip2Blocks(single(FIXTURES[0]!.bz)));
      await expect(
        collect(realignBzip2Blocks([one[0]!, one[2]!], single(FIXTURES[0]!.bz.subarray(4)))),
      ).rejects.toThrow(/does not follow/);
      // Leaving a stream before its last block.
      const two = Buffer.concat([FIXTURES[0]!.bz, f.bz]);
      const twoBlocks = await collect(scanBzip2Blocks(single(two)));
      const later = twoBlocks.find((b) => b.stream === 1)!;
      await expect(collect(realignBzip2Blocks([twoBlocks[0]!, later], single(two.subarray(4))))).rejects.toThrow(
        /does not follow/,
      );
      await expect(collect(realignBzip2Blocks([], single(f.bz)))).rejects.toThrow(/no blocks/);
      const b = blocks[1]!;
      const start = Math.floor(b.bitOffset / 8);
      await expect(collect(realignBzip2Blocks([b], single(f.bz.subarray(start, start + 100))))).rejects.toThrow(
        /truncated bzip2 input/,
      );
    });

    it('passes errors of the input through unchanged', async () => {
      const boom = new Error('connection reset');
      async function* failing(): AsyncGenerator<Buffer> {
        yield f.bz.subarray(0, 5000);
        throw boom;
      }
      await expect(collect(decodeBzip2(failing()))).rejects.toBe(boom);
      await expect(collect(decodeBzip2Blocks(failing()))).rejects.toBe(boom);
      await expect(collect(scanBzip2Blocks(failing()))).rejects.toBe(boom);
    });

    it('kills the decoder when the consumer stops early', async () => {
      const big = Buffer.concat(Array<Buffer>(32).fill(FIXTURES[1]!.bz));
      let pulled = 0;
      async function* counting(): AsyncGenerator<Buffer> {
        for await (const c of chunked(big, rand)) {
          pulled += c.length;
          yield c;
        }
      }
      for await (const out of decodeBzip2(counting())) {
        expect(out.length).toBeGreaterThan(0);
        break;
      }
      expect(pulled).toBeLessThan(big.length / 2);
      for (const opts of [{}, { concurrency: 2, batchBytes: 100_000 }]) {
        pulled = 0;
        for await (const d of decodeBzip2Blocks(counting(), opts)) {
          expect(d.uncompressedBytes).toBeGreaterThan(0);
          break;
        }
        expect(pulled).toBeLessThan(big.length / 2);
      }
    });
  });
});
