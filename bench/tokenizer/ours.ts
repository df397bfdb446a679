import { checkEncodingName, createTokenizer } from '../../src/tokenize/index.js';

export interface OurTokenizer {
  encode: (text: string) => ArrayLike<number>;
  /** Which code path was measured, printed with the results so a reader knows. */
  source: string;
}

/** Our tokenizer path, exactly as the workers call it: src/tokenize createTokenizer(encoding).encodeOrdinary. */
export async function loadOurTokenizer(encoding: string): Promise<OurTokenizer> {
  const tok = await createTokenizer(checkEncodingName(encoding));
  return { encode: (t) => tok.encodeOrdinary(t), source: 'src/tokenize createTokenizer().encodeOrdinary' };
}
