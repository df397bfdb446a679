import { setTimeout as sleep } from 'node:timers/promises';
import { InputError, TaskFailure, messageOf } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import { reconcileOnce, type ReconcileDeps, type TickReport } from './reconcile.js';
import { loadRunFile, runFilePaths, type RunFile } from './run-file.js';
import { slotFreed, waitsForJobEnd } from './slots.js';
import { classifyFailure, DEFAULT_STORAGE_RETRY, storageRetryDelay } from '../tasks/index.js';

/** Backend and lease for a run (asked again on every tick: the run file is re-read, so a change takes effect). */
export type DepsFor = (run: RunFile) => Omit<ReconcileDeps, 'logger'>;

/** One run file's part of a round: its report, or the error that stopped it (the other run files go on). */
export interface RunOutcome {
  file: string;
  run?: RunFile;
  report?: TickReport;
  error?: unknown;
}

export interface SubmitterOptions {
  /** Run files, or folders of them (the mounted runs ConfigMap). */
  paths: readonly string[];
  deps: DepsFor;
  logger: Logger;
  /** Called after each run file's tick (metrics). */
  onTick?: (outcome: RunOutcome, seconds: number) => void;
}

/** Reconcile one run file; its failure is logged with the file's name and returned, never thrown. */
export async function reconcileFile(file: string, options: SubmitterOptions): Promise<RunOutcome> {
  const started = Date.now();
  const outcome: RunOutcome = { file };
  try {
    outcome.run = await loadRunFile(file);
    outcome.report = await reconcileOnce(outcome.run, {
      ...options.deps(outcome.run),
      logger: options.logger.child({ run_file: file }),
    });
  } catch (error) {
    outcome.error = error;
    options.logger.error(
      { run_file: file, run_id: outcome.run?.run_id, err: messageOf(error) },
      'reconcile of this run file failed; the other runs go on',
    );
  }
  options.onTick?.(outcome, (Date.now() - started) / 1000);
  return outcome;
}

/** One round: every run file in turn. */
export async function reconcileAll(options: SubmitterOptions): Promise<RunOutcome[]> {
  const outcomes: RunOutcome[] = [];
  for (const file of await runFilePaths(options.paths)) outcomes.push(await reconcileFile(file, options));
  return outcomes;
}

/**
 * Wait until a job that one of `outcomes` left in flight ends (polling the backends, which is far cheaper than a
 * tick), or until `deadline`. Returns the run files with a freed slot; [] at the deadline or when nothing waits.
 */
export async function waitForJobEnd(
  outcomes: readonly RunOutcome[],
  options: SubmitterOptions & { deadline: number; pollMs: number; signal?: AbortSignal },
): Promise<string[]> {
  const watched = outcomes.filter((o) => o.run && waitsForJobEnd(o.report?.progress));
  while (watched.length > 0 && Date.now() < options.deadline && !options.signal?.aborted) {
    await sleep(Math.min(options.pollMs, Math.max(0, options.deadline - Date.now())), undefined, {
      signal: options.signal,
    }).catch(() => undefined);
    const freed: string[] = [];
    for (const o of watched) {
      const run = o.run as RunFile;
      const inFlight = (o.report?.progress?.jobs_in_flight ?? []).map((j) => j.id);
      const jobs = await options
        .deps(run)
        .backend.list(run.run_id)
        .catch((error: unknown) => {
          options.logger.warn(
            { run_id: run.run_id, err: messageOf(error) },
            'could not list jobs while waiting for a free slot',
          );
          return undefined;
        });
      if (jobs && slotFreed(inFlight, jobs)) freed.push(o.file);
    }
    if (freed.length > 0) return freed;
  }
  return [];
}

/** A run file whose tick found the object store unavailable: how often so far, since when, and when to tick again. */
export interface OutageRetry {
  attempt: number;
  since: number;
  at: number;
}

/**
 * When to tick a run file again after `outcome`, within the tick's `deadline`: with the tasks' backoff while its
 * error says the object store is unavailable (the tick could not read or release its lease, markers or state), so
 * that an outage of a minute is ridden out by the same submitter, which keeps the run's lease; undefined otherwise.
 */
export function outageRetry(
  outcome: RunOutcome,
  previous: OutageRetry | undefined,
  now: number,
  deadline: number,
): OutageRetry | undefined {
  if (outcome.error === undefined || classifyFailure(messageOf(outcome.error)) !== 'storage-unavailable')
    return undefined;
  const attempt = (previous?.attempt ?? 0) + 1;
  const since = previous?.since ?? now;
  const delay = storageRetryDelay(attempt, now - since, DEFAULT_STORAGE_RETRY);
  return delay === undefined || now + delay >= deadline ? undefined : { attempt, since, at: now + delay };
}

/**
 * `submit --once`: a round over every run file, then, for up to `budgetMs`, a new tick of a run as soon as one of its
 * jobs ends, so its slots stay full between CronJob ticks, or once the object store it could not reach may be back
 * (`outageRetry`). The budget must leave room for a last tick before the CronJob's deadline. Returns the last outcome
 * of every run file; `failureOf` says whether that is a failure.
 */
export async function submitOnce(
  options: SubmitterOptions & { budgetMs: number; pollMs: number },
): Promise<RunOutcome[]> {
  const deadline = Date.now() + options.budgetMs;
  const latest = new Map<string, RunOutcome>();
  const outages = new Map<string, OutageRetry>();
  const record = (o: RunOutcome): void => {
    latest.set(o.file, o);
    const retry = outageRetry(o, outages.get(o.file), Date.now(), deadline);
    if (retry) outages.set(o.file, retry);
    else outages.delete(o.file);
  };
  for (const o of await reconcileAll(options)) record(o);
  for (;;) {
    const retryAt = Math.min(deadline, ...[...outages.values()].map((r) => r.at));
    const freed = await waitForJobEnd([...latest.values()], { ...options, deadline: retryAt });
    // Nothing in flight to watch: wait for the next retry itself.
    if (freed.length === 0 && outages.size > 0) await sleep(Math.max(0, retryAt - Date.now()));
    const due = [...outages].filter(([, r]) => r.at <= Date.now()).map(([file]) => file);
    const files = [...new Set([...freed, ...due])];
    if (files.length === 0) break;
    for (const file of files) record(await reconcileFile(file, options));
  }
  return [...latest.values()];
}

/** The error of a round whose run files failed, naming each file (exit code 2 if one was bad input, else 1). */
export function failureOf(outcomes: readonly RunOutcome[]): Error | undefined {
  const failed = outcomes.filter((o) => o.error !== undefined);
  if (failed.length === 0) return undefined;
  const message = failed
    .map((o) => {
      const text = messageOf(o.error);
      return text.startsWith(o.file) ? text : `${o.file}: ${text}`;
    })
    .join('; ');
  return failed.some((o) => o.error instanceof InputError) ? new InputError(message) : new TaskFailure(message);
}
