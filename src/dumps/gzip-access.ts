// zran-style random access into gzip files.
//
// The manifest pass inflates a whole dump once with pako (a zlib port that can stop at deflate block
// boundaries and report the bit position there) and hands out access points on request. A task then
// resumes at an access point with Node's native zlib, which is several times faster than pako but
// offers neither inflatePrime nor a bit offset: we make a mid-byte start byte-aligned by prepending
// empty deflate blocks whose total bit length fills the part of the first byte that belongs to the
// previous block (see alignmentPrefix).
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
import { ByteSource, GzipDataError } from './gzip-bytes.js';

export { GzipDataError };

/** Deflate's window: a block may refer back this far into earlier output. */
export const GZIP_WINDOW_BYTES = 32 * 1024;

export interface GzipAccessPoint {
  /** File offset of the byte holding the first bit of a deflate block, or of a gzip member header. */
  compressedOffset: number;
  /** Bits 0-7 of that byte already used by the previous block (deflate fills bytes LSB first). */
  bitOffset: number;
  /** Offset in the file's whole decompressed output (all members). */
  uncompressedOffset: number;
  /** Up to 32 KiB of output preceding this point in the same member; empty at a member start. */
  window: Buffer;
}

export interface GzipPiece {
  /** Decompressed bytes; `data[0]` is at `uncompressedOffset`. */
  data: Buffer;
  uncompressedOffset: number;
  /** Where this piece starts in the compressed file (a block boundary or a member header). */
  compressedOffset: number;
  bitOffset: number;
  /** 0-based index of the gzip member this piece belongs to. */
  member: number;
  /** The access point at the start of this piece; copies its window (so call it only where a task starts). */
  accessPoint(): GzipAccessPoint;
}

// Native CRC32 (Node >= 20.15 / 22.2) is much faster than pako's JS one, which took a quarter of the
// pass; where present, pako's own check is switched off and the member trailer is verified here.
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

const DEFAULT_MIN_PIECE_BYTES = 1024 * 1024;
const OUT_CHUNK_BYTES = 1024 * 1024;
/**
 * Output chunk of a task's inflater: zlib's default 16 KiB makes a round trip from the thread pool to the main thread
 * (and a buffer for the batch cutter to copy) per 16 KiB of dump.
 */
