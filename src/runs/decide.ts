import { classifyFailure, NODE_DIED, parseFailedTask, type FailureKind } from '../tasks/index.js';
import { TERMINAL, type JobInfo } from './backends/backend.js';
import { batchOf, jobId } from './names.js';
import { batchSize, type JobSizing } from './slots.js';
import type { AttemptsState, Failure, JobsState, QuarantineState, RecordedJob } from './state.js';

export interface Limits extends JobSizing {
  maxJobsInFlight: number;
  maxAttempts: number;
  jobTimeoutSeconds: number;
  jobTtlSeconds: number;
  paused: boolean;
}

/** Why a failed job failed, from its driver log: per-task errors run-tasks printed, and the log's tail. */
export interface JobReason {
  tasks: Record<string, string>;
  tail: string;
}

export interface DecideInput {
  runId: string;
  /** Every task of the manifest, in manifest order (the order pending tasks are submitted in). */
  taskIds: readonly string[];
  /** Docs per task (the manifest's doc_count), for sizing jobs by measured throughput. */
  taskDocs: ReadonlyMap<string, number>;
  /** Tasks with a marker. */
  done: ReadonlySet<string>;
  jobs: JobsState;
  attempts: AttemptsState;
  quarantine: QuarantineState;
  /** This run's jobs as the backend lists them now. */
  backendJobs: readonly JobInfo[];
  reasons: ReadonlyMap<string, JobReason>;
  limits: Limits;
  now: number;
}

export type JobOutcome = 'succeeded' | 'failed' | 'stopped' | 'vanished' | 'timed-out' | 'adopted';

export interface JobEvent {
  job: string;
  outcome: JobOutcome;
  /** Tasks of the job without a marker when it ended: they go back to pending (or quarantine). */
  failed_tasks: string[];
  reason?: string;
  duration_seconds?: number;
}

export interface Submission {
  id: string;
  batch: number;
  tasks: string[];
}

/** One unfinished task of an ended job: why, and whether it counts towards quarantine. */
export interface TaskFailureRecord {
  task: string;
  job: string;
  reason: string;
  kind: FailureKind;
  /** Failures of the task itself so far, this one included when it counts. */
  failures: number;
}

export interface Decision {
  jobs: JobsState;
  attempts: AttemptsState;
  quarantine: QuarantineState;
  submit: Submission[];
  stop: Array<{ id: string; reason: string }>;
  delete: string[];
  events: JobEvent[];
  /** Every unfinished task of the jobs that ended, with its reason (the submitter logs one line per task). */
  failures: TaskFailureRecord[];
  /** Newly quarantined tasks. */
  quarantined: string[];
  /** Tasks neither done, in flight (after this tick's submissions) nor quarantined. */
  pending: string[];
}

/** Finished jobs whose reason the decision wants: failed or stopped by someone else, still listed by the backend. */
export function jobsToExplain(jobs: JobsState, backendJobs: readonly JobInfo[]): string[] {
  const byId = new Map(backendJobs.map((j) => [j.id, j]));
  return jobs.jobs
    .filter((j) => j.stop_reason === undefined && ['FAILED', 'STOPPED'].includes(byId.get(j.id)?.status ?? ''))
    .map((j) => j.id);
}

/** Per-task errors in a run-tasks log: its summary lines (`failed <task>: <error>`) and pino's `task failed` lines. */
export function reasonFromLog(log: string): JobReason {
  const tasks: Record<string, string> = {};
  for (const line of log.split('\n')) {
    const failed = parseFailedTask(line);
    // The summary line wins over the JSON log line of the same task.
    if (failed && (!line.startsWith('{') || tasks[failed.taskId] === undefined)) tasks[failed.taskId] = failed.error;
  }
  // The last lines that say something: not our JSON progress lines, not Ray's own start-up chatter.
  const lines = log
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const telling = lines.filter((l) => !l.startsWith('{') && !/^Running entrypoint for job|\bINFO\b/.test(l));
  const tail = (telling.length > 0 ? telling : lines)
    .slice(-2)
    .map((l) => (l.length > 200 ? `${l.slice(0, 199)}…` : l))
    .join(' | ');
  return { tasks, tail };
}

/**
 * A backend message in one line: its first (Ray appends the whole log tail to a failed job's message), plus the line
 * saying the job's Ray node died, when there is one (a worker pod or node lost: the job's fault, not its tasks').
 */
export function jobMessage(message: string | undefined): string | undefined {
  const lines = message?.split('\n') ?? [];
  const first = lines[0]?.replace(/,? last available logs.*$/, '').trim();
  const nodeDied = lines.slice(1).find((l) => NODE_DIED.test(l));
  return [first, nodeDied?.trim()].filter(Boolean).join(' ') || undefined;
}

