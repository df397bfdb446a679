export {
  stageDump,
  formatStageReport,
  type StageOptions,
  type StageReport,
  type StagedFile,
  type StageOutcome,
} from './stage.js';
export { parseSha256, parseSha256List, readSha256List } from './checksums.js';
export { StagingRecordSchema, type StagingRecord } from './record.js';