const INFLATE_CHUNK_BYTES = 256 * 1024;
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
  const minPieceBytes = Math.max(1, opts.minPieceBytes ?? DEFAULT_MIN_PIECE_BYTES);
  const strm = new ZStream();
  check(zlibInflateInit2(strm, GZIP_WINDOW_BITS), strm, 0);
  // pako's state is untyped; bit 4 of `wrap` asks it to verify the header CRC, CRC32 and ISIZE.
  const skipPakoCheck = (): void => {
    if (nativeCrc32) (strm.state as { wrap: number }).wrap &= ~4;
  };
  skipPakoCheck();
  let memberCrc = 0;
  let memberSize = 0;
  let lastInput = Buffer.alloc(0); // the last <= 8 bytes of input before the current chunk

  let out = Buffer.allocUnsafe(OUT_CHUNK_BYTES);
  let outTaken = 0; // bytes of `out` already assigned to pieces
  strm.output = out;
  strm.next_out = 0;
  strm.avail_out = out.length;

  let chunkOffset = 0; // file offset of strm.input[0]
  let sawInput = false;
  let member = 0;
  let memberDone = false; // last member ended (Z_STREAM_END) and nothing after it yet
  let uncompressed = 0; // output produced before the current piece
  // Current piece: its start and its bytes so far (views into output buffers, never overwritten).
  let start = { compressedOffset: 0, bitOffset: 0 };
  let parts: Buffer[] = [];
  let partsLen = 0;
  // Output of earlier pieces of the current member, enough of it to cover a window.
  let history: Buffer[] = [];

  const takeOutput = (): void => {
    if (strm.next_out > outTaken) {
      const produced = out.subarray(outTaken, strm.next_out);
      if (nativeCrc32) {
        memberCrc = nativeCrc32(produced, memberCrc);
        memberSize += produced.length;
      }
      parts.push(produced);
      partsLen += strm.next_out - outTaken;
      outTaken = strm.next_out;
    }
  };
  const makePiece = (): GzipPiece => {
    const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts, partsLen);
    const windowSource = history;
    const piece: GzipPiece = {
      data,
      uncompressedOffset: uncompressed,
      compressedOffset: start.compressedOffset,
      bitOffset: start.bitOffset,
      member,
      accessPoint: () => ({
        compressedOffset: piece.compressedOffset,
        bitOffset: piece.bitOffset,
        uncompressedOffset: piece.uncompressedOffset,
        window: lastBytes(windowSource, GZIP_WINDOW_BYTES),
      }),
    };
    history = trimHistory([...history, data]);
    uncompressed += partsLen;
    parts = [];
    partsLen = 0;
    return piece;
  };

  for await (const chunk of compressed) {
    if (chunk.length === 0) continue;
    sawInput = true;
    strm.input = chunk;
    strm.next_in = 0;
    strm.avail_in = chunk.length;
    for (;;) {
      if (memberDone) {
        if (strm.avail_in === 0) break;
        // Another member follows: it must start with the gzip magic, else the rest is garbage.
        if (strm.input[strm.next_in] !== 0x1f) {
          throw new GzipDataError(
            `trailing garbage after gzip member ${member} at compressed offset ${chunkOffset + strm.next_in}`,
            chunkOffset + strm.next_in,
          );
        }
        check(zlibInflateReset(strm), strm, chunkOffset + strm.next_in);
        skipPakoCheck();
        memberCrc = 0;
        memberSize = 0;
        memberDone = false;
        member += 1;
        history = [];
        start = { compressedOffset: chunkOffset + strm.next_in, bitOffset: 0 };
      }
      if (strm.avail_out === 0) {
        takeOutput();
        out = Buffer.allocUnsafe(OUT_CHUNK_BYTES);
        outTaken = 0;
        strm.output = out;
        strm.next_out = 0;
        strm.avail_out = out.length;
      }
      const ret = zlibInflate(strm, Z_BLOCK);
      if (ret !== Z_OK && ret !== Z_STREAM_END && ret !== Z_BUF_ERROR) {
        throw new GzipDataError(
          `corrupt gzip data in member ${member} near compressed offset ${chunkOffset + strm.next_in}: ${strm.msg || `zlib code ${ret}`}`,
          chunkOffset + strm.next_in,
        );
      }
      if (ret === Z_BUF_ERROR && strm.avail_in > 0 && strm.avail_out > 0) {
        throw new Error(`internal: pako made no progress at compressed offset ${chunkOffset + strm.next_in}`);
      }
      if (ret === Z_STREAM_END) {
        takeOutput();
        if (nativeCrc32) {
          // The trailer is the 8 bytes pako consumed last; they may start in an earlier chunk.
          const consumed = Buffer.from(strm.input.buffer, strm.input.byteOffset, strm.next_in);
          const trailer = consumed.length >= 8 ? consumed.subarray(-8) : Buffer.concat([lastInput, consumed]).subarray(-8);
          verifyTrailer(trailer, memberCrc, memberSize, member, chunkOffset + strm.next_in);
        }
        if (partsLen > 0) yield makePiece();
        memberDone = true;
      } else if ((strm.data_type & 128) !== 0 && (strm.data_type & 64) === 0) {
        // At the start of a (non-first) block: end the piece here if it is big enough.
        takeOutput();
        if (partsLen >= minPieceBytes) {
          const pos = chunkOffset + strm.next_in;
          const unusedBits = strm.data_type & 63;
          if (unusedBits > 7) throw new Error(`pako kept ${unusedBits} bits at a block boundary`); // cannot happen in zlib's design
          yield makePiece();
          start =
            unusedBits === 0
              ? { compressedOffset: pos, bitOffset: 0 }
              : { compressedOffset: pos - 1, bitOffset: 8 - unusedBits };
        }
      }
      if (strm.avail_in === 0 && strm.avail_out !== 0) break;
    }
    chunkOffset += chunk.length;
    const view = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    lastInput = view.length >= 8 ? Buffer.from(view.subarray(-8)) : Buffer.concat([lastInput, view]).subarray(-8);
  }
  if (!sawInput) throw new GzipDataError('empty gzip input', 0);
  if (!memberDone) {
    throw new GzipDataError(
      `truncated gzip input: compressed data ends at byte offset ${chunkOffset} inside member ${member}`,
      chunkOffset,
    );
  }
}

