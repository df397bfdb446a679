import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { get_encoding } from 'tiktoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthLegacyDump } from '../../src/dumps/synth.js';
import { createTokenizer, ENCODINGS, type EncodingName } from '../../src/tokenize/encodings.js';
import { jsTokenizerNotice } from '../../src/tokenize/native-addon.js';
import { TokenizerPool } from '../../src/tokenize/pool.js';
import { batchInput, dumpDocs, SAMPLE } from '../core/helpers.js';

const textsOf = (docs: Array<Record<string, unknown>>): string[] =>
  docs.flatMap((doc) => [doc.text, doc.source_text]).filter((t): t is string => typeof t === 'string' && t !== '');

/** Every page of the real sample: its `text` and `source_text` (wikitext, with markup and escapes). */
const pages = dumpDocs(gunzipSync(readFileSync(SAMPLE)).toString('utf8')).map(({ doc }) => doc);
const texts = textsOf(pages);

const tricky = [
  '<|endoftext|>',
  'a<|endoftext|>b <|fim_prefix|><|fim_middle|><|fim_suffix|> <|endofprompt|> <|im_start|>',
  '  leading and trailing spaces   ',
  '\n\n\t\r\n mixed whitespace \u00a0\u2003',
  "I'm can't WE'LL they'RE 123456789 1,000,000.5",
  'Ελληνικά Русский العربية हिन्दी 中文 日本語 한국어 🙂👩‍👩‍👧 e\u0301',
  // A lone surrogate (JSON can carry one): tiktoken encodes it as U+FFFD.
  'broken \ud800 pair',
  // Names of Object.prototype members: a vocabulary kept in a plain object would find these instead of missing.
  'toString',
  '__proto__',
  'hasOwnProperty\nconstructor\nvalueOf\nisPrototypeOf\npropertyIsEnumerable\ntoLocaleString\n__defineGetter__',
];

/** Synthetic pages: Zipf syllable-words, non-ASCII text, special-token strings, pages up to ~2 MB. */
let synthTexts: string[] = [];
const dir = mkdtempSync(join(tmpdir(), 'tw-tokenizer-'));
beforeAll(async () => {
  const dump = join(dir, 'synth.json.gz');
  await synthLegacyDump(dump, { docs: 200, seed: 11, wiki: 'synthwiki', members: 1, parts: 1, bigPageMb: 0 });
  synthTexts = textsOf(dumpDocs(gunzipSync(readFileSync(dump)).toString('utf8')).map(({ doc }) => doc));
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Ids equal to tiktoken's for every text; compares whole arrays only when they differ, to keep failures readable. */
function expectTiktokenIds(encoding: EncodingName, encode: (text: string) => ArrayLike<number>, all: string[]): void {
  const reference = get_encoding(encoding);
  try {
    for (const text of all) {
      const expected = Array.from(reference.encode_ordinary(text));
      const actual = Array.from(encode(text));
      if (actual.length !== expected.length || actual.some((id, i) => id !== expected[i])) {
        expect({ text: text.slice(0, 200), ids: actual }).toEqual({ text: text.slice(0, 200), ids: expected });
      }
    }
  } finally {
    reference.free();
  }
}

/** Which encodings the native tokenizer serves here; none when it is not built (the reason is in the test name). */
const nativeEncodings = ENCODINGS.filter((encoding) => jsTokenizerNotice(encoding) === undefined);
const notBuilt = jsTokenizerNotice('cl100k_base');

describe('token ids equal tiktoken encode_ordinary (npm tiktoken, WASM)', () => {
  it('the real sample has pages to check', () => {
    expect(pages).toHaveLength(200);
    expect(texts.length).toBeGreaterThan(300);
  });

  for (const encoding of ENCODINGS) {
    it(`${encoding}, JS tokenizer: the real sample's text and source_text, synthetic pages, special-token strings`, async () => {
      const ours = await createTokenizer(encoding, { js: true });
      expect(ours.implementation).not.toBe('native');
      expect(synthTexts.length).toBeGreaterThan(150);
      expectTiktokenIds(encoding, (text) => ours.encodeOrdinary(text), [...texts, ...synthTexts, ...tricky]);
      const reference = get_encoding(encoding);
      expect(ours.endOfText).toBe(reference.encode('<|endoftext|>', 'all')[0]);
      reference.free();
    });
  }

  for (const encoding of ['cl100k_base', 'o200k_base'] as const) {
    it.skipIf(!nativeEncodings.includes(encoding))(
      `${encoding}, native tokenizer: the same texts${notBuilt ? ` (skipped: ${notBuilt})` : ''}`,
      async () => {
        const ours = await createTokenizer(encoding);
        expect(ours.implementation).toBe('native');
        expectTiktokenIds(encoding, (text) => ours.encodeOrdinary(text), [...texts, ...synthTexts, ...tricky]);
        const reference = get_encoding(encoding);
        expect(ours.endOfText).toBe(reference.encode('<|endoftext|>', 'all')[0]);
        reference.free();
      },
    );
  }

  it('encodings the native tokenizer lacks take the JS path, and the log line says why', async () => {
    expect((await createTokenizer('r50k_base')).implementation).toBe('gpt-tokenizer');
    expect((await createTokenizer('p50k_base')).implementation).toBe('ai-tokenizer');
    expect(jsTokenizerNotice('p50k_base')).toMatch(/: using the JS tokenizer, [\d-]+× slower$/);
  });

  it.skipIf(!nativeEncodings.includes('cl100k_base'))(
    'worker threads load the native tokenizer: rows carry the same ids',
    async () => {
      const pool = new TokenizerPool(2, { preload: 'cl100k_base' });
      const reference = get_encoding('cl100k_base');
      try {
        const batch = (text: string) =>
          batchInput(['{"index":{"_id":"1"}}', JSON.stringify({ page_id: 1, title: 'T', namespace: 0, text })]);
        const sample = texts.slice(0, 4);
        const results = await Promise.all(
          sample.map(async (text) => (await pool.submit('cl100k_base', batch(text))).result),
        );
        results.forEach((result, i) => {
          const row = JSON.parse(gunzipSync(result.member).toString()) as { tokens: number[] };
          expect(row.tokens).toEqual(Array.from(reference.encode_ordinary(sample[i]!)));
        });
      } finally {
        reference.free();
        await pool.close();
      }
    },
    120_000,
  );
});
