import { TaskFailure, messageOf } from '../errors/errors.js';
import { ensureManifest } from '../manifest/index.js';
import type { Logger } from '../observability/logger.js';
import { joinUri, storeFor } from '../storage/index.js';
import { completeRun } from '../tasks/complete.js';
import { listDoneTaskIds } from '../tasks/marker.js';
import { TERMINAL, type JobBackend } from './backends/backend.js';
import { manifestEntrypoint, runTasksEntrypoint } from './entrypoints.js';
import { decide, jobsToExplain, reasonFromLog, type JobEvent, type JobReason, type Submission } from './decide.js';
import type { Lease, LeaseStatus } from './lease.js';
import { computeProgress, refreshDoneCache, type RunProgress } from './progress.js';
import { docsPerCpuSecond } from './slots.js';
import { isManifestJobId, manifestJobId } from './names.js';
import { manifestOptionsOf, type RunFile } from './run-file.js';
import { loadRunState, saveRunState, writeState } from './state.js';
import { STATE_FILES, SUCCESS_KEY } from '../output/layout.js';

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
  const report: TickReport = { acted: false, lease, submitted: [], stopped: [], deleted: [], events: [], quarantined: [] };
  if (!lease.held) {
    logger.info({ lease_holder: lease.holder, lease_expires_at: lease.expires_at }, 'another submitter holds the lease; nothing to do this tick');
    return report;
  }
  report.acted = true;
  try {
    const prefix = run.output_prefix;
    if (run.manifest_in_job && !(await storeFor(run.manifest_uri).stat(run.manifest_uri))) {
      await manifestJobTick(run, deps.backend, logger, report);
      return report;
    }
    const manifest = await ensureManifest(run.dumps, run.manifest_uri, manifestOptionsOf(run), logger);
    // Creating a manifest can outlast the lease; never act on a lease someone else has taken since.
    if (!(await deps.lease.renew())) throw new LeaseLost('lost the lease while preparing the manifest');
    const taskIds = manifest.tasks.map((t) => t.task_id);
    const known = new Set(taskIds);
    const [state, allDone, backendJobs] = await Promise.all([loadRunState(prefix), listDoneTaskIds(prefix), deps.backend.list(run.run_id)]);
    const done = new Set([...allDone].filter((id) => known.has(id)));
    const doneCache = await refreshDoneCache(prefix, done, state.done);
    const measured = docsPerCpuSecond(doneCache);

    const reasons = new Map<string, JobReason>();
    for (const id of jobsToExplain(state.jobs, backendJobs)) {
      reasons.set(id, reasonFromLog(await deps.backend.logsTail(id, LOG_TAIL_CHARS).catch(() => '')));
    }
    const decision = decide({
      runId: run.run_id,
      taskIds,
      taskDocs: new Map(manifest.tasks.map((t) => [t.task_id, t.doc_count])),
      done,
      jobs: state.jobs,
      attempts: state.attempts,
      quarantine: state.quarantine,
      backendJobs,
      reasons,
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
      now: now(),
    });
    for (const event of decision.events) {
      const fields = { job_id: event.job, outcome: event.outcome, failed_tasks: event.failed_tasks, reason: event.reason, duration_seconds: event.duration_seconds };
      if (event.failed_tasks.length > 0) logger.warn(fields, 'job ended with unfinished tasks; they go back to pending');
      else logger.info(fields, `job ${event.outcome}`);
    }
    // One line per task, so the log sink answers "why did task X fail" (the driver's own lines stay on the Ray node).
    for (const f of decision.failures) {
      const fields = { job_id: f.job, task_id: f.task, err: f.reason, kind: f.kind, failures: f.failures };
      logger.warn(fields, f.kind === 'task' ? 'task attempt failed' : 'task attempt lost to an outage; retried without counting');
    }
    for (const task of decision.quarantined) {
      const q = decision.quarantine.tasks[task];
      logger.error({ task_id: task, job_id: q?.last_job, failures: q?.failures, err: q?.last_error }, 'task quarantined: it waits for `tokenize-wiki requeue`');
    }

    for (const { id, reason } of decision.stop) {
      await deps.backend.stop(id).then(
        () => report.stopped.push(id),
        (error: unknown) => logger.warn({ job_id: id, err: messageOf(error) }, 'could not stop job'),
      );
      logger.warn({ job_id: id, reason }, 'stopping job');
    }
    for (const id of decision.delete) {
      await deps.backend.delete(id).then(
        () => report.deleted.push(id),
        (error: unknown) => logger.warn({ job_id: id, err: messageOf(error) }, 'could not delete finished job'),
      );
    }

    let submitError: string | undefined;
    if (decision.submit.length > 0 && !(await deps.lease.renew())) throw new LeaseLost('lost the lease before submitting');
    for (const [i, submission] of decision.submit.entries()) {
      const entrypoint = runTasksEntrypoint({ manifestUri: run.manifest_uri, outputPrefix: prefix, tasks: submission.tasks, cpus: run.cpus_per_job, runId: run.run_id });
      try {
        await deps.backend.submit({ ...submission, runId: run.run_id, entrypoint, cpus: run.cpus_per_job });
        report.submitted.push(submission);
        logger.info({ job_id: submission.id, tasks: submission.tasks }, 'job submitted');
      } catch (error) {
        // Forget this and the later batches: their tasks stay pending for the next tick.
        const dropped = new Set(decision.submit.slice(i).map((s) => s.id));
        decision.jobs.jobs = decision.jobs.jobs.filter((j) => !dropped.has(j.id));
        submitError = `submit ${submission.id}: ${messageOf(error)}`;
        logger.error({ job_id: submission.id, err: messageOf(error) }, 'submit failed');
        break;
      }
    }

    const newState = { jobs: decision.jobs, attempts: decision.attempts, quarantine: decision.quarantine, done: doneCache };
    await saveRunState(prefix, newState);
    report.events = decision.events;
    report.quarantined = decision.quarantined;

    const successUri = joinUri(prefix, SUCCESS_KEY);
    let complete = done.size === taskIds.length && (await storeFor(successUri).stat(successUri)) !== undefined;
    let verifyProblem: string | undefined;
    let verify: RunProgress['verify'];
    if (done.size === taskIds.length && !complete) {
      const result = await completeRun(manifest, prefix, { deep: false });
      verify = { ok: result.ok, problems: result.problems.slice(0, 20), missing: result.missing.length };
      complete = result.ok;
      if (result.ok) logger.info({ docs: result.totals.docs, tokens: result.totals.tokens }, 'run verified and complete: _SUCCESS written');
      else verifyProblem = `verify failed: ${result.problems.slice(0, 3).join('; ')}`;
    }
    const progress = computeProgress({ runId: run.run_id, manifest, done, state: newState, paused: run.paused, complete, now: now() });
    if (verify) progress.verify = verify;
    await writeState(prefix, STATE_FILES.progress, progress);
    report.progress = progress;
    logger.info(
      { done: progress.tasks.done, total: progress.tasks.total, in_flight: progress.tasks.in_flight, quarantined: progress.tasks.quarantined, submitted: report.submitted.length, complete },
      'reconcile tick finished',
    );
    if (submitError) throw new TaskFailure(submitError);
    if (verifyProblem) throw new TaskFailure(verifyProblem);
    return report;
  } finally {
    await deps.lease.release().catch((error: unknown) => logger.warn({ err: messageOf(error) }, 'could not release the lease (it expires on its own)'));
  }
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
  const failed = jobs.filter((j) => j.status !== 'SUCCEEDED');
  if (failed.length >= run.max_attempts) {
    const last = failed.at(-1);
    const tail = last ? reasonFromLog(await backend.logsTail(last.id, LOG_TAIL_CHARS).catch(() => '')).tail : '';
    throw new TaskFailure(`the manifest job failed ${failed.length} times (last: ${last?.id} ${last?.message?.split('\n')[0] ?? ''} ${tail}); fix the cause, then delete those jobs or raise max_attempts`);
  }
  const id = manifestJobId(run.run_id, jobs.length + 1);
  await backend.submit({ id, runId: run.run_id, batch: 0, tasks: [], entrypoint: manifestEntrypoint(run), cpus: 1 });
  report.submitted.push({ id, batch: 0, tasks: [] });
  logger.info({ job_id: id }, 'manifest job submitted');
}
