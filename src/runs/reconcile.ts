import { TaskFailure, messageOf } from '../errors/index.js';
import { ensureManifest, type Manifest } from '../manifest/index.js';
import type { Logger } from '../observability/index.js';
import { joinUri, storeFor } from '../storage/index.js';
import { completeRun, listDoneTaskIds } from '../tasks/index.js';
import { TERMINAL, type JobBackend, type JobInfo } from './backends/backend.js';
import { manifestEntrypoint, runTasksEntrypoint } from './entrypoints.js';
import {
  decide,
  jobsToExplain,
  reasonFromLog,
  type DecideInput,
  type Decision,
  type JobEvent,
  type JobReason,
  type Submission,
} from './decide.js';
import type { Lease, LeaseStatus } from './lease.js';
import { computeProgress, refreshDoneCache, type RunProgress } from './progress.js';
import { docsPerCpuSecond } from './slots.js';
import { isManifestJobId, manifestJobId } from './names.js';
import { manifestOptionsOf, type RunFile } from './run-file.js';
import { loadRunState, saveRunState, writeState, type DoneCache, type RunState } from './state.js';
import { STATE_FILES, SUCCESS_KEY } from '../output/index.js';

export interface ReconcileDeps {
  backend: JobBackend;
  lease: Lease;
  logger: Logger;
  now?: () => number;
}

/** What one tick saw and did (for logs, `submit --once` output and metrics). */
export interface TickReport {
  /** false: another submitter holds the lease, so this tick did nothing. */
  acted: boolean;
  lease: LeaseStatus;
  progress?: RunProgress;
  submitted: Submission[];
  stopped: string[];
  deleted: string[];
  events: JobEvent[];
  quarantined: string[];
}

export class LeaseLost extends TaskFailure {
  override name = 'LeaseLost';
}

const LOG_TAIL_CHARS = 20_000;

/**
 * One reconcile tick: take the run's lease, ensure the manifest, read markers (done) and this run's jobs, let
 * `decide` say what ended, what to stop, delete and submit, do it, write the state files and `state/progress.json`,
 * and when every task has a marker verify the run and write `_SUCCESS`. Safe to kill at any point and run again:
 * markers decide what is done, and jobs submitted but not yet recorded are adopted from the backend's list.
 */
export async function reconcileOnce(run: RunFile, deps: ReconcileDeps): Promise<TickReport> {
  const now = deps.now ?? Date.now;
  const logger = deps.logger.child({ run_id: run.run_id });
  const lease = await deps.lease.acquire();
  const report: TickReport = {
    acted: false,
    lease,
    submitted: [],
    stopped: [],
    deleted: [],
    events: [],
    quarantined: [],
  };
  if (!lease.held) {
    logger.info(
      { lease_holder: lease.holder, lease_expires_at: lease.expires_at },
      'another submitter holds the lease; nothing to do this tick',
    );
    return report;
  }
  report.acted = true;
  try {
    if (run.manifest_in_job && !(await storeFor(run.manifest_uri).stat(run.manifest_uri))) {
      await manifestJobTick(run, deps.backend, logger, report);
      return report;
    }
    const manifest = await ensureManifest(run.dumps, run.manifest_uri, manifestOptionsOf(run), logger);
    // Creating a manifest can outlast the lease; never act on a lease someone else has taken since.
    if (!(await deps.lease.renew())) throw new LeaseLost('lost the lease while preparing the manifest');
    const seen = await observe(run, manifest, deps.backend);
    const decision = decide(decideInput(run, manifest, seen, now()));
    logDecision(decision, logger);
    await stopAndDelete(decision, deps.backend, logger, report);
    const submitError = await submitJobs(run, decision, deps, logger, report);
    const newState = {
      jobs: decision.jobs,
      attempts: decision.attempts,
      quarantine: decision.quarantine,
      done: seen.doneCache,
    };
    await saveRunState(run.output_prefix, newState);
    report.events = decision.events;
    report.quarantined = decision.quarantined;
    const completion = await completeIfAllDone(run, manifest, seen.done, logger);
    const progress = computeProgress({
      runId: run.run_id,
      manifest,
      done: seen.done,
      state: newState,
      paused: run.paused,
      complete: completion.complete,
      now: now(),
    });
    if (completion.verify) progress.verify = completion.verify;
    await writeState(run.output_prefix, STATE_FILES.progress, progress);
    report.progress = progress;
    logger.info(
      {
        done: progress.tasks.done,
        total: progress.tasks.total,
        in_flight: progress.tasks.in_flight,
        quarantined: progress.tasks.quarantined,
        submitted: report.submitted.length,
        complete: completion.complete,
      },
      'reconcile tick finished',
    );
    if (submitError) throw new TaskFailure(submitError);
    if (completion.problem) throw new TaskFailure(completion.problem);
    return report;
  } finally {
    await deps.lease
      .release()
      .catch((error: unknown) =>
        logger.warn({ err: messageOf(error) }, 'could not release the lease (it expires on its own)'),
      );
  }
}

