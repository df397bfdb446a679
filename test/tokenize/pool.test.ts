import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { TOKENIZER_ENV } from '../../src/tokenize/native-addon.js';
import { TokenizerPool } from '../../src/tokenize/pool.js';
import { batchInput } from '../core/helpers.js';

const page = (text: string) =>
  batchInput(['{"index":{"_id":"1"}}', JSON.stringify({ page_id: 1, title: 'T', namespace: 0, text })]);

describe('tokenizer pool', () => {
  let pool: TokenizerPool | undefined;
  afterAll(() => pool?.close());

  it('replaces a worker that dies, failing only the batch it held', async () => {
    // A heap too small for a 6 MB page (its string, parsed copy and ids), ample for ordinary ones. Measured on Node.js
    // 26 with the JS tokenizer (the native one keeps ids outside the heap, so the page would fit): the 6 MB page fits
    // in 96 MB but not in 64 MB; an ordinary page needs under 32 MB (cl100k_base loaded). Workers copy the env.
    process.env[TOKENIZER_ENV] = 'js';
    pool = new TokenizerPool(1, {
      preload: 'cl100k_base',
      limits: { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 16 },
    });
    delete process.env[TOKENIZER_ENV];
    const ok = async (): Promise<void> => {
      const { result } = await pool!.submit('cl100k_base', page('a small page'));
      expect(gunzipSync((await result).member).toString()).toContain('"n_tokens":3');
    };
    await ok();
    const words = Array.from({ length: 1_000_000 }, (_, i) => `w${i.toString(36)}`).join(' ');
    const { result } = await pool.submit('cl100k_base', page(words));
    await expect(result).rejects.toThrow(/tokenizer worker died \(.*out of memory/i);
    await ok();
  }, 120_000);
});
