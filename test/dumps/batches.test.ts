import { describe, expect, it } from 'vitest';
import { TaskFailure } from '../../src/errors/errors.js';
import { cutBatches, type RawBatch } from '../../src/dumps/batches.js';

/** A small dump: `n` docs of varying sizes, both index-line forms, non-ASCII text. */
function dump(n: number, seed = 1): Buffer {
  let s = seed;
  const rand = (): number => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    lines.push(i % 2 ? `{"index":{"_id":"${i + 1}"}}` : `{"index":{"_type":"page","_id":"${i + 1}"}}`);
    lines.push(JSON.stringify({ page_id: i + 1, title: `P${i}`, text: 'wörd '.repeat(Math.floor(rand() * 300)) }));
  }
  return Buffer.from(lines.join('\n') + '\n');
}

/** The same bytes in chunks of pseudo-random sizes (fresh buffers, as decoders hand out). */
async function* chunked(bytes: Buffer, seed: number, maxChunk = 700): AsyncIterable<Buffer> {
  let s = seed;
  for (let at = 0; at < bytes.length;) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const size = 1 + (s % maxChunk);
    yield Buffer.from(bytes.subarray(at, at + size));
    at += size;
  }
}

async function collect(iterable: AsyncIterable<RawBatch>): Promise<RawBatch[]> {
  const out: RawBatch[] = [];
  for await (const batch of iterable) out.push(batch);
  return out;
}

/** Byte offset of the start of line `line` (1-based). */
function offsetOfLine(bytes: Buffer, line: number): number {
  let at = 0;
  for (let l = 1; l < line; l++) at = bytes.indexOf(0x0a, at) + 1;
  return at;
}

const lineCount = (b: Buffer): number =>
  b
    .toString()
    .split('\n')
    .filter((l) => l !== '').length;

