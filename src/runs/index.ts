export {
  RunFileSchema,
  loadRunFile,
  parseRunFile,
  runFilePaths,
  manifestOptionsOf,
  type RunFile,
  type Backend,
} from './run-file.js';
export { jobId, batchOf, MAX_JOB_NAME } from './names.js';
export * from './backends/index.js';
export { runTasksEntrypoint, manifestEntrypoint } from './entrypoints.js';
export {
  decide,
  jobsToExplain,
  reasonFromLog,
  type DecideInput,
  type Decision,
  type Limits,
  type JobEvent,
  type JobReason,
  type Submission,
} from './decide.js';
export { reconcileOnce, LeaseLost, type ReconcileDeps, type TickReport } from './reconcile.js';
export {
  StoreLease,
  KubeLease,
  AllLeases,
  runStoreLease,
  leaseFor,
  leaseHolder,
  kubeLeaseStep,
  type Lease,
  type LeaseStatus,
  type KubeLeaseStep,
} from './lease.js';
export { loadRunState, saveRunState, type RunState, type RecordedJob } from './state.js';
export { computeProgress, refreshDoneCache, type RunProgress } from './progress.js';
export { readStatus, formatStatus, watchOutcome, NoManifestYet, type WatchOutcome } from './status.js';
export { requeueTasks, type RequeueResult } from './requeue.js';
export { SubmitterMetrics, METRIC_NAMES } from './metrics.js';
export { startDaemon, runLabelOf, type Daemon, type DaemonOptions } from './daemon.js';
export { submitOnce, reconcileAll, failureOf, type RunOutcome, type DepsFor } from './submitter.js';
export { pushRunMetrics } from './push.js';
export { batchSize, docsPerCpuSecond, slotFreed, waitsForJobEnd, MAX_TASKS_PER_JOB } from './slots.js';
export { DEFAULT_MULTIPART_DAYS, DEFAULT_STATE_DAYS } from './retention.js';
