// The manifest pass's side of zran-style random access into gzip files: one inflate pass with pako (a zlib port
// that can stop at deflate block boundaries and report the bit position there) that hands out access points.
import zlib from 'node:zlib';
import {
  ZStream,
  Z_BLOCK,
  Z_BUF_ERROR,
  Z_OK,
  Z_STREAM_END,
  zlibInflate,
  zlibInflateInit2,
  zlibInflateReset,
} from 'pako';
import { GzipDataError } from './gzip-bytes.js';
import { GZIP_WINDOW_BYTES, type GzipPiece } from './gzip-access.js';

// Native CRC32 (Node >= 20.15 / 22.2) is much faster than pako's JS one (see docs/performance.md);
// where present, pako's own check is switched off and the member trailer is verified here.
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

const DEFAULT_MIN_PIECE_BYTES = 1024 * 1024;
const OUT_CHUNK_BYTES = 1024 * 1024;
const GZIP_WINDOW_BITS = 16 + 15; // gzip wrapper only, 32 KiB window

/**
 * One sequential pass over a gzip file (all members). Every yielded piece starts at a deflate block
 * boundary or a member start and holds at least `minPieceBytes` (except a member's last piece), so
 * the nearest access point at or before any uncompressed offset is at most about one piece away.
 * Member CRC32 and ISIZE are verified; truncated input and trailing garbage throw GzipDataError.
 */
export async function* inflateWithAccessPoints(
  compressed: AsyncIterable<Uint8Array>,
  opts: { minPieceBytes?: number } = {},
): AsyncGenerator<GzipPiece, void, undefined> {
  const pass = new PiecePass(Math.max(1, opts.minPieceBytes ?? DEFAULT_MIN_PIECE_BYTES));
  let sawInput = false;
  for await (const chunk of compressed) {
    if (chunk.length === 0) continue;
    sawInput = true;
    yield* pass.inflate(chunk);
  }
  if (!sawInput) throw new GzipDataError('empty gzip input', 0);
  pass.finish();
}

/** The state of one pass: pako's stream, the current member's checks, and the piece being gathered. */
class PiecePass {
  private readonly strm = new ZStream();
  private memberCrc = 0;
  private memberSize = 0;
  private lastInput = Buffer.alloc(0); // the last <= 8 bytes of input before the current chunk
  private out = Buffer.allocUnsafe(0);
  private outTaken = 0; // bytes of `out` already assigned to pieces
  private chunkOffset = 0; // file offset of strm.input[0]
  private member = 0;
  private memberDone = false; // last member ended (Z_STREAM_END) and nothing after it yet
  private uncompressed = 0; // output produced before the current piece
  // Current piece: its start and its bytes so far (views into output buffers, never overwritten).
  private start = { compressedOffset: 0, bitOffset: 0 };
  private parts: Buffer[] = [];
  private partsLen = 0;
  // Output of earlier pieces of the current member, enough of it to cover a window.
  private history: Buffer[] = [];

  constructor(private readonly minPieceBytes: number) {
    check(zlibInflateInit2(this.strm, GZIP_WINDOW_BITS), this.strm, 0);
    this.skipPakoCheck();
    this.freshOutput();
  }

  /** Inflates one chunk of input, yielding every piece that ends in it. */
  *inflate(chunk: Uint8Array): Generator<GzipPiece, void, undefined> {
    const strm = this.strm;
    strm.input = chunk;
    strm.next_in = 0;
    strm.avail_in = chunk.length;
    for (;;) {
      if (this.memberDone) {
        if (strm.avail_in === 0) break;
        this.startNextMember();
      }
      if (strm.avail_out === 0) {
        this.takeOutput();
        this.freshOutput();
      }
      const ret = zlibInflate(strm, Z_BLOCK);
      if (ret !== Z_OK && ret !== Z_STREAM_END && ret !== Z_BUF_ERROR) {
        throw new GzipDataError(
          `corrupt gzip data in member ${this.member} near compressed offset ${this.chunkOffset + strm.next_in}: ${strm.msg || `zlib code ${ret}`}`,
          this.chunkOffset + strm.next_in,
        );
      }
      if (ret === Z_BUF_ERROR && strm.avail_in > 0 && strm.avail_out > 0) {
        throw new Error(`internal: pako made no progress at compressed offset ${this.chunkOffset + strm.next_in}`);
      }
      if (ret === Z_STREAM_END) {
        const piece = this.endMember();
        if (piece) yield piece;
      } else if ((strm.data_type & 128) !== 0 && (strm.data_type & 64) === 0) {
        const piece = this.atBlockBoundary();
        if (piece) yield piece;
      }
      if (strm.avail_in === 0 && strm.avail_out !== 0) break;
    }
    this.chunkOffset += chunk.length;
    const view = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.lastInput =
      view.length >= 8 ? Buffer.from(view.subarray(-8)) : Buffer.concat([this.lastInput, view]).subarray(-8);
  }

  /** Throws unless the input ended with a whole member. */
  finish(): void {
    if (!this.memberDone) {
      throw new GzipDataError(
        `truncated gzip input: compressed data ends at byte offset ${this.chunkOffset} inside member ${this.member}`,
        this.chunkOffset,
      );
    }
  }

  // pako's state is untyped; bit 4 of `wrap` asks it to verify the header CRC, CRC32 and ISIZE.
  private skipPakoCheck(): void {
    if (nativeCrc32) (this.strm.state as { wrap: number }).wrap &= ~4;
  }

