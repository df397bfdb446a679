import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cutBatches } from '../../src/dumps/batches.js';
import { TaskCutter, type TaskCut } from '../../src/manifest/build.js';

function dump(n: number): { bytes: Buffer; ids: string[] } {
  const lines: string[] = [];
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = String(1000 + i * 3);
    ids.push(id);
    lines.push(i % 3 === 0 ? `{"index":{"_type":"page","_id":"${id}"}}` : `{"index":{"_id":"${id}"}}`);
    lines.push(JSON.stringify({ page_id: Number(id), text: 'ab '.repeat((i * 37) % 250) }));
  }
  return { bytes: Buffer.from(lines.join('\n') + '\n'), ids };
}

function cut(bytes: Buffer, maxDocs: number, maxBytes: number, chunk = 333): TaskCut[] {
  const cutter = new TaskCutter(maxDocs, maxBytes);
  for (let at = 0; at < bytes.length; at += chunk) cutter.push(Buffer.from(bytes.subarray(at, at + chunk)));
  return cutter.finish();
}

function offsetOfLine(bytes: Buffer, line: number): number {
  let at = 0;
  for (let l = 1; l < line; l++) at = bytes.indexOf(0x0a, at) + 1;
  return at;
}

const digest = (ids: string[]): string =>
  createHash('sha256')
    .update(ids.map((id) => id + '\n').join(''))
    .digest('hex');

describe('TaskCutter', () => {
  const { bytes, ids } = dump(100);

  it('cuts tasks of maxDocs docs, contiguous, with first doc, first line and byte range', () => {
    const cuts = cut(bytes, 30, 1 << 30);
    expect(cuts.map((c) => c.doc_count)).toEqual([30, 30, 30, 10]);
    expect(cuts.map((c) => c.first_doc)).toEqual([0, 30, 60, 90]);
    expect(cuts.map((c) => c.first_line)).toEqual([1, 61, 121, 181]);
    for (const c of cuts) {
      expect(c.uncompressed_start).toBe(offsetOfLine(bytes, c.first_line));
      expect(c.uncompressed_end).toBe(offsetOfLine(bytes, c.first_line + c.doc_count * 2));
    }
    expect(cuts.at(-1)?.uncompressed_end).toBe(bytes.length);
  });

  it('cuts at the first doc boundary at or past maxBytes', () => {
    const maxBytes = 3000;
    const cuts = cut(bytes, 1000, maxBytes);
    expect(cuts.reduce((n, c) => n + c.doc_count, 0)).toBe(100);
    for (const [i, c] of cuts.entries()) {
      if (i > 0) expect(c.uncompressed_start).toBe(cuts[i - 1]?.uncompressed_end);
      if (i === cuts.length - 1) continue;
      expect(c.uncompressed_end - c.uncompressed_start).toBeGreaterThanOrEqual(maxBytes);
      const withoutLast = offsetOfLine(bytes, c.first_line + (c.doc_count - 1) * 2) - c.uncompressed_start;
      expect(withoutLast).toBeLessThan(maxBytes);
    }
  });

  it('digests the index-line ids of each task (both index-line forms), independent of chunking', () => {
    const cuts = cut(bytes, 25, 1 << 30);
    expect(cuts.map((c) => c.ids_sha256)).toEqual([0, 25, 50, 75].map((from) => digest(ids.slice(from, from + 25))));
    for (const chunk of [1, 7, 64 * 1024]) expect(cut(bytes, 25, 1 << 30, chunk)).toEqual(cuts);
  });

  it('counts a last line without a newline, and an index line whose document is missing', () => {
    expect(cut(bytes.subarray(0, bytes.length - 1), 30, 1 << 30)).toEqual(
      cut(bytes, 30, 1 << 30).map((c, i, all) =>
        i === all.length - 1 ? { ...c, uncompressed_end: bytes.length - 1 } : c,
      ),
    );
    const dangling = Buffer.concat([bytes, Buffer.from('{"index":{"_id":"7"}}')]);
    const cuts = cut(dangling, 1000, 1 << 30);
    expect(cuts).toHaveLength(1);
    expect(cuts[0]?.doc_count).toBe(101);
    expect(cuts[0]?.ids_sha256).toBe(digest([...ids, '7']));
  });

  it('hashes an empty id for a malformed index line (the task reports it with its line number)', () => {
    const bad = Buffer.from('{"index":{"_id":"1"}}\n{"page_id":1,"text":"a"}\nnot json\n{"page_id":2,"text":"b"}\n');
    expect(cut(bad, 10, 1 << 30)[0]?.ids_sha256).toBe(digest(['1', '']));
  });

  it('yields no task for an empty dump', () => {
    expect(cut(Buffer.alloc(0), 10, 100)).toEqual([]);
  });

  it("gives task ranges that cutBatches turns back into exactly the task's docs", async () => {
    for (const c of cut(bytes, 17, 2500)) {
      async function* source(): AsyncIterable<Buffer> {
        for (let at = 0; at < bytes.length; at += 500) yield Buffer.from(bytes.subarray(at, at + 500));
      }
      const range = {
        skipBytes: c.uncompressed_start,
        firstLine: c.first_line,
        firstOffset: c.uncompressed_start,
        docCount: c.doc_count,
      };
      const parts: Buffer[] = [];
      for await (const batch of cutBatches(source(), range, { maxDocs: 5, maxBytes: 1 << 20 }, 'd'))
        parts.push(batch.bytes);
      expect(Buffer.concat(parts).equals(bytes.subarray(c.uncompressed_start, c.uncompressed_end))).toBe(true);
    }
  });
});
