import { TERMINAL, type JobInfo } from './backends/backend.js';
import type { DoneCache } from './state.js';
import type { RunProgress } from './progress.js';

/**
 * A job's task list travels in its entrypoint (`--tasks`) and in the RayJob's annotation (all annotations of an
 * object together: at most 256 KiB), so a job never carries more than this many tasks, however fast tasks run.
 */
export const MAX_TASKS_PER_JOB = 500;

/** The most recent finished tasks the throughput is measured over (recent speed, not the whole run's average). */
export const THROUGHPUT_SAMPLE_TASKS = 64;

export interface JobSizing {
  /** The size of a job before any task has finished (nothing measured yet). */
  tasksPerJob: number;
  cpusPerJob: number;
  /** How long a job should run: long enough that its start-up cost is small, short enough that a lost job costs little. */
  jobTargetSeconds: number;
  /** Measured by `docsPerCpuSecond`; undefined until a task has finished. */
  docsPerCpuSecond?: number;
}

/**
 * Docs per CPU-second over the most recent finished tasks, from their markers (docs, started_at, finished_at).
 * A job runs one task per CPU (plus one lane that overlaps a task's start and end with the others' batches), so a
 * task's docs over its own seconds is close to one CPU's rate, and slightly under it: sizing errs towards shorter jobs.
 */
export function docsPerCpuSecond(done: DoneCache): number | undefined {
  const recent = Object.values(done.tasks)
    .sort((a, b) => Date.parse(b.finished_at) - Date.parse(a.finished_at))
    .slice(0, THROUGHPUT_SAMPLE_TASKS);
  const docs = recent.reduce((n, t) => n + t.docs, 0);
  const seconds = recent.reduce(
    (n, t) => n + Math.max(0, (Date.parse(t.finished_at) - Date.parse(t.started_at)) / 1000),
    0,
  );
  return docs > 0 && seconds > 0 ? docs / seconds : undefined;
}

/**
 * How many of the pending tasks (in order) the next job takes: enough docs for `jobTargetSeconds` at the measured
 * rate (the fixed `tasksPerJob` until there is one), never more than a fair share of what is pending over the free
 * slots (so the last tasks of a run spread over every slot instead of queueing behind one job), at least one.
 */
export function batchSize(
  pending: readonly string[],
  freeSlots: number,
  sizing: JobSizing,
  docsOf: (task: string) => number,
): number {
  const cap = Math.min(MAX_TASKS_PER_JOB, pending.length, Math.ceil(pending.length / Math.max(1, freeSlots)));
  if (sizing.docsPerCpuSecond === undefined) return Math.max(1, Math.min(sizing.tasksPerJob, cap));
  const targetDocs = sizing.docsPerCpuSecond * sizing.cpusPerJob * sizing.jobTargetSeconds;
  let n = 1;
  let docs = docsOf(pending[0] as string);
  while (n < cap && docs + docsOf(pending[n] as string) <= targetDocs) docs += docsOf(pending[n++] as string);
  return n;
}

/** After a tick: should the end of one of its jobs start the next tick at once (work waits for a slot, or a result)? */
export function waitsForJobEnd(progress: RunProgress | undefined): boolean {
  return progress !== undefined && !progress.complete && !progress.paused && progress.jobs_in_flight.length > 0;
}

/** Has any of the jobs a tick left in flight ended, or vanished from the backend? */
export function slotFreed(inFlight: readonly string[], backendJobs: readonly JobInfo[]): boolean {
  const status = new Map(backendJobs.map((j) => [j.id, j.status]));
  return inFlight.some((id) => {
    const s = status.get(id);
    return s === undefined || TERMINAL.has(s);
  });
}
