import { InputError } from '../errors/index.js';
import { readManifest } from '../manifest/index.js';
import { joinUri, storeFor } from '../storage/index.js';
import { listDoneTaskIds } from '../tasks/index.js';
import { computeProgress, refreshDoneCache, type RunProgress } from './progress.js';
import type { RunFile } from './run-file.js';
import { loadRunState } from './state.js';

/** The run has no manifest yet: `status` fails on it, `status --watch` waits for the submitter's first tick. */
export class NoManifestYet extends InputError {
  override name = 'NoManifestYet';
}

/**
 * The run's progress now, from markers and the state files; read-only and without the lease or the job backend, so
 * it works from any machine that can read the output prefix.
 */
export async function readStatus(run: RunFile, now = Date.now()): Promise<RunProgress> {
  if (!(await storeFor(run.manifest_uri).stat(run.manifest_uri))) {
    throw new NoManifestYet(`${run.manifest_uri}: no manifest yet (the submitter creates it on its first tick)`);
  }
  const manifest = await readManifest(run.manifest_uri);
  const known = new Set(manifest.tasks.map((t) => t.task_id));
  const [state, allDone] = await Promise.all([loadRunState(run.output_prefix), listDoneTaskIds(run.output_prefix)]);
  const done = new Set([...allDone].filter((id) => known.has(id)));
  state.done = await refreshDoneCache(run.output_prefix, done, state.done);
  const successUri = joinUri(run.output_prefix, '_SUCCESS');
  const complete = done.size === known.size && (await storeFor(successUri).stat(successUri)) !== undefined;
  return computeProgress({ runId: run.run_id, manifest, done, state, paused: run.paused, complete, now });
}

const duration = (seconds: number | null): string => {
  if (seconds === null) return 'unknown';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
};

const oneLine = (text: string, max = 160): string => {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** Nothing is left to run but quarantined tasks: the run waits for a person (`requeue`). */
function onlyQuarantinedLeft(p: RunProgress): boolean {
  return !p.complete && p.tasks.pending + p.tasks.in_flight === 0 && p.tasks.quarantined > 0;
}

/** Where `status --watch` stands after a look: keep watching, or stop because the run has ended one way or the other. */
export type WatchOutcome = 'watching' | 'complete' | 'needs-attention';

export function watchOutcome(p: RunProgress): WatchOutcome {
  if (p.verify && !p.verify.ok) return 'needs-attention';
  if (p.complete) return 'complete';
  return onlyQuarantinedLeft(p) ? 'needs-attention' : 'watching';
}

/** `tokenize-wiki status` as a person reads it. */
export function formatStatus(p: RunProgress): string {
  const pct = p.docs.total > 0 ? ((100 * p.docs.done) / p.docs.total).toFixed(1) : '0.0';
  const blocked = onlyQuarantinedLeft(p);
  const state = p.complete
    ? 'complete'
    : p.paused
      ? 'paused'
      : p.tasks.quarantined > 0
        ? 'running, needs attention (quarantined tasks)'
        : 'running';
  const out = [
    `run ${p.run_id}: ${state}`,
    ...table(
      ['', 'total', 'done', 'in flight', 'pending', 'failed', 'quarantined'],
      [
        [
          'tasks',
          ...[p.tasks.total, p.tasks.done, p.tasks.in_flight, p.tasks.pending, p.tasks.failed, p.tasks.quarantined].map(
            String,
          ),
        ],
      ],
    ),
    `docs ${p.docs.done}/${p.docs.total} (${pct}%), tokens ${p.tokens_done}, failed attempts ${p.failed_attempts}`,
    `throughput ${p.throughput.docs_per_second} docs/s, ${p.throughput.tokens_per_second} tokens/s (last ${duration(p.throughput.window_seconds)})${p.throughput.docs_per_cpu_second === null ? '' : `, ${p.throughput.docs_per_cpu_second} docs/s per CPU (jobs are sized from it)`}; ETA ${blocked ? 'none: only quarantined tasks are left' : duration(p.eta_seconds)}`,
  ];
  if (p.jobs_in_flight.length > 0) {
    out.push('', `jobs in flight (${p.jobs_in_flight.length}):`);
    out.push(
      ...table(
        ['job', 'submitted', 'tasks', 'note'],
        p.jobs_in_flight.map((j) => [j.id, j.submitted_at, String(j.tasks.length), j.stop_reason ? 'stopping' : '']),
      ).map((l) => `  ${l}`),
    );
  }
  if (p.failures.length > 0) {
    out.push('', `failed tasks waiting for a retry (${p.failures.length}):`);
    out.push(
      ...table(
        ['task', 'failures', 'outages', 'last error'],
        p.failures.map((f) => [f.task_id, String(f.failures), String(f.outages ?? 0), oneLine(f.last_error)]),
      ).map((l) => `  ${l}`),
    );
  }
  if (p.quarantined.length > 0) {
    out.push(
      '',
      `quarantined tasks (${p.quarantined.length}; fix the cause, then \`tokenize-wiki requeue --run FILE --tasks …\`):`,
    );
    out.push(
      ...table(
        ['task', 'failures', 'last error'],
        p.quarantined.map((q) => [q.task_id, String(q.failures), oneLine(q.last_error)]),
      ).map((l) => `  ${l}`),
    );
  }
  if (p.verify && !p.verify.ok) out.push('', `verify failed: ${p.verify.problems.join('; ')}`);
  return out.join('\n') + '\n';
}
