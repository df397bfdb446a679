import { UsageError } from '../config/errors.js';

export const ENCODINGS = ['cl100k_base', 'o200k_base', 'p50k_base', 'r50k_base'] as const;
export type EncodingName = (typeof ENCODINGS)[number];

export interface Tokenizer {
  readonly encoding: EncodingName;
  /** Ids identical to tiktoken's `encode_ordinary`: special-token strings in the text are ordinary text. */
  encodeOrdinary(text: string): number[];
  /** The id of `<|endoftext|>`, for `--append-eot`. */
  readonly endOfText: number;
}

export function isEncodingName(name: string): name is EncodingName {
  return (ENCODINGS as readonly string[]).includes(name);
}

export function checkEncodingName(name: string): EncodingName {
  if (!isEncodingName(name)) throw new UsageError(`unknown encoding "${name}" (choose one of ${ENCODINGS.join(', ')})`);
  return name;
}

interface EncodingModule {
  encode(text: string, options?: { disallowedSpecial?: Set<string> }): number[];
  encodeGenerator?: unknown;
}

// gpt-tokenizer ships the ranks inside the package: no download at run time. It is the fastest of the
// tiktoken-compatible JS tokenizers measured here (bench/), and its ids are checked against tiktoken in tests.
const loaders: Record<EncodingName, () => Promise<EncodingModule>> = {
  cl100k_base: () => import('gpt-tokenizer/encoding/cl100k_base'),
  o200k_base: () => import('gpt-tokenizer/encoding/o200k_base'),
  p50k_base: () => import('gpt-tokenizer/encoding/p50k_base'),
  r50k_base: () => import('gpt-tokenizer/encoding/r50k_base'),
};

export async function createTokenizer(encoding: EncodingName): Promise<Tokenizer> {
  const module = await loaders[encoding]();
  // An empty disallow-set with nothing allowed: specials are neither rejected nor encoded as specials.
  const ordinary = { disallowedSpecial: new Set<string>() };
  const endOfText = module.encode('<|endoftext|>', { allowedSpecial: 'all' } as never);
  if (endOfText.length !== 1) throw new Error(`${encoding}: cannot resolve the <|endoftext|> id`);
  return {
    encoding,
    endOfText: endOfText[0] as number,
    encodeOrdinary: (text) => module.encode(text, ordinary),
  };
}
