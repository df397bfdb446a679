export { resolveDumps, describeDumpFile, type DumpFile, type Compression, type ResolveOptions } from './layout.js';
export { cutBatches, type RawBatch, type DocRange, type BatchLimits } from './batches.js';
export {
  parseDoc,
  indexLineId,
  readDocLine,
  BadDocError,
  HUGE_DOC_LIMITS,
  type ParsedDoc,
  type DocOutcome,
  type SkipReason,
  type HugeDocLimits,
} from './doc.js';
export { synthLegacyDump, synthPartsDump, type SynthOptions } from './synth.js';
export { inflateWithAccessPoints } from './gzip-scan.js';
export { inflateFromAccessPoint } from './gzip-resume.js';
export {
  GzipDataError,
  GZIP_WINDOW_BYTES,
  validateAccessPoint,
  type GzipAccessPoint,
  type GzipPiece,
} from './gzip-access.js';
export { scanBzip2Blocks, realignBzip2Blocks } from './bzip2-realign.js';
export { decodeBzip2, fastestBzip2Decoder, type Bzip2Decoder } from './bzip2-decode.js';
export {
  decodeBzip2Blocks,
  combinedCrc,
  Bzip2DataError,
  type Bzip2Block,
  type Bzip2BlockData,
} from './bzip2-blocks.js';
