// The row formats and their reader side by side: what the tokenizer writes, verification reads back.
import { describe, expect, it } from 'vitest';
import { metaRow, pageIdOfRow, SHARD_ROW_END, shardRowHead, type RowFields } from '../../src/output/rows.js';

const doc: RowFields = {
  page_id: 123,
  title: 'A "quoted" title, with commas',
  namespace: 0,
  wiki: 'enwiki',
  revision: 456,
};

describe('shard rows', () => {
  it('a jsonl row is JSON, and its page id is read back without parsing it', () => {
    const row = `${shardRowHead(doc, 3)}1,2,3${SHARD_ROW_END}`;
    expect(JSON.parse(row)).toEqual({ ...doc, n_tokens: 3, tokens: [1, 2, 3] });
    expect(pageIdOfRow(row.trimEnd())).toBe(123);
  });

  it('a megatron metadata row is JSON, and its page id is read back', () => {
    const row = metaRow({ ...doc, revision: null });
    expect(JSON.parse(row)).toEqual({ page_id: 123, title: doc.title, revision: null, wiki: 'enwiki' });
    expect(pageIdOfRow(row.trimEnd())).toBe(123);
  });

  it('anything else is not a row', () => {
    expect(pageIdOfRow('{"title":"x","page_id":1}')).toBeUndefined();
    expect(pageIdOfRow('')).toBeUndefined();
  });
});
