import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { GzipDataError, type GzipAccessPoint } from '../../src/dumps/gzip-access.js';
import { inflateFromAccessPoint } from '../../src/dumps/gzip-resume.js';
import { inflateWithAccessPoints } from '../../src/dumps/gzip-scan.js';
import { random } from '../../src/dumps/synth.js';
import { decodeAccessPoint, encodeAccessPoint } from '../../src/manifest/access-index.js';

// Deterministic pseudo-random numbers, so a failure can be replayed.
const rng = random;

const WORDS =
  'the of and in to a is was for on as by with from that at his it an were which are also this be first new has had one their after who its not but two been have they other all'.split(
    ' ',
  );

/** Wiki-like JSON lines, random bytes (stored blocks) and long runs (huge blocks), in random order. */
function content(rand: () => number, bytes: number, kinds: Array<'text' | 'random' | 'runs'>): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  let id = 0;
  while (size < bytes) {
    const kind = kinds[Math.floor(rand() * kinds.length)]!;
    let part: Buffer;
    if (kind === 'text') {
      const words: string[] = [];
      const n = 20 + Math.floor(rand() * 2000);
      for (let i = 0; i < n; i++)
        words.push(WORDS[Math.floor(rand() * WORDS.length)]! + (rand() < 0.1 ? String(Math.floor(rand() * 1e5)) : ''));
      part = Buffer.from(`{"index":{"_id":"${id}"}}\n{"page_id":${id},"text":"${words.join(' ')}"}\n`);
      id++;
    } else if (kind === 'random') {
      part = Buffer.alloc(1000 + Math.floor(rand() * 100_000));
      for (let i = 0; i < part.length; i++) part[i] = Math.floor(rand() * 256);
    } else {
      part = Buffer.alloc(10_000 + Math.floor(rand() * 400_000), 0x61 + Math.floor(rand() * 3));
    }
    parts.push(part);
    size += part.length;
  }
  return Buffer.concat(parts).subarray(0, bytes);
}

/** Yield `buf` in chunks of random size (1 byte to ~64 KiB). */
async function* chunked(buf: Buffer, rand: () => number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length;) {
    const n = rand() < 0.1 ? 1 + Math.floor(rand() * 16) : 1 + Math.floor(rand() * 65536);
    yield buf.subarray(i, i + n);
    i += n;
  }
}

async function collect(it: AsyncIterable<Buffer>, limit = Infinity): Promise<Buffer> {
  const out: Buffer[] = [];
  let n = 0;
  for await (const b of it) {
    out.push(b);
    n += b.length;
    if (n >= limit) break;
  }
  return Buffer.concat(out);
}

interface Case {
  name: string;
  members: Array<{ bytes: number; level: number; kinds: Array<'text' | 'random' | 'runs'> }>;
}

const CASES: Case[] = [
  { name: 'single member, level 6, text', members: [{ bytes: 3_000_000, level: 6, kinds: ['text'] }] },
  {
    name: 'single member, level 1, mixed',
    members: [{ bytes: 2_500_000, level: 1, kinds: ['text', 'random', 'runs'] }],
  },
  {
    name: 'single member, level 9, runs and random',
    members: [{ bytes: 4_000_000, level: 9, kinds: ['runs', 'random'] }],
  },
  {
    name: 'many members incl. tiny and empty ones',
    members: [
      { bytes: 700_000, level: 6, kinds: ['text', 'random'] },
      { bytes: 0, level: 6, kinds: ['text'] },
      { bytes: 17, level: 9, kinds: ['text'] },
      { bytes: 1_200_000, level: 1, kinds: ['text', 'runs'] },
      { bytes: 300, level: 1, kinds: ['random'] },
      { bytes: 900_000, level: 9, kinds: ['text'] },
    ],
  },
];