const laterOf = (a: string, b: string | undefined): string =>
  b !== undefined && Date.parse(b) > Date.parse(a) ? b : a;

const seconds = (from: string | undefined, to: string | undefined): number | undefined => {
  if (!from || !to) return undefined;
  const s = (Date.parse(to) - Date.parse(from)) / 1000;
  return Number.isFinite(s) && s >= 0 ? s : undefined;
};

/**
 * One reconcile decision, with no I/O: from markers, remembered jobs and attempts, and the backend's job list, say
 * which jobs ended and how, which tasks failed (attempt + 1, quarantine after `maxAttempts` failures of the task
 * itself; outages are retried without counting), which jobs to stop (timed out) or delete (finished longer than the
 * TTL ago), and which batches to submit, each sized from the measured throughput.
 */
export function decide(input: DecideInput): Decision {
  const nowIso = new Date(input.now).toISOString();
  const { kept, events, stop, failures } = reviewJobs(input, nowIso);
  const deletions = expiredJobs(input.backendJobs, kept, input.limits, nowIso);
  const { attempts, quarantine, quarantined, records } = countFailures(input, failures, nowIso);
  const { submit, nextBatch, pending } = planSubmissions(input, kept, attempts, quarantine, nowIso);
  return {
    jobs: { next_batch: nextBatch, jobs: kept },
    attempts,
    quarantine,
    submit,
    stop,
    delete: deletions,
    events,
    failures: records,
    quarantined,
    pending,
  };
}

interface UnfinishedTask {
  task: string;
  job: string;
  reason: string;
}

/**
 * Every recorded job against the backend's list: how the ended ones ended (and which of their tasks did not finish),
 * which to stop (timed out, or asked before), which to keep; plus running jobs the submitter never recorded.
 */
function reviewJobs(
  input: DecideInput,
  nowIso: string,
): { kept: RecordedJob[]; events: JobEvent[]; stop: Decision['stop']; failures: UnfinishedTask[] } {
  const { done, limits } = input;
  const byId = new Map(input.backendJobs.map((j) => [j.id, j]));
  const kept: RecordedJob[] = [];
  const events: JobEvent[] = [];
  const stop: Decision['stop'] = [];
  const failures: UnfinishedTask[] = [];

  const end = (job: RecordedJob, outcome: JobOutcome, reasonFor: (task: string) => string, info?: JobInfo): void => {
    const unfinished = job.tasks.filter((t) => !done.has(t));
    for (const task of unfinished) failures.push({ task, job: job.id, reason: reasonFor(task) });
    const duration = seconds(info?.started_at ?? info?.submitted_at ?? job.submitted_at, info?.ended_at);
    events.push({
      job: job.id,
      outcome,
      failed_tasks: unfinished,
      ...(unfinished.length > 0 ? { reason: reasonFor(unfinished[0] as string) } : {}),
      ...(duration === undefined ? {} : { duration_seconds: duration }),
    });
  };

  for (const job of input.jobs.jobs) {
    const info = byId.get(job.id);
    if (!info) {
      const reason = job.stop_reason ?? 'job vanished from the backend (Ray head restarted, or its record was deleted)';
      end(job, job.stop_reason ? 'timed-out' : 'vanished', () => reason);
      continue;
    }
    if (TERMINAL.has(info.status)) {
      if (job.stop_reason) end(job, 'timed-out', () => job.stop_reason as string, info);
      else if (info.status === 'SUCCEEDED')
        end(job, 'succeeded', () => `job ${job.id} succeeded but wrote no marker for the task`, info);
      else {
        const why = input.reasons.get(job.id);
        const general = [jobMessage(info.message), why?.tail].filter(Boolean).join(' | ') || 'no message';
        end(
          job,
          info.status === 'STOPPED' ? 'stopped' : 'failed',
          (task) => `job ${job.id} ${info.status}: ${why?.tasks[task] ?? general}`,
          info,
        );
      }
      continue;
    }
    if (job.stop_requested_at) {
      // Asked before and still running: ask again (stop is idempotent), keep its tasks out of new batches.
      stop.push({ id: job.id, reason: job.stop_reason ?? 'stop requested' });
      kept.push(job);
      continue;
    }
    // From the latest start the backend reports: KubeRay (HTTPMode) resubmits a RayJob's Ray job under the same id on
    // a new head when the old head was lost, and that rerun deserves its whole timeout.
    const age = seconds(laterOf(job.submitted_at, info.started_at), nowIso) ?? 0;
    if (age > limits.jobTimeoutSeconds) {
      const reason = `job ${job.id} timed out: ${info.status} for more than job_timeout_seconds=${limits.jobTimeoutSeconds}`;
      stop.push({ id: job.id, reason });
      kept.push({ ...job, stop_requested_at: nowIso, stop_reason: reason });
      continue;
    }
    kept.push(job);
  }

  // Jobs this run's submitter started but never recorded (it died between submit and writing state): adopt them.
  const recorded = new Set(input.jobs.jobs.map((j) => j.id));
  for (const info of input.backendJobs) {
    if (recorded.has(info.id) || TERMINAL.has(info.status) || info.tasks.length === 0) continue;
    kept.push({
      id: info.id,
      batch: batchOf(info.id) ?? 0,
      tasks: info.tasks,
      submitted_at: info.submitted_at ?? nowIso,
    });
    events.push({ job: info.id, outcome: 'adopted', failed_tasks: [] });
  }
  return { kept, events, stop, failures };
}

