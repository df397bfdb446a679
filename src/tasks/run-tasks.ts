import { setTimeout as sleep } from 'node:timers/promises';
import { InputError, TaskFailure, UsageError, messageOf } from '../errors/index.js';
import type { Manifest, Task } from '../manifest/index.js';
import type { Logger } from '../observability/index.js';
import { jsTokenizerNotice, TokenizerPool } from '../tokenize/index.js';
import { executeTask, type ExecuteOptions, type TaskOutcome } from './execute.js';
import {
  DEFAULT_STORAGE_RETRY,
  TASK_FAILED_EVENT,
  classifyFailure,
  storageRetryDelay,
  type StorageRetry,
} from './failure.js';
import { anyMarker, type Marker } from './marker.js';

export interface RunTasksOptions extends Omit<ExecuteOptions, 'pool'> {
  concurrency: number;
  /** How an unavailable object store is waited out (default: DEFAULT_STORAGE_RETRY). */
  storageRetry?: StorageRetry;
}

export interface RunTasksSummary {
  done: Marker[];
  skipped: Marker[];
  failed: Array<{ task_id: string; error: string }>;
}

/** Select tasks by id; an unknown id is a usage error rather than a silently smaller run. */
export function selectTasks(manifest: Manifest, ids: readonly string[] | undefined): Task[] {
  if (!ids) return manifest.tasks;
  const byId = new Map(manifest.tasks.map((t) => [t.task_id, t]));
  return ids.map((id) => {
    const task = byId.get(id);
    if (!task) throw new UsageError(`--tasks: ${id} is not a task of the manifest`);
    return task;
  });
}

/**
 * Run tasks with one shared tokenizer pool. Several tasks run at once so that decoding (zlib threads, bzip2
 * processes) overlaps with tokenizing, and one lane more than there are workers, so that a task's start (opening
 * its range, decoding to its first doc) and end (upload, marker) overlap with another task's batches instead of
 * leaving the workers idle. A failed task does not stop the others. A task that failed because the object store was
 * unreachable or throttling is run again from its start (it wrote no marker, so that is safe) with backoff, for a
 * bounded time: a storage outage of a minute or two is ridden out instead of failing every task of the job.
 */
export async function runTasks(tasks: readonly Task[], options: RunTasksOptions): Promise<RunTasksSummary> {
  await withStorageRetry(
    {
      what: 'the output check',
      fields: { output_prefix: options.outputPrefix },
      logger: options.logger,
      retry: options.storageRetry,
    },
    () => checkPrefixFormat(options.outputPrefix, options.manifest.output_format),
  );
  const pool = new TokenizerPool(options.concurrency, { preload: options.manifest.encoding });
  const jsNotice = jsTokenizerNotice(options.manifest.encoding);
  if (jsNotice) options.logger.warn(jsNotice);
  const summary: RunTasksSummary = { done: [], skipped: [], failed: [] };
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < tasks.length) {
      const task = tasks[next++] as Task;
      try {
        const outcome = await executeRetryingStorage(task, { ...options, pool });
        (outcome.status === 'done' ? summary.done : summary.skipped).push(outcome.marker);
      } catch (error) {
        if (!(error instanceof TaskFailure) && !(error instanceof Error)) throw error;
        summary.failed.push({ task_id: task.task_id, error: messageOf(error) });
        options.logger.error({ task_id: task.task_id, err: messageOf(error) }, TASK_FAILED_EVENT);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(tasks.length, pool.size + 1) }, lane));
  } finally {
    await pool.close();
  }
  return summary;
}

function executeRetryingStorage(
  task: Task,
  options: ExecuteOptions & { storageRetry?: StorageRetry },
): Promise<TaskOutcome> {
  return withStorageRetry(
    { what: 'the task', fields: { task_id: task.task_id }, logger: options.logger, retry: options.storageRetry },
    () => executeTask(task, options),
  );
}

/** What a storage retry logs: `object store unavailable; retrying <what>`, with `fields`. */
export interface StorageRetryLog {
  what: string;
  fields: Record<string, unknown>;
  logger: Logger;
  retry?: StorageRetry | undefined;
}

/**
 * `fn`, run again from its start with backoff while it fails because the object store is unreachable or throttling,
 * for at most the retry budget; any other failure, or the last one past the budget, is thrown.
 */
export async function withStorageRetry<T>(how: StorageRetryLog, fn: () => Promise<T>): Promise<T> {
  const retry = how.retry ?? DEFAULT_STORAGE_RETRY;
  let firstFailure: number | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (classifyFailure(messageOf(error)) !== 'storage-unavailable') throw error;
      firstFailure ??= Date.now();
      const delay = storageRetryDelay(attempt, Date.now() - firstFailure, retry);
      if (delay === undefined) throw error;
      how.logger.warn(
        { ...how.fields, err: messageOf(error), retry: attempt, retry_in_ms: delay },
        `object store unavailable; retrying ${how.what}`,
      );
      await sleep(delay);
    }
  }
}

/**
 * One output prefix holds one format: shards of two formats under one prefix would leave verify and export nothing
 * consistent to read. (A manifest in the prefix already refuses another format; this covers a manifest kept elsewhere.)
 */
async function checkPrefixFormat(outputPrefix: string, format: Manifest['output_format']): Promise<void> {
  const marker = await anyMarker(outputPrefix);
  if (marker && marker.output_format !== format) {
    throw new InputError(
      `${outputPrefix}: already holds ${marker.output_format} shards (e.g. markers/${marker.task_id}.json) and this run's format is ${format}; use another output prefix`,
    );
  }
}

export type { Logger };
