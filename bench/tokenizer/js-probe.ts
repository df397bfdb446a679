/**
 * Tokenizer probe for one JavaScript library, run in its own process so libraries do not share a heap or JIT state.
 * Usage: js-probe.ts LIB CORPUS.jsonl ENCODING
 * Prints one JSON line: docs, bytes, tokens, wallS, cpuS of the timed pass, and a digest of all ids.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { timeSync } from '../lib/measure.js';
import { loadOurTokenizer } from './ours.js';

type Encode = (text: string) => ArrayLike<number>;

async function makeEncoder(lib: string, encoding: string): Promise<{ encode: Encode; source: string }> {
  switch (lib) {
    case 'ours':
      return loadOurTokenizer(encoding);
    case 'ours-js':
      return loadOurTokenizer(encoding, { js: true });
    case 'gpt-tokenizer': {
      // What ours used before ai-tokenizer, kept as a contender to show why it was replaced.
      const { encode } = await import('gpt-tokenizer/encoding/cl100k_base');
      if (encoding !== 'cl100k_base') throw new Error('the gpt-tokenizer probe measures cl100k_base only');
      const ordinary = { disallowedSpecial: new Set<string>() };
      return { encode: (t) => encode(t, ordinary), source: 'gpt-tokenizer encode(text, { disallowedSpecial: ∅ })' };
    }
    case 'tiktoken-wasm': {
      const { get_encoding } = await import('tiktoken');
      // The probe names encodings from the CLI; the WASM binding types them as a literal union.
      const enc = get_encoding(encoding as Parameters<typeof get_encoding>[0]);
      return { encode: (t) => enc.encode_ordinary(t), source: 'tiktoken (npm, WASM) encode_ordinary' };
    }
    case 'js-tiktoken': {
      const { getEncoding } = await import('js-tiktoken');
      const enc = getEncoding(encoding as Parameters<typeof getEncoding>[0]);
      // Empty allowed and disallowed sets: special-token strings are ordinary text, as in encode_ordinary.
      return { encode: (t) => enc.encode(t, [], []), source: 'js-tiktoken encode(text, [], [])' };
    }
    default:
      throw new Error(`unknown tokenizer library '${lib}' (ours, ours-js, gpt-tokenizer, tiktoken-wasm, js-tiktoken)`);
  }
}

async function main(): Promise<void> {
  const [lib, corpusPath, encoding = 'cl100k_base'] = process.argv.slice(2);
  if (!lib || !corpusPath) throw new Error('usage: js-probe.ts LIB CORPUS.jsonl [ENCODING]');
  const texts = readFileSync(corpusPath, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as string);
  const { encode, source } = await makeEncoder(lib, encoding);
  // Warm up on the first docs so the timed pass measures steady state, as in a long run.
  for (const t of texts.slice(0, Math.min(50, texts.length))) encode(t);
  const out = new Array<ArrayLike<number>>(texts.length);
  const { wallS, cpuS } = timeSync(() => {
    for (let i = 0; i < texts.length; i++) out[i] = encode(texts[i]!);
  });
  const hash = createHash('sha256');
  const sep = Buffer.from([0xff, 0xff, 0xff, 0xff]);
  let tokens = 0;
  let bytes = 0;
  for (let i = 0; i < texts.length; i++) {
    const ids = Int32Array.from(out[i]!);
    tokens += ids.length;
    bytes += Buffer.byteLength(texts[i]!);
    hash.update(new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
    hash.update(sep);
  }
  console.log(
    JSON.stringify({ lib, source, docs: texts.length, bytes, tokens, wallS, cpuS, digest: hash.digest('hex') }),
  );
}

await main();
