export { OUTPUT_FORMATS, isOutputFormat, type OutputFormat } from './formats.js';
export {
  MANIFEST_KEY,
  MARKERS_DIR,
  SHARDS_DIR,
  STATE_DIR,
  STATE_FILES,
  SUCCESS_KEY,
  bzip2BlocksKey,
  gzipPointKey,
  markerKey,
  shardKeys,
  taskIdOfMarker,
} from './layout.js';
export {
  DTYPE_BYTES,
  TokenBuffer,
  concatIdx,
  decodeIdx,
  dtypeFor,
  encodeIdx,
  idxBytes,
  partPrefix,
  planParts,
  type MegatronDtype,
  type PartPlan,
} from './megatron.js';
export { SHARD_ROW_END, metaRow, pageIdOfRow, shardRowHead } from './rows.js';
