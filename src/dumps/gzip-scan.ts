// The manifest pass's side of zran-style random access into gzip files: one inflate pass with pako (a zlib port
// that can stop at deflate block boundaries and report the bit position there) that hands out access points.
import zlib from 'node:zlib';
import { ZStream, Z_BLOCK, Z_BUF_ERROR, Z_OK, Z_STREAM_END, zlibInflate, zlibInflateInit2, zlibInflateReset } from 'pako';
import { GzipDataError } from './gzip-bytes.js';
import { GZIP_WINDOW_BYTES, type GzipAccessPoint, type GzipPiece } from './gzip-access.js';

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