/** What a tick reads before deciding: markers, the state files, the backend's jobs and why some of them ended. */
interface Observed {
  done: Set<string>;
  state: RunState;
  doneCache: DoneCache;
  backendJobs: JobInfo[];
  reasons: Map<string, JobReason>;
}

async function observe(run: RunFile, manifest: Manifest, backend: JobBackend): Promise<Observed> {
  const prefix = run.output_prefix;
  const known = new Set(manifest.tasks.map((t) => t.task_id));
  const [state, allDone, backendJobs] = await Promise.all([
    loadRunState(prefix),
    listDoneTaskIds(prefix),
    backend.list(run.run_id),
  ]);
  const done = new Set([...allDone].filter((id) => known.has(id)));
  const doneCache = await refreshDoneCache(prefix, done, state.done);
  const reasons = new Map<string, JobReason>();
  for (const id of jobsToExplain(state.jobs, backendJobs)) {
    reasons.set(id, reasonFromLog(await backend.logsTail(id, LOG_TAIL_CHARS).catch(() => '')));
  }
  return { done, state, doneCache, backendJobs, reasons };
}

function decideInput(run: RunFile, manifest: Manifest, seen: Observed, now: number): DecideInput {
  const measured = docsPerCpuSecond(seen.doneCache);
  return {
    runId: run.run_id,
    taskIds: manifest.tasks.map((t) => t.task_id),
    taskDocs: new Map(manifest.tasks.map((t) => [t.task_id, t.doc_count])),
    done: seen.done,
    jobs: seen.state.jobs,
    attempts: seen.state.attempts,
    quarantine: seen.state.quarantine,
    backendJobs: seen.backendJobs,
    reasons: seen.reasons,
    limits: {
      tasksPerJob: run.tasks_per_job,
      cpusPerJob: run.cpus_per_job,
      jobTargetSeconds: run.job_target_seconds,
      ...(measured === undefined ? {} : { docsPerCpuSecond: measured }),
      maxJobsInFlight: run.max_jobs_in_flight,
      maxAttempts: run.max_attempts,
      jobTimeoutSeconds: run.job_timeout_seconds,
      jobTtlSeconds: run.rayjob_ttl_seconds,
      paused: run.paused,
    },
    now,
  };
}

function logDecision(decision: Decision, logger: Logger): void {
  for (const event of decision.events) {
    const fields = {
      job_id: event.job,
      outcome: event.outcome,
      failed_tasks: event.failed_tasks,
      reason: event.reason,
      duration_seconds: event.duration_seconds,
    };
    if (event.failed_tasks.length > 0) logger.warn(fields, 'job ended with unfinished tasks; they go back to pending');
    else logger.info(fields, `job ${event.outcome}`);
  }
  // One line per task, so the log sink answers "why did task X fail" (the driver's own lines stay on the Ray node).
  for (const f of decision.failures) {
    const fields = { job_id: f.job, task_id: f.task, err: f.reason, kind: f.kind, failures: f.failures };
    logger.warn(
      fields,
      f.kind === 'task' ? 'task attempt failed' : 'task attempt lost to an outage; retried without counting',
    );
  }
  for (const task of decision.quarantined) {
    const q = decision.quarantine.tasks[task];
    logger.error(
      { task_id: task, job_id: q?.last_job, failures: q?.failures, err: q?.last_error },
      'task quarantined: it waits for `tokenize-wiki requeue`',
    );
  }
}

async function stopAndDelete(
  decision: Decision,
  backend: JobBackend,
  logger: Logger,
  report: TickReport,
): Promise<void> {
  for (const { id, reason } of decision.stop) {
    await backend.stop(id).then(
      () => report.stopped.push(id),
      (error: unknown) => logger.warn({ job_id: id, err: messageOf(error) }, 'could not stop job'),
    );
    logger.warn({ job_id: id, reason }, 'stopping job');
  }
  for (const id of decision.delete) {
    await backend.delete(id).then(
      () => report.deleted.push(id),
      (error: unknown) => logger.warn({ job_id: id, err: messageOf(error) }, 'could not delete finished job'),
    );
  }
}

