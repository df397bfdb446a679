import { UsageError } from '../errors/index.js';
import { nativeSupport } from './native-addon.js';

export const ENCODINGS = ['cl100k_base', 'o200k_base', 'p50k_base', 'r50k_base'] as const;
export type EncodingName = (typeof ENCODINGS)[number];

export interface Tokenizer {
  readonly encoding: EncodingName;
  /** Which code serves it: `native` (src/tokenize/native) or the JS library's name. */
  readonly implementation: string;
  /** Ids identical to tiktoken's `encode_ordinary`: special-token strings in the text are ordinary text. */
  encodeOrdinary(text: string): number[] | Uint32Array;
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

const END_OF_TEXT = '<|endoftext|>';

/**
 * ai-tokenizer is the fastest tiktoken-compatible JS tokenizer we measured (figures in docs/performance.md), so it
 * serves the encodings it ships.
 */
async function aiTokenizer(encoding: Exclude<EncodingName, 'r50k_base'>): Promise<Tokenizer> {
  const { default: AiTokenizer } = await import('ai-tokenizer');
  const data = await aiEncodings[encoding]();
  // Its vocabulary is a plain object, so pieces such as "toString" or "__proto__" would find Object.prototype's
  // members instead of missing; a prototype-free copy makes every lookup a vocabulary lookup.
  const stringEncoder: Record<string, number> = Object.assign(
    Object.create(null) as Record<string, number>,
    data.stringEncoder,
  );
  const tokenizer = new AiTokenizer({ ...data, stringEncoder });
  const endOfText = data.special_tokens[END_OF_TEXT];
  if (endOfText === undefined) throw new Error(`${encoding}: no ${END_OF_TEXT} token`);
  return {
    encoding,
    implementation: 'ai-tokenizer',
    endOfText,
    // Nothing allowed and nothing disallowed: special-token strings are neither rejected nor encoded as specials.
    encodeOrdinary: (text) => tokenizer.encode(text, [], []),
  };
}

const aiEncodings = {
  cl100k_base: () => import('ai-tokenizer/encoding/cl100k_base'),
  o200k_base: () => import('ai-tokenizer/encoding/o200k_base'),
  p50k_base: () => import('ai-tokenizer/encoding/p50k_base'),
};

/** r50k_base (GPT-2/GPT-3) is not in ai-tokenizer; gpt-tokenizer ships it with the same ids. */
async function gptTokenizerR50k(): Promise<Tokenizer> {
  const module = await import('gpt-tokenizer/encoding/r50k_base');
  const ordinary = { disallowedSpecial: new Set<string>() };
  const endOfText = module.encode(END_OF_TEXT, { allowedSpecial: new Set([END_OF_TEXT]) });
  if (endOfText.length !== 1) throw new Error(`r50k_base: cannot resolve the ${END_OF_TEXT} id`);
  return {
    encoding: 'r50k_base',
    implementation: 'gpt-tokenizer',
    endOfText: endOfText[0] as number,
    encodeOrdinary: (text) => module.encode(text, ordinary),
  };
}

/** The ids of `<|endoftext|>` in the encodings the native tokenizer serves (tiktoken's own tables). */
const NATIVE_END_OF_TEXT: Partial<Record<EncodingName, number>> = { cl100k_base: 100257, o200k_base: 199999 };

/**
 * The native tokenizer where it is built and has the encoding (faster: docs/performance.md), else the JS one;
 * `js: true` forces the JS one. Why the JS one serves is for the caller to log (`jsTokenizerNotice`), once per run.
 */
export function createTokenizer(encoding: EncodingName, options: { js?: boolean } = {}): Promise<Tokenizer> {
  const native = options.js ? undefined : nativeSupport(encoding);
  const endOfText = NATIVE_END_OF_TEXT[encoding];
  if (native && 'addon' in native && endOfText !== undefined) {
    const encoder = new native.addon.Encoder(encoding);
    return Promise.resolve({
      encoding,
      implementation: 'native',
      endOfText,
      encodeOrdinary: (text) => encoder.encodeOrdinary(text),
    });
  }
  return encoding === 'r50k_base' ? gptTokenizerR50k() : aiTokenizer(encoding);
}
