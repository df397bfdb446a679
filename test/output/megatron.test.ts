import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors/errors.js';
import {
  concatIdx,
  decodeIdx,
  dtypeFor,
  encodeIdx,
  idxBytes,
  partPrefix,
  planParts,
  TokenBuffer,
  VOCABULARY_SIZE,
} from '../../src/output/megatron.js';
import { createTokenizer, ENCODINGS } from '../../src/tokenize/encodings.js';

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const chunk of chunks) out.push(chunk);
  return Buffer.concat(out);
}

async function* pieces<T>(items: readonly T[]): AsyncIterable<T> {
  yield* items;
}

describe('Megatron IndexedDataset layout', () => {
  it("picks the dtype by Megatron's optimal_dtype rule on the vocabulary size", () => {
    expect(ENCODINGS.map((e) => [e, dtypeFor(e)])).toEqual([
      ['cl100k_base', 'int32'],
      ['o200k_base', 'int32'],
      ['p50k_base', 'uint16'],
      ['r50k_base', 'uint16'],
    ]);
  });

  it('every id an encoding produces, <|endoftext|> included, is below its vocabulary size', async () => {
    for (const encoding of ENCODINGS) {
      const tokenizer = await createTokenizer(encoding);
      expect(tokenizer.endOfText).toBeLessThan(VOCABULARY_SIZE[encoding]);
      expect(Math.max(...tokenizer.encodeOrdinary('zzzz ~~~ 東京 🙂 ǅ'))).toBeLessThan(VOCABULARY_SIZE[encoding]);
    }
  });

  it('encodes the header, lengths, pointers and document indices byte for byte', () => {
    const idx = encodeIdx('uint16', [3, 0, 2]);
    const expected = Buffer.concat([
      Buffer.from('MMIDIDX\0\0', 'latin1'),
      Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]), // version 1, u64
      Buffer.from([8]), // uint16
      Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]), // sequences
      Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), // documents + 1
      Buffer.from(new Int32Array([3, 0, 2]).buffer),
      Buffer.from(new BigInt64Array([0n, 6n, 6n]).buffer),
      Buffer.from(new BigInt64Array([0n, 1n, 2n, 3n]).buffer),
    ]);
    expect(idx).toEqual(expected);
    expect(idx.length).toBe(idxBytes(3));
    expect(encodeIdx('int32', [5]).readUInt8(17)).toBe(4);
    expect(encodeIdx('int32', []).length).toBe(idxBytes(0));
  });

  it('writes pointers above 4 GiB as full int64', () => {
    const idx = encodeIdx('int32', [0x4000_0000, 0x4000_0000, 1]);
    expect(idx.readBigInt64LE(34 + 12 + 16)).toBe(0x2_0000_0000n);
  });

  it('decodes what it encodes, and names what is wrong with a damaged index', () => {
    const idx = encodeIdx('int32', [7, 1, 9]);
    expect(decodeIdx(idx, 'a.idx')).toEqual({ dtype: 'int32', lengths: new Int32Array([7, 1, 9]) });
    const badPointer = Buffer.from(idx);
    badPointer.writeInt32LE(99, 34 + 12 + 8);
    expect(() => decodeIdx(badPointer, 'b.idx')).toThrow(/b\.idx: .*pointers/);
    expect(() => decodeIdx(idx.subarray(0, 40), 'c.idx')).toThrow(/c\.idx: .*bytes/);
    expect(() => decodeIdx(Buffer.from('nope'), 'd.idx')).toThrow(/magic/);
  });

  it('concatenates indexes as a stream equal to the index of all their sequences', async () => {
    const shards = [[4, 2], [], [1, 1, 1]];
    const streamed = await collect(concatIdx('uint16', 5, () => pieces(shards)));
    expect(streamed).toEqual(encodeIdx('uint16', shards.flat()));
    await expect(collect(concatIdx('uint16', 6, () => pieces(shards)))).rejects.toThrow(/5 sequences, their markers 6/);
  });

  it("keeps token ids in the dtype's little-endian bytes, one length per page", () => {
    const tokens = new TokenBuffer('uint16');
    tokens.append([[1, 258], [65535]]);
    tokens.append([]);
    const { bin, lengths } = tokens.finish();
    expect(Buffer.from(bin)).toEqual(Buffer.from([1, 0, 2, 1, 255, 255]));
    expect(lengths).toEqual(new Int32Array([3, 0]));
    expect(() => new TokenBuffer('uint16').append([[65536]])).toThrow(/does not fit uint16/);
    const wide = new TokenBuffer('int32');
    wide.append([Array.from({ length: 70_000 }, (_, i) => i * 3)]);
    expect(Buffer.from(wide.finish().bin).readInt32LE(4 * 69_999)).toBe(69_999 * 3);
  });
});

describe('export parts', () => {
  const shards = [
    { task_id: 'a', bin_bytes: 40, sequences: 4 },
    { task_id: 'b', bin_bytes: 30, sequences: 3 },
    { task_id: 'c', bin_bytes: 0, sequences: 0 },
    { task_id: 'd', bin_bytes: 50, sequences: 5 },
  ];

  it('is one part without a cap', () => {
    expect(planParts(shards, undefined)).toEqual([{ index: 0, first: 0, end: 4, bin_bytes: 120, sequences: 12 }]);
    expect(planParts([], undefined)).toEqual([{ index: 0, first: 0, end: 0, bin_bytes: 0, sequences: 0 }]);
  });

  it('cuts whole shards in order, each part within the cap', () => {
    expect(planParts(shards, 70)).toEqual([
      { index: 0, first: 0, end: 3, bin_bytes: 70, sequences: 7 },
      { index: 1, first: 3, end: 4, bin_bytes: 50, sequences: 5 },
    ]);
    expect(planParts(shards, 50).map((p) => [p.first, p.end])).toEqual([
      [0, 1],
      [1, 3],
      [3, 4],
    ]);
  });

  it('refuses a cap below the largest shard, naming it', () => {
    expect(() => planParts(shards, 45)).toThrow(UsageError);
    expect(() => planParts(shards, 45)).toThrow(/task d holds 50 bytes.*at least 50/);
  });

  it('names parts after --to', () => {
    expect(partPrefix('s3://b/enwiki', 0, false)).toBe('s3://b/enwiki');
    expect(partPrefix('s3://b/enwiki', 12, true)).toBe('s3://b/enwiki_00012');
  });
});
