import { setTimeout as sleep } from 'node:timers/promises';
import { TaskFailure, UsageError } from '../errors/index.js';
import { readManifest } from '../manifest/index.js';
import { storeFor } from '../storage/index.js';
import type { Lease } from './lease.js';
import type { RunFile } from './run-file.js';
import { loadRunState, saveRunState } from './state.js';

export interface RequeueResult {
  /** Tasks that were quarantined or had failed attempts, now cleared. */
  cleared: string[];
  /** Tasks that had nothing to clear. */
  untouched: string[];
}

/**
 * Give tasks a fresh start: clear their quarantine and failed attempts, so the next tick submits them again. Takes the
 * run's lease (waiting up to `waitMs` for a running tick to finish) so it never races a submitter's state write.
 */
export async function requeueTasks(
  run: RunFile,
  taskIds: readonly string[],
  lease: Lease,
  waitMs = 120_000,
): Promise<RequeueResult> {
  if (taskIds.length === 0) throw new UsageError('--tasks: give at least one task id');
  if (await storeFor(run.manifest_uri).stat(run.manifest_uri)) {
    const known = new Set((await readManifest(run.manifest_uri)).tasks.map((t) => t.task_id));
    const unknown = taskIds.filter((id) => !known.has(id));
    if (unknown.length > 0)
      throw new UsageError(
        `--tasks: ${unknown.join(', ')} ${unknown.length === 1 ? 'is not a task' : 'are not tasks'} of ${run.manifest_uri}`,
      );
  }
  const deadline = Date.now() + waitMs;
  for (;;) {
    const status = await lease.acquire();
    if (status.held) break;
    if (Date.now() > deadline)
      throw new TaskFailure(
        `the run's lease is held by ${status.holder ?? 'another submitter'} until ${status.expires_at ?? '?'}; try again later`,
      );
    await sleep(1000);
  }
  try {
    const state = await loadRunState(run.output_prefix);
    const result: RequeueResult = { cleared: [], untouched: [] };
    for (const id of taskIds) {
      const had = state.quarantine.tasks[id] !== undefined || state.attempts.tasks[id] !== undefined;
      delete state.quarantine.tasks[id];
      delete state.attempts.tasks[id];
      (had ? result.cleared : result.untouched).push(id);
    }
    await saveRunState(run.output_prefix, state);
    return result;
  } finally {
    await lease.release();
  }
}