/** Finished jobs nobody needs any more: their records (and RayJobs) go after the TTL; logs stay until then. */
function expiredJobs(
  backendJobs: readonly JobInfo[],
  kept: readonly RecordedJob[],
  limits: Limits,
  nowIso: string,
): string[] {
  const keptIds = new Set(kept.map((j) => j.id));
  return backendJobs
    .filter((j) => TERMINAL.has(j.status) && !keptIds.has(j.id))
    .filter((j) => (seconds(j.ended_at, nowIso) ?? -1) > limits.jobTtlSeconds)
    .map((j) => j.id);
}

/** Each unfinished task's attempt: a failure of its own counts towards quarantine, an outage only is remembered. */
function countFailures(
  input: DecideInput,
  failures: readonly UnfinishedTask[],
  nowIso: string,
): { attempts: AttemptsState; quarantine: QuarantineState; quarantined: string[]; records: TaskFailureRecord[] } {
  const attempts: AttemptsState = { tasks: { ...input.attempts.tasks } };
  const quarantine: QuarantineState = { tasks: { ...input.quarantine.tasks } };
  const quarantined: string[] = [];
  const records: TaskFailureRecord[] = [];
  for (const { task, job, reason } of failures) {
    const kind = classifyFailure(reason);
    const before = attempts.tasks[task];
    const counted = kind === 'task';
    const failure: Failure = {
      failures: (before?.failures ?? 0) + (counted ? 1 : 0),
      ...(counted && before?.outages === undefined ? {} : { outages: (before?.outages ?? 0) + (counted ? 0 : 1) }),
      last_error: reason,
      last_job: job,
      last_failed_at: nowIso,
    };
    attempts.tasks[task] = failure;
    records.push({ task, job, reason, kind, failures: failure.failures });
    if (counted && failure.failures >= input.limits.maxAttempts && !quarantine.tasks[task]) {
      quarantine.tasks[task] = { ...failure, quarantined_at: nowIso };
      quarantined.push(task);
    }
  }
  // A quarantined task that got a marker anyway (someone ran it by hand) is no longer waiting for a person.
  for (const task of Object.keys(quarantine.tasks)) if (input.done.has(task)) delete quarantine.tasks[task];
  return { attempts, quarantine, quarantined, records };
}

/** Pending tasks in batches, each sized from the measured throughput, while there is room for more jobs in flight. */
function planSubmissions(
  input: DecideInput,
  kept: RecordedJob[],
  attempts: AttemptsState,
  quarantine: QuarantineState,
  nowIso: string,
): { submit: Submission[]; nextBatch: number; pending: string[] } {
  const { done, limits } = input;
  const inFlight = new Set(kept.flatMap((j) => j.tasks));
  const pending = input.taskIds.filter((t) => !done.has(t) && !inFlight.has(t) && !quarantine.tasks[t]);
  let nextBatch = Math.max(
    input.jobs.next_batch,
    ...kept.map((j) => j.batch + 1),
    ...input.backendJobs.map((j) => (batchOf(j.id) ?? -1) + 1),
  );
  const submit: Submission[] = [];
  if (!limits.paused) {
    while (kept.length < limits.maxJobsInFlight && pending.length > 0) {
      const size = batchSize(pending, limits.maxJobsInFlight - kept.length, limits, (t) => input.taskDocs.get(t) ?? 1);
      const tasks = pending.splice(0, size);
      const attempt =
        Math.max(...tasks.map((t) => (attempts.tasks[t]?.failures ?? 0) + (attempts.tasks[t]?.outages ?? 0))) + 1;
      const submission = { id: jobId(input.runId, nextBatch, attempt), batch: nextBatch, tasks };
      submit.push(submission);
      kept.push({ ...submission, submitted_at: nowIso });
      nextBatch++;
    }
  }
  return { submit, nextBatch, pending };
}
