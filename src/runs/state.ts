import { z } from 'zod';
import { parseJson, parseWith } from '../errors/index.js';
import { STATE_FILES } from '../output/index.js';
import { joinUri, readText, storeFor } from '../storage/index.js';

/**
 * What the submitter remembers between ticks, under `<output_prefix>/state/`. Markers stay the source of truth for
 * what is done; these files only remember what markers cannot: jobs in flight, failed attempts, quarantine.
 */
const count = z.number().int().nonnegative();

export const RecordedJobSchema = z.object({
  id: z.string(),
  batch: count,
  tasks: z.array(z.string()).min(1),
  submitted_at: z.string(),
  /** Set when the submitter asked the job to stop (timeout); its tasks count as failed once it is gone. */
  stop_requested_at: z.string().optional(),
  stop_reason: z.string().optional(),
});
export type RecordedJob = z.infer<typeof RecordedJobSchema>;

export const JobsStateSchema = z.object({
  /** Batch numbers are never reused, so job ids stay unique within a run. */
  next_batch: count,
  jobs: z.array(RecordedJobSchema),
});
export type JobsState = z.infer<typeof JobsStateSchema>;

export const FailureSchema = z.object({
  /** Failures of the task itself: these count towards quarantine. */
  failures: count,
  /**
   * Attempts that failed through no fault of the task (object store unavailable, job lost with the Ray head): retried,
   * never counted towards quarantine.
   */
  outages: count.optional(),
  last_error: z.string(),
  last_job: z.string(),
  last_failed_at: z.string(),
});
export type Failure = z.infer<typeof FailureSchema>;

export const AttemptsStateSchema = z.object({ tasks: z.record(z.string(), FailureSchema) });
export type AttemptsState = z.infer<typeof AttemptsStateSchema>;

export const QuarantineStateSchema = z.object({
  tasks: z.record(z.string(), FailureSchema.extend({ quarantined_at: z.string() })),
});
export type QuarantineState = z.infer<typeof QuarantineStateSchema>;

/** Per-task figures copied from markers (immutable once written), so a tick reads only the new markers. */
export const DoneCacheSchema = z.object({
  tasks: z.record(
    z.string(),
    z.object({ docs: count, tokens: count, text_bytes: count, started_at: z.string(), finished_at: z.string() }),
  ),
});
export type DoneCache = z.infer<typeof DoneCacheSchema>;

export interface RunState {
  jobs: JobsState;
  attempts: AttemptsState;
  quarantine: QuarantineState;
  done: DoneCache;
}

async function readState<S extends z.ZodType>(
  outputPrefix: string,
  key: string,
  schema: S,
  empty: z.output<S>,
): Promise<z.output<S>> {
  const uri = joinUri(outputPrefix, key);
  if (!(await storeFor(uri).stat(uri))) return empty;
  return parseWith(schema, parseJson(await readText(uri), uri), uri);
}

export async function writeState(outputPrefix: string, key: string, value: unknown): Promise<void> {
  const uri = joinUri(outputPrefix, key);
  await storeFor(uri).write(uri, JSON.stringify(value, null, 1) + '\n');
}

export async function loadRunState(outputPrefix: string): Promise<RunState> {
  const [jobs, attempts, quarantine, done] = await Promise.all([
    readState(outputPrefix, STATE_FILES.jobs, JobsStateSchema, { next_batch: 0, jobs: [] }),
    readState(outputPrefix, STATE_FILES.attempts, AttemptsStateSchema, { tasks: {} }),
    readState(outputPrefix, STATE_FILES.quarantine, QuarantineStateSchema, { tasks: {} }),
    readState(outputPrefix, STATE_FILES.done, DoneCacheSchema, { tasks: {} }),
  ]);
  return { jobs, attempts, quarantine, done };
}

export async function saveRunState(outputPrefix: string, state: RunState): Promise<void> {
  await Promise.all([
    writeState(outputPrefix, STATE_FILES.jobs, state.jobs),
    writeState(outputPrefix, STATE_FILES.attempts, state.attempts),
    writeState(outputPrefix, STATE_FILES.quarantine, state.quarantine),
    writeState(outputPrefix, STATE_FILES.done, state.done),
  ]);
}
