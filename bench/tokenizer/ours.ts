import { checkEncodingName, createTokenizer } from '../../src/tokenize/index.js';

export interface OurTokenizer {
  encode: (text: string) => ArrayLike<number>;
  /** Which code path was measured, printed with the results so a reader knows. */
  source: string;
}

/**
 * Our tokenizer path, exactly as the workers call it: src/tokenize createTokenizer(encoding).encodeOrdinary (the
 * native addon when built); `js` forces the JS tokenizer that serves when the addon is missing.
 */
export async function loadOurTokenizer(encoding: string, options: { js?: boolean } = {}): Promise<OurTokenizer> {
  const tok = await createTokenizer(checkEncodingName(encoding), options);
  const how = options.js ? '{ js: true }' : '';
  return {
    encode: (t) => tok.encodeOrdinary(t),
    source: `src/tokenize createTokenizer(${how}).encodeOrdinary (${tok.implementation})`,
  };
}
