// A task's side of zran-style random access into gzip files: resume at an access point with Node's native zlib,
// which is faster than pako but offers neither inflatePrime nor a bit offset: we make a mid-byte start
// byte-aligned by prepending empty deflate blocks whose total bit length fills the part of the first byte that
// belongs to the previous block (see alignmentPrefix).
import zlib from 'node:zlib';
import { messageOf } from '../errors/index.js';
import { ByteSource, GzipDataError } from './gzip-bytes.js';
import { validateAccessPoint, type GzipAccessPoint } from './gzip-access.js';

/**
 * Output chunk of a task's inflater: zlib's default 16 KiB makes a round trip from the thread pool to the main thread
 * (and a buffer for the batch cutter to copy) per 16 KiB of dump.
 */
const INFLATE_CHUNK_BYTES = 256 * 1024;

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
  const inflater = zlib.createInflateRaw({
    chunkSize: INFLATE_CHUNK_BYTES,
    ...(ap.window.length > 0 ? { dictionary: ap.window } : {}),
  });
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
  let inputError: { error: unknown } | undefined; // boxed: the input may throw anything, even undefined
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
    if (err !== closed && !(err instanceof Error && 'errno' in err)) inputError = { error: err };
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
  if (inputError) throw inputError.error;
  if (zlibError !== undefined) {
    const msg = messageOf(zlibError);
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
