import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';

export interface OurDecoder {
  /** Decode the whole file and return the number of uncompressed bytes. */
  decode: (path: string) => Promise<number>;
  source: string;
}

/**
 * Our reader's decompression path for one format, or null if it is not available yet.
 * Until src/dumps lands, gzip is measured through Node's zlib stream (what the reader is expected to use).
 */
export async function loadOurDecoder(format: 'gzip' | 'bzip2'): Promise<OurDecoder | null> {
  if (format === 'gzip') {
    return {
      source: 'node:zlib createGunzip stream (src/dumps reader not present yet)',
      decode: async (path) => {
        let n = 0;
        for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }).pipe(createGunzip())) n += (chunk as Buffer).length;
        return n;
      },
    };
  }
  return null;
}