describe('cutBatches', () => {
  const bytes = dump(100);
  const all = { skipBytes: 0, firstLine: 1, firstOffset: 0, docCount: 100 };

  it('cuts at most maxDocs whole docs per batch, with line numbers and offsets of each batch', async () => {
    const batches = await collect(cutBatches(chunked(bytes, 3), all, { maxDocs: 7, maxBytes: 1 << 30 }, 'd'));
    expect(batches.map((b) => b.docs)).toEqual([...Array(14).fill(7), 2]);
    expect(Buffer.concat(batches.map((b) => b.bytes)).equals(bytes)).toBe(true);
    let line = 1;
    for (const batch of batches) {
      expect(batch.firstLine).toBe(line);
      expect(batch.firstOffset).toBe(offsetOfLine(bytes, line));
      expect(lineCount(batch.bytes)).toBe(batch.docs * 2);
      expect(batch.bytes.at(-1)).toBe(0x0a);
      // Own ArrayBuffer of exactly the batch's size: transferable to a worker without copying.
      expect(batch.bytes.byteOffset).toBe(0);
      expect(batch.bytes.buffer.byteLength).toBe(batch.bytes.length);
      line += batch.docs * 2;
    }
  });

  it('closes a batch at the first doc boundary at or past maxBytes', async () => {
    const maxBytes = 4000;
    const batches = await collect(cutBatches(chunked(bytes, 5), all, { maxDocs: 1000, maxBytes }, 'd'));
    expect(batches.reduce((n, b) => n + b.docs, 0)).toBe(100);
    for (const batch of batches.slice(0, -1)) {
      expect(batch.bytes.length).toBeGreaterThanOrEqual(maxBytes);
      // Without its last doc the batch would still be under the limit.
      const withoutLast = batch.bytes.subarray(
        0,
        batch.bytes.lastIndexOf(0x0a, batch.bytes.lastIndexOf(0x0a, batch.bytes.length - 2) - 1) + 1,
      );
      expect(withoutLast.length).toBeLessThan(maxBytes);
    }
  });

  it("drops skipBytes (across chunks and inside one) and starts at the task's first doc", async () => {
    const firstLine = 41; // doc 20
    const skip = offsetOfLine(bytes, firstLine);
    const range = { skipBytes: skip, firstLine, firstOffset: skip, docCount: 30 };
    for (const seed of [1, 2, 3]) {
      const batches = await collect(cutBatches(chunked(bytes, seed), range, { maxDocs: 8, maxBytes: 1 << 30 }, 'd'));
      expect(batches.map((b) => b.docs)).toEqual([8, 8, 8, 6]);
      expect(batches[0]?.firstLine).toBe(firstLine);
      expect(batches[0]?.firstOffset).toBe(skip);
      expect(batches[0]?.bytes.toString().startsWith('{"index":{"_type":"page","_id":"21"}}')).toBe(true);
      const end = offsetOfLine(bytes, firstLine + 60);
      expect(Buffer.concat(batches.map((b) => b.bytes)).equals(bytes.subarray(skip, end))).toBe(true);
    }
  });

  it("stops pulling decoded bytes right after the task's last doc", async () => {
    let pulled = 0;
    async function* counting(): AsyncIterable<Buffer> {
      for await (const chunk of chunked(bytes, 9, 200)) {
        pulled += chunk.length;
        yield chunk;
      }
    }
    const range = { ...all, docCount: 10 };
    const batches = await collect(cutBatches(counting(), range, { maxDocs: 4, maxBytes: 1 << 30 }, 'd'));
    expect(batches.map((b) => b.docs)).toEqual([4, 4, 2]);
    expect(pulled).toBeLessThan(offsetOfLine(bytes, 21) + 200);
  });

  it('accepts a last line without a trailing newline', async () => {
    const noNewline = bytes.subarray(0, bytes.length - 1);
    const batches = await collect(cutBatches(chunked(noNewline, 4), all, { maxDocs: 30, maxBytes: 1 << 30 }, 'd'));
    expect(batches.map((b) => b.docs)).toEqual([30, 30, 30, 10]);
    expect(Buffer.concat(batches.map((b) => b.bytes)).equals(noNewline)).toBe(true);
  });

  it('is deterministic: any chunking of the same bytes gives the same batches', async () => {
    const limits = { maxDocs: 9, maxBytes: 5000 };
    const reference = await collect(cutBatches(chunked(bytes, 1, 5), all, limits, 'd'));
    for (const [seed, max] of [
      [2, 3],
      [3, 100_000],
      [4, 997],
    ] as const) {
      const batches = await collect(cutBatches(chunked(bytes, seed, max), all, limits, 'd'));
      expect(batches.map((b) => [b.firstLine, b.firstOffset, b.docs, b.bytes.toString('base64')])).toEqual(
        reference.map((b) => [b.firstLine, b.firstOffset, b.docs, b.bytes.toString('base64')]),
      );
    }
  });

  it("fails, naming the dump, when the stream ends before the task's docs", async () => {
    const range = { ...all, docCount: 101 };
    const run = collect(
      cutBatches(chunked(bytes, 6), range, { maxDocs: 50, maxBytes: 1 << 30 }, 'dump.json.gz (task t)'),
    );
    await expect(run).rejects.toBeInstanceOf(TaskFailure);
    await expect(
      collect(cutBatches(chunked(bytes, 6), range, { maxDocs: 50, maxBytes: 1 << 30 }, 'dump.json.gz (task t)')),
    ).rejects.toThrow(/dump\.json\.gz \(task t\): the dump ended after 100 of the task's 101 docs/);
    const skipPastEnd = { skipBytes: bytes.length + 10, firstLine: 1, firstOffset: 0, docCount: 1 };
    await expect(
      collect(cutBatches(chunked(bytes, 6), skipPastEnd, { maxDocs: 50, maxBytes: 1 << 30 }, 'd')),
    ).rejects.toBeInstanceOf(TaskFailure);
  });
});