/** Submits the decided jobs; on the first failure forgets it and the later ones (their tasks stay pending). */
async function submitJobs(
  run: RunFile,
  decision: Decision,
  deps: ReconcileDeps,
  logger: Logger,
  report: TickReport,
): Promise<string | undefined> {
  if (decision.submit.length > 0 && !(await deps.lease.renew()))
    throw new LeaseLost('lost the lease before submitting');
  for (const [i, submission] of decision.submit.entries()) {
    const entrypoint = runTasksEntrypoint({
      manifestUri: run.manifest_uri,
      outputPrefix: run.output_prefix,
      tasks: submission.tasks,
      cpus: run.cpus_per_job,
      runId: run.run_id,
    });
    try {
      await deps.backend.submit({ ...submission, runId: run.run_id, entrypoint, cpus: run.cpus_per_job });
      report.submitted.push(submission);
      logger.info({ job_id: submission.id, tasks: submission.tasks }, 'job submitted');
    } catch (error) {
      const dropped = new Set(decision.submit.slice(i).map((s) => s.id));
      decision.jobs.jobs = decision.jobs.jobs.filter((j) => !dropped.has(j.id));
      logger.error({ job_id: submission.id, err: messageOf(error) }, 'submit failed');
      return `submit ${submission.id}: ${messageOf(error)}`;
    }
  }
  return undefined;
}

interface Completion {
  complete: boolean;
  verify?: RunProgress['verify'];
  /** Why verification failed, when it ran and did. */
  problem?: string;
}

/** Once every task has a marker: verify the run and write `_SUCCESS` (unless an earlier tick already did). */
async function completeIfAllDone(
  run: RunFile,
  manifest: Manifest,
  done: ReadonlySet<string>,
  logger: Logger,
): Promise<Completion> {
  if (done.size !== manifest.tasks.length) return { complete: false };
  const successUri = joinUri(run.output_prefix, SUCCESS_KEY);
  if ((await storeFor(successUri).stat(successUri)) !== undefined) return { complete: true };
  const result = await completeRun(manifest, run.output_prefix, { deep: false });
  const verify = { ok: result.ok, problems: result.problems.slice(0, 20), missing: result.missing.length };
  if (!result.ok)
    return { complete: false, verify, problem: `verify failed: ${result.problems.slice(0, 3).join('; ')}` };
  logger.info(
    { docs: result.totals.docs, tokens: result.totals.tokens },
    'run verified and complete: _SUCCESS written',
  );
  return { complete: true, verify };
}

/**
 * `manifest_in_job` and no manifest yet: make it in a job on the cluster and come back on a later tick. A failed
 * manifest job is retried up to `max_attempts` (counted from the manifest jobs the backend still lists).
 */
async function manifestJobTick(run: RunFile, backend: JobBackend, logger: Logger, report: TickReport): Promise<void> {
  const jobs = (await backend.list(run.run_id)).filter((j) => isManifestJobId(j.id));
  const active = jobs.find((j) => !TERMINAL.has(j.status));
  if (active) {
    logger.info({ job_id: active.id, status: active.status }, 'waiting for the manifest job');
    return;
  }
  // Paused means nothing new runs, the manifest job included.
  if (run.paused) {
    logger.info('run paused: no manifest job submitted');
    return;
  }
  const failed = jobs.filter((j) => j.status !== 'SUCCEEDED');
  if (failed.length >= run.max_attempts) {
    const last = failed.at(-1);
    const tail = last ? reasonFromLog(await backend.logsTail(last.id, LOG_TAIL_CHARS).catch(() => '')).tail : '';
    throw new TaskFailure(
      `the manifest job failed ${failed.length} times (last: ${last?.id} ${last?.message?.split('\n')[0] ?? ''} ${tail}); fix the cause, then delete those jobs or raise max_attempts`,
    );
  }
  const id = manifestJobId(run.run_id, jobs.length + 1);
  await backend.submit({ id, runId: run.run_id, batch: 0, tasks: [], entrypoint: manifestEntrypoint(run), cpus: 1 });
  report.submitted.push({ id, batch: 0, tasks: [] });
  logger.info({ job_id: id }, 'manifest job submitted');
}
