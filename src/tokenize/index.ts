export { jsTokenizerNotice } from './native-addon.js';
export {
  createTokenizer,
  checkEncodingName,
  isEncodingName,
  ENCODINGS,
  type EncodingName,
  type Tokenizer,
} from './encodings.js';
export { processBatch, type BatchInput, type BatchResult, type BadDoc } from './batch.js';
export { TokenizerPool } from './pool.js';
