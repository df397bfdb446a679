// Incremental scanner for bzip2 block boundaries. bzip2 blocks are not byte-aligned: each starts with
// the 48-bit magic 0x314159265359 at any bit position, and a stream ends with 0x177245385090.
//
// Speed: for any bit shift, a 48-bit magic fully determines 5 consecutive bytes, so it covers 4
// consecutive byte pairs and one of them starts at a file offset divisible by 4. We look up one
// 16-bit pair every 4 bytes in a 64 Ki-entry table and check the full 48 bits only on a hit.
import { readBits } from './bzip2-bits.js';

export interface Bzip2Block {
  /** Bit offset of the block magic from the start of the file (MSB-first). */
  bitOffset: number;
  /** Bits up to the next block magic or end-of-stream magic. */
  bitLength: number;
  /** The block's stored CRC (bzip2's CRC32 of its uncompressed bytes). */
  blockCrc: number;
  /** Block size level 1-9 from the stream header "BZh<level>". */
  level: number;
  /** 0-based index of the bzip2 stream holding the block (files may concatenate streams). */
  stream: number;
  /** On the last block of a stream only: the stream's stored combined CRC. */
  streamCrc?: number;
}

export class Bzip2DataError extends Error {
  constructor(
    message: string,
    /** Bit offset from the start of the file where the problem was found, when known. */
    readonly bitOffset?: number,
  ) {
    super(message);
    this.name = 'Bzip2DataError';
  }
}

const MAGICS = [
  { kind: 'block' as const, hi: 0x314159, lo: 0x265359 },
  { kind: 'eos' as const, hi: 0x177245, lo: 0x385090 },
];
type Kind = (typeof MAGICS)[number]['kind'];

interface PairHit {
  magic: number; // index into MAGICS
  shift: number; // bit position of the magic's first bit within its first byte
  k: number; // the pair starts at byte (first byte + 1 + k)
}

// pair value -> which (magic, shift, k) put that pair there
const PAIR_FLAGS = new Uint8Array(65536);
const PAIR_HITS = new Map<number, PairHit[]>();
MAGICS.forEach((m, magic) => {
  const value = (BigInt(m.hi) << 24n) | BigInt(m.lo);
  for (let shift = 0; shift < 8; shift++) {
    const v = value << BigInt(56 - 48 - shift); // 7 bytes, magic starting at bit `shift`
    const bytes = Array.from({ length: 7 }, (_, j) => Number((v >> BigInt(8 * (6 - j))) & 0xffn));
    for (let k = 0; k < 4; k++) {
      const pair = (bytes[1 + k]! << 8) | bytes[2 + k]!;
      PAIR_FLAGS[pair] = 1;
      const list = PAIR_HITS.get(pair) ?? [];
      list.push({ magic, shift, k });
      PAIR_HITS.set(pair, list);
    }
  }
});

/** Bytes that must follow a scanned position before it is examined (block CRC, EOS trailer, next header). */
const LOOKAHEAD = 24;
/** Bytes kept before the next position to scan: a magic may start up to 5 bytes before its pair. */
const LOOKBEHIND = 8;

interface Candidate {
  kind: Kind;
  bit: number; // absolute
  crc: number;
  /** EOS only: level of the stream header that follows, 0 for end of file, -1 for neither (a false EOS). */
  next?: number;
  streamEndByte?: number;
}

/** Push chunks in file order; get back the blocks whose extent is known so far. */
export class Bzip2Scanner {
  private buf: Buffer = Buffer.alloc(0);
  private bufOffset = 0; // file offset of buf[0]
  private nextPair = 0; // next file offset (multiple of 4) whose byte pair is looked up
  private total = 0;
  // stream state
  private headerChecked = false;
  private level = 0;
  private stream = 0;
  private expectFirstBlockBit = 32;
  private minNextBit = 32;
  private pending: { bit: number; crc: number } | undefined;
  private atEof = false; // an end-of-stream marker was followed by the end of the file
  private lastEosBit = -1;

  push(chunk: Uint8Array): Bzip2Block[] {
    if (chunk.length === 0) return [];
    this.total += chunk.length;
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    return this.scan(false);
  }

