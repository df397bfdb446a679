/**
 * The native tokenizer (src/tokenize/native: GitHub's bpe-openai through napi-rs), built by `npm install` when a
 * Rust toolchain is there. Without it, or for encodings it lacks, the JS tokenizer serves the same ids.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { EncodingName } from './encodings.js';

/** Where scripts/build-native.mts puts the addon: the same path seen from src/tokenize and dist/tokenize. */
export const NATIVE_ADDON = fileURLToPath(new URL('../../dist/native/tokenize-wiki-native.node', import.meta.url));
/** Why the last build left no addon, written by scripts/build-native.mts next to it. */
export const NATIVE_BUILD_FAILURE = fileURLToPath(new URL('../../dist/native/build-failure.txt', import.meta.url));
/** `js` forces the JS tokenizer (tests compare both paths; a user can rule out the addon). */
export const TOKENIZER_ENV = 'TOKENIZE_WIKI_TOKENIZER';
/** Native ÷ JS tokenizer, MB/s per core, cl100k_base, real and synthetic text (docs/performance.md). */
const NATIVE_SPEEDUP = '2-3×';

interface NativeEncoder {
  encodeOrdinary(text: string): Uint32Array;
}

const addonShape = z.object({
  encodings: z.function(),
  Encoder: z.function(),
});
interface Addon {
  encodings(): string[];
  Encoder: new (encoding: string) => NativeEncoder;
}

type NativeAddon = { addon: Addon } | { reason: string };

let loaded: NativeAddon | undefined;

/** The addon, or why there is none; loaded once per thread. */
function nativeAddon(): NativeAddon {
  loaded ??= load();
  return loaded;
}

function load(): NativeAddon {
  const forced = process.env[TOKENIZER_ENV];
  if (forced !== undefined && forced !== '' && forced !== 'native' && forced !== 'js') {
    return { reason: `${TOKENIZER_ENV}=${forced} is neither "native" nor "js"` };
  }
  if (forced === 'js') return { reason: `${TOKENIZER_ENV}=js` };
  if (!existsSync(NATIVE_ADDON)) {
    const why = existsSync(NATIVE_BUILD_FAILURE)
      ? readFileSync(NATIVE_BUILD_FAILURE, 'utf8').trim()
      : 'run `npm run build:native`';
    return { reason: `native tokenizer not built (${why})` };
  }
  try {
    const addon: unknown = createRequire(import.meta.url)(NATIVE_ADDON);
    addonShape.parse(addon);
    return { addon: addon as Addon };
  } catch (error) {
    return { reason: `native tokenizer ${NATIVE_ADDON} failed to load (${(error as Error).message.split('\n')[0]})` };
  }
}

/** Whether the native tokenizer serves `encoding`, or why the JS tokenizer does. */
export function nativeSupport(encoding: EncodingName): { addon: Addon } | { reason: string } {
  const native = nativeAddon();
  if ('reason' in native) return native;
  if (!native.addon.encodings().includes(encoding)) return { reason: `the native tokenizer has no ${encoding}` };
  return native;
}

/** One line for the log when `encoding` takes the JS path, naming why; undefined when it takes the native one. */
export function jsTokenizerNotice(encoding: EncodingName): string | undefined {
  const native = nativeSupport(encoding);
  return 'reason' in native ? `${native.reason}: using the JS tokenizer, ${NATIVE_SPEEDUP} slower` : undefined;
}