/**
 * Decompressed output from an access point on: `compressed` yields the file's bytes starting at
 * `ap.compressedOffset` (to EOF or any later bound). Output starts exactly at `ap.uncompressedOffset`
 * and continues through later members until the input ends or the consumer stops pulling.
 * Input that stops inside a member throws GzipDataError (never a silent short read) unless the
 * consumer stopped first.
 */
export async function* inflateFromAccessPoint(
  ap: GzipAccessPoint,
  compressed: AsyncIterable<Uint8Array>,
): AsyncGenerator<Buffer, void, undefined> {
  validateAccessPoint(ap);
  const src = new ByteSource(compressed, ap.compressedOffset);
  try {
    const first = await src.peekByte();
    if (first === undefined) {
      throw new GzipDataError(`no compressed data at access point offset ${ap.compressedOffset}`, ap.compressedOffset);
    }
    // A deflate block cannot start with byte 0x1f at bit 0 (block type 3 is reserved), so this is a member header.
    const atMemberHeader = ap.bitOffset === 0 && ap.window.length === 0 && first === 0x1f;
    if (!atMemberHeader) {
      yield* inflateRawMember(ap, src);
      // The member's trailer (CRC32, ISIZE) cannot be checked without the member's earlier output.
      await src.readExactly(8, 'gzip member trailer');
      if ((await src.peekByte()) === undefined) return;
    }
    yield* gunzipRest(src);
  } finally {
    await src.close();
  }
}

/** Inflate from a mid-member access point to the end of that member's deflate stream. */
async function* inflateRawMember(ap: GzipAccessPoint, src: ByteSource): AsyncGenerator<Buffer, void, undefined> {
  const inflater = zlib.createInflateRaw({ chunkSize: INFLATE_CHUNK_BYTES, ...(ap.window.length > 0 ? { dictionary: ap.window } : {}) });
  let prefix: Buffer | undefined;
  if (ap.bitOffset > 0) {
    const firstByte = await src.readExactly(1, 'first byte at the access point');
    prefix = alignmentPrefix(ap.bitOffset, firstByte[0]!);
  }
  yield* pump(inflater, src, prefix, 'deflate stream');
}

/** Gunzip whole members from a member header on; Node handles multi-member input and checks CRCs. */
async function* gunzipRest(src: ByteSource): AsyncGenerator<Buffer, void, undefined> {
  const start = src.position;
  yield* pump(zlib.createGunzip({ chunkSize: INFLATE_CHUNK_BYTES }), src, undefined, 'gzip member');
  if ((await src.peekByte()) !== undefined) {
    throw new GzipDataError(
      `trailing garbage after the last gzip member at compressed offset ${src.position} (members start at ${start})`,
      src.position,
    );
  }
}

/**
 * Feed `src` into a zlib transform and yield its output, with backpressure both ways. When zlib
 * stops consuming (end of the deflate stream or of the last gzip member) the unconsumed bytes go
 * back into `src`. `prefix` is written first and is not part of `src`'s byte count.
 */
