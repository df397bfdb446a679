/**
 * Whose fault a failure is. Only a task's own failures (its data, its code path) count towards quarantine: an
 * object store that is down or throttling, or a Ray head that was lost with the job on it, fail every task alike
 * and heal by waiting, so counting them would quarantine healthy tasks during an outage.
 */
export type FailureKind = 'storage-unavailable' | 'job-lost' | 'task';

const STORAGE_UNAVAILABLE = [
  /S3 endpoint unreachable/i,
  /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|ENOTFOUND|EPIPE)\b/,
  /socket hang up|other side closed/i,
  // Throttling and overload, in the words of S3 and S3-compatible stores.
  /\b(SlowDown|ServiceUnavailable|Service Unavailable|TooManyRequests|RequestTimeout|ThrottlingException|InternalError)\b/,
];

/**
 * Ray's words for an actor (a job's supervisor) whose node died: a Ray worker pod deleted or its node lost, the
 * process of every task of the job gone with it. An actor killed on a live node (by Ray's memory monitor, for
 * instance) says otherwise, and counts.
 */
export const NODE_DIED = /\bbecause its node has died\b/;

/**
 * A job that never ran its tasks, or lost them with the cluster: gone from the backend (a Ray head lost without GCS
 * fault tolerance), its Ray node died, or it never started (no worker with room for it: Ray fails a job still
 * pending after RAY_JOB_START_TIMEOUT_SECONDS; the submitter stops one pending past job_timeout_seconds).
 */
const JOB_LOST = [
  /job vanished from the backend/,
  NODE_DIED,
  /Job supervisor actor failed to start within/,
  /timed out: PENDING\b/,
];

/** A pure reading of a failure message (what run-tasks printed, or what the submitter recorded). */
export function classifyFailure(message: string): FailureKind {
  if (STORAGE_UNAVAILABLE.some((re) => re.test(message))) return 'storage-unavailable';
  if (JOB_LOST.some((re) => re.test(message))) return 'job-lost';
  return 'task';
}

export interface StorageRetry {
  /** How long a task keeps retrying an unavailable object store, from its first failure. */
  budgetMs: number;
  firstDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_STORAGE_RETRY: StorageRetry = { budgetMs: 180_000, firstDelayMs: 2_000, maxDelayMs: 20_000 };

/**
 * The wait before retry number `attempt` (1, 2, …) of a task whose storage was unavailable, `elapsedMs` after its
 * first failure: doubling from `firstDelayMs` up to `maxDelayMs`, and undefined once the budget is spent (the task
 * then fails, and the submitter resubmits it later without counting the failure).
 */
export function storageRetryDelay(attempt: number, elapsedMs: number, retry: StorageRetry): number | undefined {
  const delay = Math.min(retry.maxDelayMs, retry.firstDelayMs * 2 ** Math.max(0, attempt - 1));
  return elapsedMs + delay > retry.budgetMs ? undefined : delay;
}

/**
 * How run-tasks reports a failed task, and how the submitter reads it back from a job's log: a summary line
 * (`  failed <task>: <error>`) on stdout and a JSON log line (`"msg":"task failed"`) on stderr. Both sides use these.
 */
export const TASK_FAILED_EVENT = 'task failed';

export interface FailedTask {
  taskId: string;
  error: string;
}

export function formatFailedTask(failure: FailedTask): string {
  return `  failed ${failure.taskId}: ${failure.error}`;
}

/** The failed task a log line reports, from either the summary line or the JSON log line; undefined for others. */
export function parseFailedTask(line: string): FailedTask | undefined {
  const summary = /^\s*failed ([A-Za-z0-9_.-]+): (.*)$/.exec(line);
  if (summary?.[1] && summary[2]) return { taskId: summary[1], error: summary[2] };
  if (!line.startsWith('{') || !line.includes(`"${TASK_FAILED_EVENT}"`)) return undefined;
  try {
    const entry = JSON.parse(line) as { task_id?: unknown; err?: unknown };
    if (typeof entry.task_id === 'string' && typeof entry.err === 'string')
      return { taskId: entry.task_id, error: entry.err };
  } catch {
    // not a log line of ours
  }
  return undefined;
}
