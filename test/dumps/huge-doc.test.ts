import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { type HugeDocLimits } from '../../src/dumps/doc.js';
import { processBatch, type BatchInput, type BatchResult } from '../../src/tokenize/batch.js';
import { createTokenizer, ENCODINGS, type EncodingName, type Tokenizer } from '../../src/tokenize/encodings.js';
import { batchInput, SAMPLE } from '../core/helpers.js';

/** Every document line read the huge way (field by field, text in pieces of ~64 bytes): many cuts per text. */
const EVERY_LINE_HUGE: HugeDocLimits = { lineBytes: 0, pieceBytes: 64 };

const sampleLines = gunzipSync(readFileSync(SAMPLE))
  .toString('utf8')
  .split('\n')
  .filter((l) => l.length > 0);

/** Texts whose cuts land next to escapes, non-ASCII letters, digits and whitespace runs. */
const trickyTexts = [
  'alpha beta\\ gamma \\"quoted\\" word é b\\u00e9 c \\n d\n\ne f  g\t\th 123 456 ij',
  Array.from(
    { length: 400 },
    (_, i) => ['word', 'Wörter', '東京', '42', "it's", 'x"y', 'a\\b', '\n', '  ', 'ZZ'][i % 10],
  ).join(' '),
  // JSON.stringify writes these as escapes (\t \n \" \u0001) right before a space: the raw line has a letter there.
  'tab\t word\n next "quote" x\u0001 y\r\n z\f a\b b',
  'no-spaces-at-all-'.repeat(40),
  '<|endoftext|> special <|fim_prefix|> strings stay ordinary text',
];

const batch = (lines: string[], textField = 'text'): BatchInput =>
  batchInput(lines, { firstLine: 1, firstOffset: 0, textField, appendEot: true, compressionLevel: 1 });
const rowsOf = (r: BatchResult): string => gunzipSync(r.member).toString('utf8');
const summaryOf = ({ member: _member, ...rest }: BatchResult): Omit<BatchResult, 'member'> => rest;

describe('huge documents: read field by field, text in pieces', () => {
  const tokenizers = new Map<EncodingName, Tokenizer>();
  beforeAll(async () => {
    for (const encoding of ENCODINGS) tokenizers.set(encoding, await createTokenizer(encoding));
  });

  for (const encoding of ENCODINGS) {
    it(`${encoding}: the real sample gives the same rows, counts and skips as whole-line parsing (text and source_text)`, async () => {
      const tokenizer = tokenizers.get(encoding)!;
      for (const field of ['text', 'source_text']) {
        const input = batch(sampleLines, field);
        const whole = await processBatch(input, tokenizer);
        const pieces = await processBatch(input, tokenizer, EVERY_LINE_HUGE);
        expect(whole.rows).toBeGreaterThan(50);
        expect(summaryOf(pieces)).toEqual(summaryOf(whole));
        expect(rowsOf(pieces)).toBe(rowsOf(whole));
      }
    });

    it(`${encoding}: texts with escapes, non-ASCII letters and digits next to the cuts tokenize as one text`, async () => {
      const tokenizer = tokenizers.get(encoding)!;
      const lines = trickyTexts.flatMap((text, i) => [
        `{"index":{"_id":"${i + 1}"}}`,
        JSON.stringify({ page_id: i + 1, title: `T${i}`, namespace: 0, source_text: text.repeat(3), text }),
      ]);
      for (const pieceBytes of [1, 7, 64, 1000]) {
        const whole = await processBatch(batch(lines), tokenizer);
        const pieces = await processBatch(batch(lines), tokenizer, { lineBytes: 0, pieceBytes });
        expect(rowsOf(pieces)).toBe(rowsOf(whole));
      }
    });
  }

  it('reports malformed huge lines as bad docs naming the problem, and keeps going', async () => {
    const tokenizer = tokenizers.get('cl100k_base')!;
    const lines = [
      '{"index":{"_id":"1"}}',
      '{"page_id":1,"text":"never closed',
      '{"index":{"_id":"2"}}',
      '{"page_id":2 "text":"no comma"}',
      '{"index":{"_id":"3"}}',
      '{"page_id":3,"text":"fine"} trailing',
      '{"index":{"_id":"4"}}',
      '["not", "an object"]',
      '{"index":{"_id":"5"}}',
      '{"page_id":5,"title":"Ok","text":"bad escape \\x here"}',
      '{"index":{"_id":"6"}}',
      '{"page_id":6,"title":"Good","nested":{"a":[1,{"b":"}"}]},"text":"a good page"}',
    ];
    const result = await processBatch(batch(lines), tokenizer, EVERY_LINE_HUGE);
    expect(result.bad.map((b) => b.line)).toEqual([2, 4, 6, 8, 10]);
    for (const bad of result.bad) expect(bad.message).toMatch(/malformed JSON document|not a JSON object/);
    expect(result.rows).toBe(1);
    expect(rowsOf(result)).toContain('"page_id":6,"title":"Good"');
  });

  it('skips huge redirects, missing and empty texts like ordinary ones', async () => {
    const tokenizer = tokenizers.get('cl100k_base')!;
    const lines = [
      '{"index":{"_id":"1"}}',
      '{"page_id":1,"page_type":"redirect","text":"x"}',
      '{"index":{"_id":"2"}}',
      '{"page_id":2,"text":null}',
      '{"index":{"_id":"3"}}',
      '{"page_id":3,"text":""}',
      '{"index":{"_id":"4"}}',
      '{"title":"id from the index line","text":"words here"}',
    ];
    const whole = await processBatch(batch(lines), tokenizer);
    const pieces = await processBatch(batch(lines), tokenizer, EVERY_LINE_HUGE);
    expect(pieces.skipped).toEqual({ redirect: 1, missing_text: 1, empty_text: 1 });
    expect(summaryOf(pieces)).toEqual(summaryOf(whole));
    expect(rowsOf(pieces)).toBe(rowsOf(whole));
  });
});
