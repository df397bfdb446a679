import { setTimeout as sleep } from 'node:timers/promises';
import { InputError, TaskFailure, messageOf } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import { reconcileOnce, type ReconcileDeps, type TickReport } from './reconcile.js';
import { loadRunFile, runFilePaths, type RunFile } from './run-file.js';
import { slotFreed, waitsForJobEnd } from './slots.js';

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

/**
 * `submit --once`: a round over every run file, then, for up to `budgetMs`, a new tick of a run as soon as one of its
 * jobs ends, so its slots stay full between CronJob ticks. The budget must leave room for a last tick before the
 * CronJob's deadline. Returns the last outcome of every run file; `failureOf` says whether that is a failure.
 */
export async function submitOnce(
  options: SubmitterOptions & { budgetMs: number; pollMs: number },
): Promise<RunOutcome[]> {
  const deadline = Date.now() + options.budgetMs;
  const latest = new Map<string, RunOutcome>();
  for (const o of await reconcileAll(options)) latest.set(o.file, o);
  for (;;) {
    const freed = await waitForJobEnd([...latest.values()], { ...options, deadline });
    if (freed.length === 0) break;
    for (const file of freed) latest.set(file, await reconcileFile(file, options));
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