  private freshOutput(): void {
    this.out = Buffer.allocUnsafe(OUT_CHUNK_BYTES);
    this.outTaken = 0;
    this.strm.output = this.out;
    this.strm.next_out = 0;
    this.strm.avail_out = this.out.length;
  }

  /** Another member follows: it must start with the gzip magic, else the rest is garbage. */
  private startNextMember(): void {
    const strm = this.strm;
    const at = this.chunkOffset + strm.next_in;
    if (strm.input[strm.next_in] !== 0x1f)
      throw new GzipDataError(`trailing garbage after gzip member ${this.member} at compressed offset ${at}`, at);
    check(zlibInflateReset(strm), strm, at);
    this.skipPakoCheck();
    this.memberCrc = 0;
    this.memberSize = 0;
    this.memberDone = false;
    this.member += 1;
    this.history = [];
    this.start = { compressedOffset: at, bitOffset: 0 };
  }

  /** The member's trailer checked; its last piece, if it has output left. */
  private endMember(): GzipPiece | undefined {
    const strm = this.strm;
    this.takeOutput();
    if (nativeCrc32) {
      // The trailer is the 8 bytes pako consumed last; they may start in an earlier chunk.
      const consumed = Buffer.from(strm.input.buffer, strm.input.byteOffset, strm.next_in);
      const trailer =
        consumed.length >= 8 ? consumed.subarray(-8) : Buffer.concat([this.lastInput, consumed]).subarray(-8);
      verifyTrailer(trailer, this.memberCrc, this.memberSize, this.member, this.chunkOffset + strm.next_in);
    }
    this.memberDone = true;
    return this.partsLen > 0 ? this.makePiece() : undefined;
  }

  /** At the start of a (non-first) block: end the piece here if it is big enough. */
  private atBlockBoundary(): GzipPiece | undefined {
    this.takeOutput();
    if (this.partsLen < this.minPieceBytes) return undefined;
    const pos = this.chunkOffset + this.strm.next_in;
    const unusedBits = this.strm.data_type & 63;
    if (unusedBits > 7) throw new Error(`pako kept ${unusedBits} bits at a block boundary`); // cannot happen in zlib's design
    const piece = this.makePiece();
    this.start =
      unusedBits === 0
        ? { compressedOffset: pos, bitOffset: 0 }
        : { compressedOffset: pos - 1, bitOffset: 8 - unusedBits };
    return piece;
  }

  private takeOutput(): void {
    const strm = this.strm;
    if (strm.next_out > this.outTaken) {
      const produced = this.out.subarray(this.outTaken, strm.next_out);
      if (nativeCrc32) {
        this.memberCrc = nativeCrc32(produced, this.memberCrc);
        this.memberSize += produced.length;
      }
      this.parts.push(produced);
      this.partsLen += strm.next_out - this.outTaken;
      this.outTaken = strm.next_out;
    }
  }

  private makePiece(): GzipPiece {
    const data = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsLen);
    const windowSource = this.history;
    const piece: GzipPiece = {
      data,
      uncompressedOffset: this.uncompressed,
      compressedOffset: this.start.compressedOffset,
      bitOffset: this.start.bitOffset,
      member: this.member,
      accessPoint: () => ({
        compressedOffset: piece.compressedOffset,
        bitOffset: piece.bitOffset,
        uncompressedOffset: piece.uncompressedOffset,
        window: lastBytes(windowSource, GZIP_WINDOW_BYTES),
      }),
    };
    this.history = trimHistory([...this.history, data]);
    this.uncompressed += this.partsLen;
    this.parts = [];
    this.partsLen = 0;
    return piece;
  }
}

function verifyTrailer(trailer: Buffer, crc: number, size: number, member: number, offset: number): void {
  const storedCrc = trailer.readUInt32LE(0);
  const storedSize = trailer.readUInt32LE(4);
  if (storedCrc !== crc >>> 0) {
    throw new GzipDataError(
      `corrupt gzip data in member ${member} before compressed offset ${offset}: incorrect data check (stored CRC32 ${storedCrc.toString(16)}, computed ${(crc >>> 0).toString(16)})`,
      offset,
    );
  }
  if (storedSize !== size % 2 ** 32) {
    throw new GzipDataError(
      `corrupt gzip data in member ${member} before compressed offset ${offset}: incorrect length check (stored ISIZE ${storedSize}, decoded ${size} bytes)`,
      offset,
    );
  }
}

function check(ret: number, strm: ZStream, offset: number): void {
  if (ret !== Z_OK) throw new GzipDataError(`zlib error ${ret} at compressed offset ${offset}: ${strm.msg}`, offset);
}

/** The last `n` bytes of the concatenation of `bufs`, copied. */
function lastBytes(bufs: Buffer[], n: number): Buffer {
  const tail: Buffer[] = [];
  let len = 0;
  for (let i = bufs.length - 1; i >= 0 && len < n; i--) {
    tail.unshift(bufs[i]!);
    len += bufs[i]!.length;
  }
  const all = Buffer.concat(tail, len);
  return Buffer.from(all.subarray(Math.max(0, len - n)));
}

/** Drop leading buffers that are not needed to cover a window. */
function trimHistory(bufs: Buffer[]): Buffer[] {
  let len = bufs.reduce((s, b) => s + b.length, 0);
  let i = 0;
  while (i < bufs.length - 1 && len - bufs[i]!.length >= GZIP_WINDOW_BYTES) len -= bufs[i++]!.length;
  return i === 0 ? bufs : bufs.slice(i);
}