  finish(): Bzip2Block[] {
    const blocks = this.scan(true);
    if (!this.atEof) {
      const after = this.pending?.bit ?? this.lastEosBit;
      throw new Bzip2DataError(
        `bzip2 input ends at byte ${this.total} without a final end-of-stream marker after bit ${after} (truncated input or trailing garbage)`,
        after,
      );
    }
    return blocks;
  }

  private scan(final: boolean): Bzip2Block[] {
    const buf = this.buf;
    const base = this.bufOffset;
    if (!this.headerChecked) {
      if (buf.length < 4 && !final) return [];
      if (this.total === 0) throw new Bzip2DataError('empty bzip2 input (no "BZh" stream header)', 0);
      const level = headerLevel(buf, 0);
      if (level === undefined) throw new Bzip2DataError('not a bzip2 stream: no "BZh[1-9]" header at byte 0', 0);
      this.level = level;
      this.headerChecked = true;
    }
    const candidates: Candidate[] = [];
    const limit = final ? buf.length - 1 : buf.length - LOOKAHEAD;
    let p = this.nextPair - base;
    for (; p < limit; p += 4) {
      if (PAIR_FLAGS[(buf[p]! << 8) | buf[p + 1]!] === 0) continue;
      for (const hit of PAIR_HITS.get((buf[p]! << 8) | buf[p + 1]!)!) {
        const first = p - 1 - hit.k;
        if (first < 0) continue; // before the file start (buf keeps LOOKBEHIND bytes otherwise)
        const rel = first * 8 + hit.shift;
        const m = MAGICS[hit.magic]!;
        if (rel + 48 + 32 > buf.length * 8) continue; // cut off by the end of the file
        if (readBits(buf, rel, 24) !== m.hi || readBits(buf, rel + 24, 24) !== m.lo) continue;
        const c: Candidate = { kind: m.kind, bit: base * 8 + rel, crc: readBits(buf, rel + 48, 32) };
        if (m.kind === 'eos') {
          const endByte = Math.ceil((rel + 80) / 8);
          c.streamEndByte = base + endByte;
          c.next = endByte === buf.length && final ? 0 : (headerLevel(buf, endByte) ?? -1);
        }
        candidates.push(c);
      }
    }
    this.nextPair = base + p;
    // Keep only what later pairs may still need.
    const keepFrom = Math.max(0, this.nextPair - LOOKBEHIND - base);
    this.buf = buf.subarray(keepFrom);
    this.bufOffset = base + keepFrom;

    candidates.sort((a, b) => a.bit - b.bit);
    const blocks: Bzip2Block[] = [];
    for (const c of candidates) this.accept(c, blocks);
    return blocks;
  }

  private accept(c: Candidate, blocks: Bzip2Block[]): void {
    if (this.atEof || c.bit < this.minNextBit) return; // inside a header, a CRC or after the end
    if (c.kind === 'block') {
      if (this.pending) {
        blocks.push(this.block(c.bit));
      } else if (c.bit !== this.expectFirstBlockBit) {
        return; // not where a stream's first block must be: chance match in garbage
      }
      this.pending = { bit: c.bit, crc: c.crc };
      this.minNextBit = c.bit + 80;
      return;
    }
    // End of stream: real only if a stream header or the end of the file follows.
    if (c.next === -1) return;
    if (this.pending) blocks.push({ ...this.block(c.bit), streamCrc: c.crc });
    else if (c.bit !== this.expectFirstBlockBit) return;
    this.pending = undefined;
    this.lastEosBit = c.bit;
    if (c.next === 0) {
      this.atEof = true;
      return;
    }
    this.level = c.next!;
    this.stream += 1;
    this.expectFirstBlockBit = (c.streamEndByte! + 4) * 8;
    this.minNextBit = this.expectFirstBlockBit;
  }

  private block(endBit: number): Bzip2Block {
    const p = this.pending!;
    return { bitOffset: p.bit, bitLength: endBit - p.bit, blockCrc: p.crc, level: this.level, stream: this.stream };
  }
}

/** Level 1-9 if `buf` holds "BZh<level>" at `at`, else undefined. */
function headerLevel(buf: Uint8Array, at: number): number | undefined {
  if (at + 4 > buf.length) return undefined;
  if (buf[at] !== 0x42 || buf[at + 1] !== 0x5a || buf[at + 2] !== 0x68) return undefined;
  const level = buf[at + 3]! - 0x30;
  return level >= 1 && level <= 9 ? level : undefined;
}
