import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ByteRange } from './types.js';

export type OpenAt = (range: ByteRange) => Promise<AsyncIterable<Uint8Array>>;

/**
 * A byte stream that survives dropped connections: when the transfer breaks, the rest is requested again from the
 * last byte received (a ranged re-request), with exponential backoff. Callers see one uninterrupted stream.
 */
export function resumableRead(open: OpenAt, range: ByteRange, what: string, attempts = 6): Readable {
  async function* generate(): AsyncIterable<Uint8Array> {
    let position = range.start;
    let body: AsyncIterator<Uint8Array> | undefined;
    try {
      for (let attempt = 1; ; ) {
        let next: IteratorResult<Uint8Array>;
        try {
          body ??= (await open({ start: position, end: range.end }))[Symbol.asyncIterator]();
          next = await body.next();
          if (next.done && range.end !== undefined && position < range.end) {
            throw new Error(`connection closed at byte ${position} of ${range.end}`);
          }
        } catch (error) {
          body = undefined;
          if (attempt >= attempts || !isTransient(error)) {
            throw new Error(`${what}: read failed at byte ${position}: ${(error as Error).message}`, { cause: error });
          }
          await sleep(Math.min(200 * 2 ** (attempt - 1), 5_000));
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

/** Network trouble and server overload are worth retrying; 4xx answers and our own errors are not. */
export function isTransient(error: unknown): boolean {
  const e = error as { name?: string; code?: string; status?: number; $metadata?: { httpStatusCode?: number }; message?: string };
  const status = e.status ?? e.$metadata?.httpStatusCode;
  if (status !== undefined) return status >= 500 || status === 429 || status === 408;
  if (e.code && /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EAI_AGAIN|UND_ERR_\w+)$/.test(e.code)) return true;
  return /terminated|socket|closed|aborted|ECONNRESET|other side closed/i.test(e.message ?? '');
}
