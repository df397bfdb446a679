import { gunzipSync } from 'node:zlib';
import { get_encoding, type Tiktoken } from 'tiktoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processBatch } from '../../src/tokenize/batch.js';
import { createTokenizer, type Tokenizer } from '../../src/tokenize/encodings.js';
import { batchInput } from '../core/helpers.js';

let tokenizer: Tokenizer;
let reference: Tiktoken;
beforeAll(async () => {
  tokenizer = await createTokenizer('cl100k_base');
  reference = get_encoding('cl100k_base');
});
afterAll(() => reference.free());

const ordinary = (text: string): number[] => Array.from(reference.encode_ordinary(text));

const rowsOf = (member: Uint8Array): string[] => gunzipSync(member).toString('utf8').split('\n').slice(0, -1);

describe('processBatch', () => {
  const special = 'Before <|endoftext|> middle <|fim_prefix|><|im_start|> after';
  const lines = [
    '{"index":{"_id":"10"}}',
    JSON.stringify({
      page_id: 10,
      title: 'A "quoted" title – ü',
      namespace: 0,
      wiki: 'enwiki',
      version: 456,
      text: 'Hello world, 東京 🙂',
    }),
    '{"index":{"_type":"page","_id":"11"}}',
    JSON.stringify({ page_id: 11, title: 'Special', namespace: 4, wiki: 'enwiki', version: 457, text: special }),
    '{"index":{"_id":"12"}}',
    JSON.stringify({
      page_id: 12,
      title: 'Redirect',
      namespace: 0,
      wiki: 'enwiki',
      version: 1,
      page_type: 'redirect',
      text: 'x',
    }),
    '{"index":{"_id":"13"}}',
    JSON.stringify({ page_id: 13, title: 'Empty', namespace: 0, wiki: 'enwiki', version: 2, text: '' }),
    '{"index":{"_id":"14"}}',
    JSON.stringify({ page_id: 14, title: 'No text', namespace: 0, wiki: 'enwiki', version: 3 }),
    '{"index":{"_id":"15"}}',
    JSON.stringify({ title: 'No page_id, no version', text: 'id from the index line' }),
  ];

  it("writes one row per tokenized doc, in the contract's exact format and key order", async () => {
    const result = await processBatch(batchInput(lines), tokenizer);
    const rows = rowsOf(result.member);
    const row = (
      page_id: number,
      title: string,
      namespace: number,
      wiki: string,
      revision: number | null,
      text: string,
    ): string => {
      const tokens = ordinary(text);
      return JSON.stringify({ page_id, title, namespace, wiki, revision, n_tokens: tokens.length, tokens });
    };
    expect(rows).toEqual([
      row(10, 'A "quoted" title – ü', 0, 'enwiki', 456, 'Hello world, 東京 🙂'),
      row(11, 'Special', 4, 'enwiki', 457, special),
      row(15, 'No page_id, no version', 0, 'testwiki', null, 'id from the index line'),
    ]);
    expect(result).toMatchObject({
      docs: 6,
      rows: 3,
      skipped: { redirect: 1, empty_text: 1, missing_text: 1 },
      bad: [],
    });
    expect(result.ids).toBe('10\n11\n12\n13\n14\n15\n');
    expect(result.tokens).toBe(rows.reduce((n, r) => n + (JSON.parse(r) as { n_tokens: number }).n_tokens, 0));
    expect(result.textBytes).toBe(Buffer.byteLength('Hello world, 東京 🙂' + special + 'id from the index line'));
  });

  it('treats special-token strings in article text as ordinary text', async () => {
    const tokens = Array.from(tokenizer.encodeOrdinary(special));
    expect(tokens).toEqual(ordinary(special));
    expect(tokens).not.toContain(tokenizer.endOfText);
    expect(tokenizer.endOfText).toBe(100257);
  });

  it('appends <|endoftext|> to every row with --append-eot', async () => {
    const rows = rowsOf((await processBatch(batchInput(lines.slice(0, 4), { appendEot: true }), tokenizer)).member).map(
      (r) => JSON.parse(r) as { n_tokens: number; tokens: number[] },
    );
    expect(rows.map((r) => r.tokens)).toEqual([
      [...ordinary('Hello world, 東京 🙂'), 100257],
      [...ordinary(special), 100257],
    ]);
    for (const r of rows) expect(r.n_tokens).toBe(r.tokens.length);
  });

  it('reports a malformed document with its dump line number and byte offset, and keeps going', async () => {
    const bad = ['{"index":{"_id":"1"}}', '{"page_id":1,"text":', '{"index":{"_id":"2"}}', '{"page_id":2,"text":"ok"}'];
    const result = await processBatch(batchInput(bad), tokenizer);
    expect(result.bad).toEqual([
      { line: 12, offset: 5000 + bad[0]!.length + 1, message: expect.stringMatching(/malformed JSON document/) },
    ]);
    expect(result).toMatchObject({ docs: 2, rows: 1 });
    expect(result.ids).toBe('1\n2\n');
  });

  it('reports a malformed index line, and a doc with no page id anywhere, as bad docs', async () => {
    const bad = ['not an index line', '{"page_id":1,"text":"a"}', '{"index":{"_type":"page"}}', '{"text":"no id"}'];
    const result = await processBatch(batchInput(bad), tokenizer);
    expect(result.bad.map((b) => [b.line, b.offset])).toEqual([
      [11, 5000],
      [14, 5000 + bad.slice(0, 3).join('\n').length + 1],
    ]);
    expect(result.bad[1]?.message).toMatch(/no page_id and its index line has no numeric _id/);
    // Empty ids keep the digest aligned with the manifest's (which hashes '' for an unreadable index line).
    expect(result.ids).toBe('\n\n');
    expect(result.rows).toBe(0);
  });

  it('reports an index line at the end of the batch without its document line', async () => {
    const result = await processBatch(
      { ...batchInput([]), bytes: new TextEncoder().encode('{"index":{"_id":"9"}}') },
      tokenizer,
    );
    expect(result.bad).toEqual([
      { line: 12, offset: expect.any(Number), message: expect.stringMatching(/document line missing/) },
    ]);
  });

  it('writes a huge row as several gzip members that read back as the one exact row', async () => {
    const words = ['alpha ', 'beta ', 'γάμμα ', 'δ ', '東京 ', '12345 ', 'x'];
    const text = Array.from({ length: 260_000 }, (_, i) => words[(i * 7) % words.length]).join('');
    const result = await processBatch(
      batchInput([
        '{"index":{"_id":"77"}}',
        JSON.stringify({ page_id: 77, title: 'Huge', namespace: 0, wiki: 'w', version: 1, text }),
      ]),
      tokenizer,
    );
    const member = Buffer.from(result.member);
    // More than one gzip member (each starts with 1f 8b 08 00 and the same OS byte)...
    let members = 0;
    for (let at = member.indexOf('1f8b0800', 0, 'hex'); at !== -1; at = member.indexOf('1f8b0800', at + 1, 'hex'))
      members++;
    expect(members).toBeGreaterThan(1);
    // ...that decode to exactly one row, byte for byte what a single JSON.stringify would give.
    const tokens = ordinary(text);
    expect(rowsOf(result.member)).toEqual([
      JSON.stringify({
        page_id: 77,
        title: 'Huge',
        namespace: 0,
        wiki: 'w',
        revision: 1,
        n_tokens: tokens.length,
        tokens,
      }),
    ]);
    // Transferable as is: its own exactly sized ArrayBuffer (the copy above may sit in Buffer's shared pool).
    expect(result.member.buffer.byteLength).toBe(result.member.byteLength);
  });

  it('megatron: token ids go to little-endian sequences, the rows to metadata lines, one per sequence', async () => {
    const result = await processBatch(batchInput(lines, { format: 'megatron', appendEot: true }), tokenizer);
    const texts = ['Hello world, 東京 🙂', special, 'id from the index line'];
    const ids = texts.map((t) => [...ordinary(t), 100257]);
    expect(Array.from(result.sequences?.lengths ?? [])).toEqual(ids.map((s) => s.length));
    const bin = Buffer.from(result.sequences?.bin ?? []);
    expect(Array.from(new Int32Array(bin.buffer, bin.byteOffset, bin.length / 4))).toEqual(ids.flat());
    expect(rowsOf(result.member)).toEqual([
      JSON.stringify({ page_id: 10, title: 'A "quoted" title – ü', revision: 456, wiki: 'enwiki' }),
      JSON.stringify({ page_id: 11, title: 'Special', revision: 457, wiki: 'enwiki' }),
      JSON.stringify({ page_id: 15, title: 'No page_id, no version', revision: null, wiki: 'testwiki' }),
    ]);
    expect(result).toMatchObject({ docs: 6, rows: 3, tokens: ids.flat().length });
    const r50k = await processBatch(
      batchInput(lines.slice(0, 2), { format: 'megatron' }),
      await createTokenizer('r50k_base'),
    );
    expect(r50k.sequences?.bin.length).toBe(2 * (r50k.sequences?.lengths[0] ?? 0)); // uint16
  });

  it('is deterministic: the same batch gives the same gzip member bytes', async () => {
    const a = await processBatch(batchInput(lines), tokenizer);
    const b = await processBatch(batchInput(lines), tokenizer);
    expect(Buffer.from(a.member).equals(Buffer.from(b.member))).toBe(true);
  });
});
