import type { Manifest } from '../manifest/index.js';
import { readMarker } from '../tasks/index.js';
import { docsPerCpuSecond } from './slots.js';
import type { DoneCache, RunState } from './state.js';

/** What `state/progress.json`, `status` and the metrics show: computed from markers, so it survives restarts. */
export interface RunProgress {
  run_id: string;
  updated_at: string;
  complete: boolean;
  paused: boolean;
  tasks: { total: number; done: number; in_flight: number; pending: number; failed: number; quarantined: number };
  docs: { total: number; done: number };
  tokens_done: number;
  text_bytes_done: number;
  /** Failed attempts recorded over the run (tasks retried or quarantined). */
  failed_attempts: number;
  /** docs_per_cpu_second: what jobs are sized from (slots.ts); null until a task has finished. */
  throughput: {
    docs_per_second: number;
    tokens_per_second: number;
    window_seconds: number;
    docs_per_cpu_second: number | null;
  };
  eta_seconds: number | null;
  jobs_in_flight: Array<{ id: string; tasks: string[]; submitted_at: string; stop_reason?: string }>;
  failures: Array<{
    task_id: string;
    failures: number;
    outages?: number;
    last_error: string;
    last_job: string;
    last_failed_at: string;
  }>;
  quarantined: Array<{ task_id: string; failures: number; last_error: string; quarantined_at: string }>;
  verify?: { ok: boolean; problems: string[]; missing: number };
}

/** Throughput is measured over the tasks that finished in this window (or since the run started, if shorter). */
export const THROUGHPUT_WINDOW_SECONDS = 900;

/** Bring the cache of marker figures up to date: read only markers not seen before; forget removed ones. */
export async function refreshDoneCache(
  outputPrefix: string,
  done: ReadonlySet<string>,
  cache: DoneCache,
  parallel = 16,
): Promise<DoneCache> {
  const tasks: DoneCache['tasks'] = {};
  for (const [id, entry] of Object.entries(cache.tasks)) if (done.has(id)) tasks[id] = entry;
  const missing = [...done].filter((id) => !tasks[id]);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < missing.length) {
      const id = missing[next++] as string;
      const marker = await readMarker(outputPrefix, id);
      if (marker)
        tasks[id] = {
          docs: marker.docs,
          tokens: marker.tokens,
          text_bytes: marker.text_bytes,
          started_at: marker.started_at,
          finished_at: marker.finished_at,
        };
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, missing.length) }, lane));
  return { tasks };
}

export function computeProgress(options: {
  runId: string;
  manifest: Manifest;
  done: ReadonlySet<string>;
  state: RunState;
  paused: boolean;
  complete: boolean;
  now: number;
}): RunProgress {
  const { manifest, done, state, now } = options;
  const finished = Object.values(state.done.tasks);
  const inFlight = new Set(state.jobs.jobs.flatMap((j) => j.tasks.filter((t) => !done.has(t))));
  const quarantined = Object.entries(state.quarantine.tasks).filter(([id]) => !done.has(id));
  const failed = Object.entries(state.attempts.tasks).filter(([id]) => !done.has(id) && !state.quarantine.tasks[id]);
  const docsDone = finished.reduce((n, t) => n + t.docs, 0);
  const docsTotal = manifest.totals.docs;

  const firstStart = Math.min(...finished.map((t) => Date.parse(t.started_at)));
  const window = Math.max(1, Math.min(THROUGHPUT_WINDOW_SECONDS, (now - firstStart) / 1000));
  const recent = finished.filter((t) => now - Date.parse(t.finished_at) <= window * 1000);
  const docsPerSecond = recent.reduce((n, t) => n + t.docs, 0) / window;
  const tokensPerSecond = recent.reduce((n, t) => n + t.tokens, 0) / window;
  const perCpu = docsPerCpuSecond(state.done);
  const remaining = docsTotal - docsDone;
  const pending = manifest.tasks.filter(
    (t) => !done.has(t.task_id) && !inFlight.has(t.task_id) && !state.quarantine.tasks[t.task_id],
  ).length;
  // Only quarantined tasks left: the run waits for a person, so there is no ETA.
  const blocked = remaining > 0 && pending === 0 && inFlight.size === 0;

  return {
    run_id: options.runId,
    updated_at: new Date(now).toISOString(),
    complete: options.complete,
    paused: options.paused,
    tasks: {
      total: manifest.tasks.length,
      done: manifest.tasks.filter((t) => done.has(t.task_id)).length,
      in_flight: inFlight.size,
      pending,
      failed: failed.length,
      quarantined: quarantined.length,
    },
    docs: { total: docsTotal, done: docsDone },
    tokens_done: finished.reduce((n, t) => n + t.tokens, 0),
    text_bytes_done: finished.reduce((n, t) => n + t.text_bytes, 0),
    failed_attempts: Object.values(state.attempts.tasks).reduce((n, a) => n + a.failures, 0),
    throughput: {
      docs_per_second: round(docsPerSecond),
      tokens_per_second: Math.round(tokensPerSecond),
      window_seconds: Math.round(window),
      docs_per_cpu_second: perCpu === undefined ? null : round(perCpu),
    },
    eta_seconds: remaining === 0 ? 0 : docsPerSecond > 0 && !blocked ? Math.round(remaining / docsPerSecond) : null,
    jobs_in_flight: state.jobs.jobs.map((j) => ({
      id: j.id,
      tasks: j.tasks,
      submitted_at: j.submitted_at,
      ...(j.stop_reason ? { stop_reason: j.stop_reason } : {}),
    })),
    failures: failed.map(([task_id, f]) => ({ task_id, ...f })),
    quarantined: quarantined.map(([task_id, q]) => ({
      task_id,
      failures: q.failures,
      last_error: q.last_error,
      quarantined_at: q.quarantined_at,
    })),
  };
}

const round = (n: number): number => Math.round(n * 10) / 10;