async function* pump(
  z: zlib.InflateRaw | zlib.Gunzip,
  src: ByteSource,
  prefix: Buffer | undefined,
  what: string,
): AsyncGenerator<Buffer, void, undefined> {
  let zlibError: unknown;
  let inputError: unknown;
  const closed = new Error('zlib stream closed');
  // zlib never calls back a write that was in progress when the stream failed: wait for 'close' too.
  const write = (buf: Buffer): Promise<void> =>
    new Promise((resolve, reject) => {
      const onClose = (): void => reject(closed);
      z.once('close', onClose);
      z.write(buf, (err) => {
        z.off('close', onClose);
        if (err) reject(err);
        else resolve();
      });
    });
  const writer = (async () => {
    let written = 0;
    if (prefix) {
      await write(prefix);
      written = prefix.length;
    }
    for (;;) {
      const chunk = await src.next();
      if (chunk === undefined) break;
      await write(chunk);
      written += chunk.length;
      const unconsumed = written - z.bytesWritten;
      if (unconsumed > 0) {
        src.unshift(chunk.subarray(chunk.length - unconsumed));
        break;
      }
    }
    z.end();
  })().catch((err: unknown) => {
    // A failed write is zlib's error, which the reading side reports; anything else came from the input.
    if (err !== closed && !(err instanceof Error && 'errno' in err)) inputError = err;
    z.destroy();
  });
  try {
    for await (const out of z) yield out as Buffer;
  } catch (err) {
    zlibError = err;
  } finally {
    if (!z.destroyed) z.destroy();
    await writer;
  }
  if (inputError !== undefined) throw inputError;
  if (zlibError !== undefined) {
    const msg = zlibError instanceof Error ? zlibError.message : String(zlibError);
    let text = `corrupt gzip data in a ${what} before compressed offset ${src.position}: ${msg}`;
    if (/unexpected end of file/i.test(msg)) {
      text = `truncated gzip input: compressed data ends at byte offset ${src.position} inside a ${what}`;
    } else if (what === 'gzip member' && /incorrect header check/i.test(msg)) {
      text = `trailing garbage or a corrupt gzip member header before compressed offset ${src.position}`;
    }
    throw new GzipDataError(text, src.position);
  }
}

// Empty deflate blocks used to pad the bits in front of a mid-byte access point (see alignmentPrefix).
// A fixed-Huffman empty block is 10 bits; the dynamic one below is 95 bits, which is odd, so sums of
// the two reach every residue mod 8.
function writeEmptyFixedBlock(w: BitWriter): void {
  w.bits(0, 1); // not final
  w.bits(1, 2); // fixed Huffman codes
  w.bits(0, 7); // end-of-block (symbol 256 is the 7-bit code 0000000)
}

function writeEmptyDynamicBlock(w: BitWriter): void {
  w.bits(0, 1); // not final
  w.bits(2, 2); // dynamic Huffman codes
  w.bits(0, 5); // HLIT: 257 literal/length codes
  w.bits(1, 5); // HDIST: 2 distance codes
  w.bits(15, 4); // HCLEN: all 19 code-length codes (the 19th, for length 15, is there only to make the bit count odd)
  // Code-length code lengths in the format's order 16,17,18,0,8,7,9,6,10,5,11,4,12,3,13,2,14,1,15:
  // symbols 18 and 1 get 1-bit codes (18 -> "1", 1 -> "0"), a complete code.
  const order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
  for (const sym of order) w.bits(sym === 18 || sym === 1 ? 1 : 0, 3);
  // Literal/length lengths: symbol 0 and end-of-block (256) get length 1, symbols 1..255 length 0.
  w.bits(0, 1); // length 1
  w.bits(1, 1); // repeat zero 138 times
  w.bits(138 - 11, 7);
  w.bits(1, 1); // repeat zero 117 times
  w.bits(117 - 11, 7);
  w.bits(0, 1); // symbol 256: length 1
  w.bits(0, 1); // distance 0: length 1
  w.bits(0, 1); // distance 1: length 1
  w.bits(1, 1); // end-of-block: code "1" (literal 0 is "0")
}

/**
 * Bytes that replace the access point's first byte: empty blocks whose bit count is congruent to
 * `bitOffset` mod 8, then that byte's upper `8 - bitOffset` bits. The block at the access point then
 * continues byte-aligned with the following original bytes, which pass through unchanged.
 */
function alignmentPrefix(bitOffset: number, firstByte: number): Buffer {
  const w = new BitWriter();
  let fixedBlocks = bitOffset % 2 === 0 ? bitOffset / 2 : ((bitOffset - 7 + 8) % 8) / 2;
  if (bitOffset % 2 === 1) writeEmptyDynamicBlock(w);
  for (; fixedBlocks > 0; fixedBlocks--) writeEmptyFixedBlock(w);
  w.bits(firstByte >> bitOffset, 8 - bitOffset);
  return w.finish();
}

