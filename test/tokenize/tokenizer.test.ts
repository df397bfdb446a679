import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { get_encoding } from 'tiktoken';
import { describe, expect, it } from 'vitest';
import { createTokenizer, ENCODINGS } from '../../src/tokenize/encodings.js';
import { dumpDocs, SAMPLE } from '../core/helpers.js';

/** Every page of the real sample: its `text` and `source_text` (wikitext, with markup and escapes). */
const pages = dumpDocs(gunzipSync(readFileSync(SAMPLE)).toString('utf8')).map(({ doc }) => doc);
const texts = pages.flatMap((doc) => [doc.text, doc.source_text]).filter((t): t is string => typeof t === 'string' && t !== '');

const tricky = [
  '<|endoftext|>',
  'a<|endoftext|>b <|fim_prefix|><|fim_middle|><|fim_suffix|> <|endofprompt|> <|im_start|>',
  '  leading and trailing spaces   ',
  '\n\n\t\r\n mixed whitespace \u00a0\u2003',
  "I'm can't WE'LL they'RE 123456789 1,000,000.5",
  'Ελληνικά Русский العربية हिन्दी 中文 日本語 한국어 🙂👩‍👩‍👧 e\u0301',
  // Names of Object.prototype members: a vocabulary kept in a plain object would find these instead of missing.
  'toString',
  '__proto__',
  'hasOwnProperty\nconstructor\nvalueOf\nisPrototypeOf\npropertyIsEnumerable\ntoLocaleString\n__defineGetter__',
];

describe('token ids equal tiktoken encode_ordinary (npm tiktoken, WASM)', () => {
  it('the real sample has pages to check', () => {
    expect(pages).toHaveLength(200);
    expect(texts.length).toBeGreaterThan(300);
  });

  for (const encoding of ENCODINGS) {
    it(`${encoding}: every page's text and source_text of the real sample, and special-token strings`, async () => {
      const ours = await createTokenizer(encoding);
      const reference = get_encoding(encoding);
      try {
        for (const text of [...texts, ...tricky]) {
          const expected = Array.from(reference.encode_ordinary(text));
          const actual = ours.encodeOrdinary(text);
          // Compare whole arrays only when they differ in the first place, to keep the failure readable.
          if (actual.length !== expected.length || actual.some((id, i) => id !== expected[i])) {
            expect({ text: text.slice(0, 200), ids: actual }).toEqual({ text: text.slice(0, 200), ids: expected });
          }
        }
        expect(ours.endOfText).toBe(reference.encode('<|endoftext|>', 'all')[0]);
      } finally {
        reference.free();
      }
    });
  }
});
