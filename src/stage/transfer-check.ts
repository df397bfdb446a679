import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { TaskFailure, messageOf } from '../errors/index.js';
import { decodeBzip2, inflateWithAccessPoints, type Compression } from '../dumps/index.js';
import type { StagingRecord } from './record.js';

export interface TransferResult {
  bytes: number;
  sha256: string;
  uncompressedBytes: number;
  formatCheck: StagingRecord['format_check'];
}

/** Decoder input buffered ahead of the decoder; the transfer waits (backpressure) when the decoder falls behind. */
const DECODE_BUFFER_BYTES = 8 * 1024 * 1024;

/**
 * Checks a transfer while it streams to the destination: byte count, sha256, and one decode of the compressed data,
 * which makes gzip verify every member's CRC32 and ISIZE, and bzip2 every block and stream CRC. `pass` ends its
 * stream only after every check passed, so a store's atomic write (temp file + rename, or a multipart upload that
 * completes on end of stream) never publishes a copy that failed one: the write fails instead.
 */
export class TransferCheck {
  bytes = 0;
  /** Set once every check passed. */
  result: TransferResult | undefined;
  /** The first check that failed (the store may wrap the error it sees). */
  failure: TaskFailure | undefined;
  private readonly hash = createHash('sha256');

  constructor(
    private readonly name: string,
    private readonly size: number,
    private readonly compression: Compression,
    private readonly expectedSha256: string | undefined,
  ) {}

  private fail(message: string): TaskFailure {
    this.failure = new TaskFailure(`${this.name}: corrupt transfer: ${message}`);
    return this.failure;
  }

  async *pass(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
    const feed = new PassThrough({ highWaterMark: DECODE_BUFFER_BYTES });
    let decodeError: unknown;
    let uncompressedBytes = 0;
    // Settles (never rejects) when the decoder is done, so it can be raced against backpressure.
    const decoded = (async () => {
      try {
        uncompressedBytes = await drain(this.compression, feed);
      } catch (error) {
        decodeError = error;
      }
    })();
    let done = false;
    try {
      for await (const chunk of source) {
        if (decodeError !== undefined) break;
        this.bytes += chunk.byteLength;
        if (this.bytes > this.size) throw this.fail(`more bytes than the source's Content-Length of ${this.size}`);
        this.hash.update(chunk);
        if (!feed.write(chunk)) await Promise.race([once(feed, 'drain'), decoded]);
        yield chunk;
      }
      feed.end();
      await decoded;
      if (decodeError !== undefined) throw this.fail(`${this.compression} check failed: ${messageOf(decodeError)}`);
      if (this.bytes !== this.size)
        throw this.fail(`got ${this.bytes} bytes, the source's Content-Length is ${this.size}`);
      const sha256 = this.hash.digest('hex');
      if (this.expectedSha256 !== undefined && sha256 !== this.expectedSha256) {
        throw this.fail(`sha256 is ${sha256}, expected ${this.expectedSha256}`);
      }
      done = true;
      const formatCheck = this.compression === 'gzip' ? 'gzip-crc32-isize' : 'bzip2-block-stream-crc';
      this.result = { bytes: this.bytes, sha256, uncompressedBytes, formatCheck };
    } finally {
      if (!done) {
        // Stop the decoder (and a bzip2 child) on any early exit.
        feed.destroy(new Error('transfer stopped'));
        await decoded;
      }
    }
  }
}

/** Decode everything, keeping nothing: the decoders throw on a CRC, size or structure error. */
async function drain(compression: Compression, input: AsyncIterable<Uint8Array>): Promise<number> {
  let total = 0;
  if (compression === 'gzip') {
    for await (const piece of inflateWithAccessPoints(input)) total += piece.data.length;
  } else {
    for await (const out of decodeBzip2(input)) total += out.length;
  }
  return total;
}
