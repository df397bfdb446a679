import { InputError, TaskFailure, UsageError, messageOf } from '../config/errors.js';
import type { Manifest, Task } from '../manifest/schema.js';
import type { Logger } from '../observability/logger.js';
import { TokenizerPool } from '../tokenize/pool.js';
import { executeTask, type ExecuteOptions } from './execute.js';
import { anyMarker, type Marker } from './marker.js';

export interface RunTasksOptions extends Omit<ExecuteOptions, 'pool'> {
  concurrency: number;
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
 * leaving the workers idle. A failed task does not stop the others.
 */
export async function runTasks(tasks: readonly Task[], options: RunTasksOptions): Promise<RunTasksSummary> {
  await checkPrefixFormat(options.outputPrefix, options.manifest.output_format);
  const pool = new TokenizerPool(options.concurrency, { preload: options.manifest.encoding });
  const summary: RunTasksSummary = { done: [], skipped: [], failed: [] };
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < tasks.length) {
      const task = tasks[next++] as Task;
      try {
        const outcome = await executeTask(task, { ...options, pool });
        (outcome.status === 'done' ? summary.done : summary.skipped).push(outcome.marker);
      } catch (error) {
        if (!(error instanceof TaskFailure) && !(error instanceof Error)) throw error;
        summary.failed.push({ task_id: task.task_id, error: messageOf(error) });
        options.logger.error({ task_id: task.task_id, err: messageOf(error) }, 'task failed');
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
