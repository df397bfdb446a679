import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { isTransient, RETRY, retryDelay } from './retry.js';
import type { ByteRange } from './types.js';

export type OpenAt = (range: ByteRange) => Promise<AsyncIterable<Uint8Array>>;

/**
 * A byte stream that survives dropped connections: when the transfer breaks, the rest is requested again from the
 * last byte received (a ranged re-request), with exponential backoff. Callers see one uninterrupted stream. Opening
 * is the transport's to retry (see retry.ts): an `open` that fails ends the read.
 */
export function resumableRead(
  open: OpenAt,
  range: ByteRange,
  what: string,
  attempts: number = RETRY.attempts,
): Readable {
  const failed = (position: number, error: unknown): Error =>
    new Error(`${what}: read failed at byte ${position}: ${(error as Error).message}`, { cause: error });
  async function* generate(): AsyncIterable<Uint8Array> {
    let position = range.start;
    let body: AsyncIterator<Uint8Array> | undefined;
    try {
      for (let attempt = 1; ;) {
        if (!body) {
          try {
            body = (await open({ start: position, end: range.end }))[Symbol.asyncIterator]();
          } catch (error) {
            throw failed(position, error);
          }
        }
        let next: IteratorResult<Uint8Array>;
        try {
          next = await body.next();
          if (next.done && range.end !== undefined && position < range.end) {
            throw new Error(`connection closed at byte ${position} of ${range.end}`);
          }
        } catch (error) {
          body = undefined;
          if (attempt >= attempts || !isTransient(error)) throw failed(position, error);
          await sleep(retryDelay(attempt));
          attempt++;
          continue;
        }
        if (next.done) return;
        position += next.value.byteLength;
        // Outside the retry's try: an error the consumer injects here (destroying the stream) must end the read,
        // not be mistaken for a dropped connection and trigger another request.
        yield next.value;
      }
    } finally {
      await body?.return?.();
    }
  }
  return Readable.from(generate(), { objectMode: false });
}
