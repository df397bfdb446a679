import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../lib/paths.js';

export interface OurTokenizer {
  encode: (text: string) => ArrayLike<number>;
  /** Which code path was measured, printed with the results so a reader knows. */
  source: string;
}

interface EncodeOrdinary {
  encodeOrdinary: (text: string) => ArrayLike<number>;
}

interface TokenizeModule {
  createTokenizer: (encoding: string) => EncodeOrdinary | Promise<EncodeOrdinary>;
}

/** Our tokenizer path: src/tokenize's createTokenizer once it exists, else gpt-tokenizer called the same way. */
export async function loadOurTokenizer(encoding: string): Promise<OurTokenizer> {
  const modPath = join(repoRoot, 'src', 'tokenize', 'index.ts');
  if (existsSync(modPath)) {
    const mod = (await import(pathToFileURL(modPath).href)) as Partial<TokenizeModule>;
    if (typeof mod.createTokenizer === 'function') {
      const tok = await mod.createTokenizer(encoding);
      return { encode: (t) => tok.encodeOrdinary(t), source: 'src/tokenize createTokenizer().encodeOrdinary' };
    }
  }
  if (encoding !== 'cl100k_base') throw new Error(`direct gpt-tokenizer fallback supports cl100k_base only, not ${encoding}`);
  const { encode } = await import('gpt-tokenizer/encoding/cl100k_base');
  const ordinary = { disallowedSpecial: new Set<string>() };
  return { encode: (t) => encode(t, ordinary), source: 'gpt-tokenizer encode (direct; src/tokenize not present yet)' };
}
