export { executeTask, BATCH_LIMITS, type ExecuteOptions, type TaskOutcome } from './execute.js';
export { runTasks, selectTasks, withStorageRetry, type RunTasksOptions, type RunTasksSummary } from './run-tasks.js';
export { verifyRun, type VerifyReport } from './verify-run.js';
export { MarkerSchema, readMarker, listDoneTaskIds, markerFiles, type Marker } from './marker.js';
export { checkDumpUnchanged, openTaskStream } from './open.js';
export { completeRun, formatVerifyReport } from './complete.js';
export { exportRun } from './export-run.js';
export {
  DEFAULT_STORAGE_RETRY,
  storageRetryDelay,
  classifyFailure,
  NODE_DIED,
  formatFailedTask,
  parseFailedTask,
  type FailureKind,
  type StorageRetry,
} from './failure.js';
