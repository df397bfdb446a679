// zran-style random access into gzip files: what an access point is. The manifest pass makes them (gzip-scan.ts),
// a task resumes from one (gzip-resume.ts), and the access index stores them (manifest/access-index.ts).
import { GzipDataError } from './gzip-bytes.js';

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

/** Throws unless `ap` could be a point of a real file (checked on every point read from the access index). */
export function validateAccessPoint(ap: GzipAccessPoint): void {
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