class BitWriter {
  private readonly bytes: number[] = [];
  private acc = 0;
  private n = 0;
  bits(value: number, count: number): void {
    for (let i = 0; i < count; i++) {
      this.acc |= ((value >> i) & 1) << this.n;
      if (++this.n === 8) {
        this.bytes.push(this.acc);
        this.acc = 0;
        this.n = 0;
      }
    }
  }
  finish(): Buffer {
    if (this.n !== 0) throw new Error(`internal: alignment prefix is ${this.n} bits short of a byte`);
    return Buffer.from(this.bytes);
  }
}

// Access point serialisation: "TWGA", version, bitOffset, u64 compressedOffset, u64 uncompressedOffset,
// u32 window length, window bytes (all little-endian). Callers may gzip a file of these.
const AP_MAGIC = Buffer.from('TWGA');
const AP_VERSION = 1;
const AP_HEADER_BYTES = 4 + 1 + 1 + 8 + 8 + 4;

export function encodeAccessPoint(ap: GzipAccessPoint): Buffer {
  validateAccessPoint(ap);
  const buf = Buffer.alloc(AP_HEADER_BYTES + ap.window.length);
  AP_MAGIC.copy(buf, 0);
  buf.writeUInt8(AP_VERSION, 4);
  buf.writeUInt8(ap.bitOffset, 5);
  buf.writeBigUInt64LE(BigInt(ap.compressedOffset), 6);
  buf.writeBigUInt64LE(BigInt(ap.uncompressedOffset), 14);
  buf.writeUInt32LE(ap.window.length, 22);
  ap.window.copy(buf, AP_HEADER_BYTES);
  return buf;
}

export function decodeAccessPoint(buf: Uint8Array): GzipAccessPoint {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < AP_HEADER_BYTES || !b.subarray(0, 4).equals(AP_MAGIC)) {
    throw new Error('not a gzip access point (bad magic or too short)');
  }
  const version = b.readUInt8(4);
  if (version !== AP_VERSION) throw new Error(`unsupported gzip access point version ${version} (expected ${AP_VERSION})`);
  const windowLength = b.readUInt32LE(22);
  if (b.length !== AP_HEADER_BYTES + windowLength) {
    throw new Error(`gzip access point is ${b.length} bytes, expected ${AP_HEADER_BYTES + windowLength}`);
  }
  const ap: GzipAccessPoint = {
    bitOffset: b.readUInt8(5),
    compressedOffset: toSafeNumber(b.readBigUInt64LE(6), 'compressedOffset'),
    uncompressedOffset: toSafeNumber(b.readBigUInt64LE(14), 'uncompressedOffset'),
    window: Buffer.from(b.subarray(AP_HEADER_BYTES)),
  };
  validateAccessPoint(ap);
  return ap;
}

function validateAccessPoint(ap: GzipAccessPoint): void {
  if (!Number.isSafeInteger(ap.compressedOffset) || ap.compressedOffset < 0) {
    throw new Error(`gzip access point: bad compressedOffset ${ap.compressedOffset}`);
  }
  if (!Number.isSafeInteger(ap.uncompressedOffset) || ap.uncompressedOffset < 0) {
    throw new Error(`gzip access point: bad uncompressedOffset ${ap.uncompressedOffset}`);
  }
  if (!Number.isInteger(ap.bitOffset) || ap.bitOffset < 0 || ap.bitOffset > 7) {
    throw new Error(`gzip access point: bitOffset ${ap.bitOffset} is not in 0..7`);
  }
  if (ap.window.length > GZIP_WINDOW_BYTES) {
    throw new Error(`gzip access point: window of ${ap.window.length} bytes exceeds ${GZIP_WINDOW_BYTES}`);
  }
}

function toSafeNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`gzip access point: ${what} ${v} is too large`);
  return Number(v);
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