function build(c: Case, seed: number): { data: Buffer; gz: Buffer; memberStarts: number[] } {
  const rand = rng(seed);
  const datas: Buffer[] = [];
  const gzs: Buffer[] = [];
  const memberStarts: number[] = [];
  let off = 0;
  for (const m of c.members) {
    const d = content(rand, m.bytes, m.kinds);
    datas.push(d);
    memberStarts.push(off);
    const g = zlib.gzipSync(d, { level: m.level });
    gzs.push(g);
    off += g.length;
  }
  return { data: Buffer.concat(datas), gz: Buffer.concat(gzs), memberStarts };
}

async function sequentialPass(gz: Buffer, rand: () => number, minPieceBytes: number) {
  const aps: GzipAccessPoint[] = [];
  const pieces: Buffer[] = [];
  const members: number[] = [];
  for await (const piece of inflateWithAccessPoints(chunked(gz, rand), { minPieceBytes })) {
    pieces.push(piece.data);
    members.push(piece.member);
    aps.push(piece.accessPoint());
  }
  return { aps, pieces, members };
}

describe('gzip access points', () => {
  const seenBitOffsets = new Set<number>();

  for (const [i, c] of CASES.entries()) {
    it(`resumes from random access points: ${c.name}`, async () => {
      const rand = rng(100 + i);
      const { data, gz, memberStarts } = build(c, 1 + i);
      const { aps, pieces, members } = await sequentialPass(gz, rand, 1 + Math.floor(rand() * 200_000));
      // The pieces tile the whole output, and each starts where its access point says.
      expect(Buffer.concat(pieces).equals(data)).toBe(true);
      let off = 0;
      for (const [k, ap] of aps.entries()) {
        expect(ap.uncompressedOffset).toBe(off);
        off += pieces[k]!.length;
        expect(ap.window.length).toBeLessThanOrEqual(32768);
        seenBitOffsets.add(ap.bitOffset);
      }
      // Every non-empty member starts a piece at its header, with an empty window.
      for (const start of memberStarts) {
        const ap = aps.find((a) => a.compressedOffset === start);
        if (ap) expect(ap.window.length).toBe(0);
      }
      expect(new Set(members).size).toBe(c.members.filter((m) => m.bytes > 0).length);

      // Random access points: output from each equals the true bytes from its offset.
      const picks = aps.length <= 12 ? aps : Array.from({ length: 12 }, () => aps[Math.floor(rand() * aps.length)]!);
      for (const ap of picks) {
        const readAll = rand() < 0.3;
        const got = await collect(
          inflateFromAccessPoint(ap, chunked(gz.subarray(ap.compressedOffset), rand)),
          readAll ? Infinity : 300_000,
        );
        const want = data.subarray(ap.uncompressedOffset, readAll ? data.length : ap.uncompressedOffset + got.length);
        expect(got.length).toBeGreaterThanOrEqual(Math.min(300_000, data.length - ap.uncompressedOffset));
        expect(got.equals(want)).toBe(true);
      }
      // The last access point read to the end (covers the continuation through later members).
      const last = aps[aps.length - 1]!;
      const first = aps[0]!;
      expect((await collect(inflateFromAccessPoint(first, chunked(gz, rand)))).equals(data)).toBe(true);
      expect(
        (await collect(inflateFromAccessPoint(last, chunked(gz.subarray(last.compressedOffset), rand)))).equals(
          data.subarray(last.uncompressedOffset),
        ),
      ).toBe(true);
    }, 30_000);
  }

  it('saw mid-byte access points at many bit offsets', () => {
    expect(seenBitOffsets.size).toBeGreaterThanOrEqual(6);
  });

  it('resumes at every bit offset 0-7', async () => {
    // memLevel 1 makes zlib emit tiny blocks, so block boundaries land on every bit offset.
    const rand = rng(7);
    const data = content(rand, 1_500_000, ['text', 'random']);
    const gz = zlib.gzipSync(data, { level: 6, memLevel: 1 });
    const { aps } = await sequentialPass(gz, rand, 1);
    for (let bitOffset = 0; bitOffset < 8; bitOffset++) {
      const some = aps.filter((a) => a.bitOffset === bitOffset);
      expect(some.length, `access points at bit offset ${bitOffset}`).toBeGreaterThan(0);
      for (const ap of [some[0]!, some[some.length - 1]!]) {
        const got = await collect(inflateFromAccessPoint(ap, chunked(gz.subarray(ap.compressedOffset), rand)));
        expect(got.equals(data.subarray(ap.uncompressedOffset)), `bit offset ${bitOffset}`).toBe(true);
      }
    }
  });

  it('parses member headers with FEXTRA, FNAME, FCOMMENT and FHCRC', async () => {
    const rand = rng(9);
    const a = content(rand, 100_000, ['text']);
    const b = content(rand, 120_000, ['text', 'random']);
    const gz = Buffer.concat([gzipWithAllHeaderFields(a), zlib.gzipSync(b), gzipWithAllHeaderFields(b)]);
    const data = Buffer.concat([a, b, b]);
    const { aps, pieces } = await sequentialPass(gz, rand, 1);
    expect(Buffer.concat(pieces).equals(data)).toBe(true);
    for (const ap of aps) {
      const got = await collect(inflateFromAccessPoint(ap, chunked(gz.subarray(ap.compressedOffset), rand)));
      expect(got.equals(data.subarray(ap.uncompressedOffset))).toBe(true);
    }
    expect((await collect(inflateFromAccessPoint(aps[0]!, chunked(gz, rand)))).equals(data)).toBe(true);
  });

  it('encodes and decodes access points', async () => {
    const rand = rng(11);
    const { gz } = build(CASES[0]!, 5);
    const { aps } = await sequentialPass(gz, rand, 100_000);
    for (const ap of aps) expect(decodeAccessPoint(encodeAccessPoint(ap))).toEqual(ap);
    const big = { compressedOffset: 40e9, bitOffset: 7, uncompressedOffset: 2 ** 40, window: Buffer.alloc(32768, 1) };
    expect(decodeAccessPoint(encodeAccessPoint(big))).toEqual(big);
    const enc = encodeAccessPoint(aps[1]!);
    expect(() => decodeAccessPoint(enc.subarray(0, enc.length - 1))).toThrow(/expected/);
    expect(() => decodeAccessPoint(Buffer.from('nope'))).toThrow(/bad magic/);
    const wrongVersion = Buffer.from(enc);
    wrongVersion[4] = 9;
    expect(() => decodeAccessPoint(wrongVersion)).toThrow(/version 9/);
    expect(() => encodeAccessPoint({ ...big, bitOffset: 8 })).toThrow(/bitOffset 8/);
  });

  describe('bad input', () => {
    const rand = rng(13);
    const { data, gz } = build(CASES[3]!, 21);

    it('throws on truncated input in the sequential pass, naming the offset', async () => {
      for (const cut of [1, 10, Math.floor(gz.length / 3), gz.length - 5, gz.length - 1]) {
        const err = await sequentialPass(gz.subarray(0, cut), rand, 50_000).catch((e: unknown) => e);
        expect(err, `cut at ${cut}`).toBeInstanceOf(GzipDataError);
        expect((err as Error).message).toMatch(new RegExp(`truncated gzip input.*offset ${cut}`));
      }
      await expect(sequentialPass(Buffer.alloc(0), rand, 1)).rejects.toThrow(/empty gzip input/);
    });

    it('throws on truncated input when resuming, in the first or a later member', async () => {
      const { aps } = await sequentialPass(gz, rand, 50_000);
      const ap = aps.find((a) => a.bitOffset > 0)!;
      for (const end of [ap.compressedOffset + 100, gz.length - 3, gz.length - 20_000]) {
        const err = await collect(
          inflateFromAccessPoint(ap, chunked(gz.subarray(ap.compressedOffset, end), rand)),
        ).catch((e: unknown) => e);
        expect(err, `end at ${end}`).toBeInstanceOf(GzipDataError);
        expect((err as Error).message).toMatch(/truncated gzip input/);
      }
    });

    it('rejects trailing garbage, corrupt data and a bad CRC', async () => {
      const garbage = Buffer.concat([gz, Buffer.from('garbage!')]);
      await expect(sequentialPass(garbage, rand, 50_000)).rejects.toThrow(
        new RegExp(`trailing garbage after gzip member 5 at compressed offset ${gz.length}`),
      );
      const { aps } = await sequentialPass(gz, rand, 50_000);
      const ap = aps[2]!;
      await expect(
        collect(inflateFromAccessPoint(ap, chunked(garbage.subarray(ap.compressedOffset), rand))),
      ).rejects.toThrow(/trailing garbage or a corrupt gzip member header/);
      const zeros = Buffer.concat([gz, Buffer.alloc(100)]);
      await expect(
        collect(inflateFromAccessPoint(ap, chunked(zeros.subarray(ap.compressedOffset), rand))),
      ).rejects.toThrow(new RegExp(`trailing garbage after the last gzip member at compressed offset ${gz.length}`));

      const single = zlib.gzipSync(data.subarray(0, 500_000));
      const badCrc = Buffer.from(single);
      badCrc[badCrc.length - 6]! ^= 0xff;
      await expect(sequentialPass(badCrc, rand, 1)).rejects.toThrow(
        /corrupt gzip data in member 0.*incorrect data check/,
      );
      await expect(
        collect(
          inflateFromAccessPoint(
            { compressedOffset: 0, bitOffset: 0, uncompressedOffset: 0, window: Buffer.alloc(0) },
            chunked(badCrc, rand),
          ),
        ),
      ).rejects.toThrow(GzipDataError);
      const badLength = Buffer.from(single);
      badLength[badLength.length - 2]! ^= 0x01;
      await expect(sequentialPass(badLength, rand, 1)).rejects.toThrow(/incorrect length check/);
      const flipped = Buffer.from(single);
      for (let k = 1000; k < 1100; k++) flipped[k] = 0xff;
      await expect(sequentialPass(flipped, rand, 1)).rejects.toThrow(GzipDataError);
    });

    it('passes errors of the input through unchanged', async () => {
      const { aps } = await sequentialPass(gz, rand, 50_000);
      const boom = new Error('connection reset');
      async function* failing(from: number): AsyncGenerator<Buffer> {
        yield gz.subarray(from, from + 5000);
        throw boom;
      }
      await expect(collect(inflateFromAccessPoint(aps[1]!, failing(aps[1]!.compressedOffset)))).rejects.toBe(boom);
      const drain = async (): Promise<void> => {
        for await (const piece of inflateWithAccessPoints(failing(0))) expect(piece.data.length).toBeGreaterThan(0);
      };
      await expect(drain()).rejects.toBe(boom);
    });

    it('stops cleanly when the consumer stops early', async () => {
      const { aps } = await sequentialPass(gz, rand, 50_000);
      let pulled = 0;
      async function* counting(): AsyncGenerator<Buffer> {
        for await (const c of chunked(gz.subarray(aps[1]!.compressedOffset), rand)) {
          pulled += c.length;
          yield c;
        }
      }
      for await (const out of inflateFromAccessPoint(aps[1]!, counting())) {
        expect(out.length).toBeGreaterThan(0);
        break;
      }
      expect(pulled).toBeLessThan(gz.length / 2);
    });
  });
});

/** A gzip member carrying every optional header field, built by hand around zlib's raw deflate. */
function gzipWithAllHeaderFields(data: Buffer): Buffer {
  const extra = Buffer.from([0x41, 0x42, 3, 0, 1, 2, 3]); // one subfield "AB" of 3 bytes
  const head = Buffer.concat([
    Buffer.from([0x1f, 0x8b, 8, 0x04 | 0x08 | 0x10 | 0x02, 0, 0, 0, 0, 0, 3]),
    Buffer.from([extra.length, 0]),
    extra,
    Buffer.from('name.json\0'),
    Buffer.from('a comment\0'),
  ]);
  const hcrc = Buffer.alloc(2);
  hcrc.writeUInt16LE(crc32(head) & 0xffff);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(data), 0);
  trailer.writeUInt32LE(data.length >>> 0, 4);
  return Buffer.concat([head, hcrc, zlib.deflateRawSync(data), trailer]);
}

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
