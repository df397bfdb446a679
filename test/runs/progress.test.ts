import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/manifest/schema.js';
import { computeProgress } from '../../src/runs/progress.js';
import type { RunState } from '../../src/runs/state.js';
import { formatStatus, watchOutcome } from '../../src/runs/status.js';

const T0 = Date.parse('2026-11-28T10:00:00Z');
const at = (s: number): string => new Date(T0 + s * 1000).toISOString();
const manifest = {
  tasks: ['a', 'b', 'c', 'd'].map((task_id) => ({ task_id, doc_count: 100 })),
  totals: { docs: 400 },
} as unknown as Manifest;

function state(over: Partial<RunState> = {}): RunState {
  return {
    jobs: { next_batch: 2, jobs: [{ id: 'w-b00001-a1', batch: 1, tasks: ['c'], submitted_at: at(50) }] },
    attempts: {
      tasks: {
        c: {
          failures: 1,
          last_error: 'job w-b00000-a1 FAILED: Killed',
          last_job: 'w-b00000-a1',
          last_failed_at: at(40),
        },
      },
    },
    quarantine: { tasks: {} },
    done: {
      tasks: {
        a: { docs: 100, tokens: 1000, text_bytes: 5000, started_at: at(0), finished_at: at(20) },
        b: { docs: 100, tokens: 3000, text_bytes: 5000, started_at: at(20), finished_at: at(40) },
      },
    },
    ...over,
  };
}

describe('progress', () => {
  it('counts tasks by state and measures throughput over the finished tasks', () => {
    const p = computeProgress({
      runId: 'w',
      manifest,
      done: new Set(['a', 'b']),
      state: state(),
      paused: false,
      complete: false,
      now: T0 + 40_000,
    });
    expect(p.tasks).toEqual({ total: 4, done: 2, in_flight: 1, pending: 1, failed: 1, quarantined: 0 });
    expect(p.docs).toEqual({ total: 400, done: 200 });
    // Per CPU: 200 docs over 40 task-seconds (jobs are sized from it).
    expect(p.throughput).toEqual({
      docs_per_second: 5,
      tokens_per_second: 100,
      window_seconds: 40,
      docs_per_cpu_second: 5,
    });
    expect(p.eta_seconds).toBe(40);
    const text = formatStatus(p);
    expect(text).toContain('run w: running');
    expect(text).toContain('5 docs/s per CPU (jobs are sized from it); ETA 40s');
    expect(text).toMatch(/failed tasks waiting for a retry \(1\):\n.*\n\s+c\s+1\s+0\s+job w-b00000-a1 FAILED: Killed/);
  });

  it('has no ETA when only quarantined tasks are left, and says so', () => {
    const s = state({
      jobs: { next_batch: 2, jobs: [] },
      attempts: { tasks: {} },
      quarantine: {
        tasks: {
          c: { failures: 3, last_error: 'bzip2 CRC', last_job: 'x', last_failed_at: at(40), quarantined_at: at(40) },
        },
      },
    });
    const p = computeProgress({
      runId: 'w',
      manifest,
      done: new Set(['a', 'b', 'd']),
      state: s,
      paused: false,
      complete: false,
      now: T0 + 40_000,
    });
    expect(p.eta_seconds).toBeNull();
    expect(formatStatus(p)).toContain('ETA none: only quarantined tasks are left');
    expect(formatStatus(p)).toContain('quarantined tasks (1;');
    expect(watchOutcome(p)).toBe('needs-attention');
  });

  it('status --watch keeps watching a running or paused run and stops when it completes or needs a person', () => {
    const look = (over: { done?: string[]; paused?: boolean; complete?: boolean }) =>
      computeProgress({
        runId: 'w',
        manifest,
        done: new Set(over.done ?? ['a', 'b']),
        state: state(),
        paused: over.paused ?? false,
        complete: over.complete ?? false,
        now: T0 + 40_000,
      });
    expect(watchOutcome(look({}))).toBe('watching');
    expect(watchOutcome(look({ paused: true }))).toBe('watching');
    // A task failed but is retried: not the end of the run.
    expect(look({}).tasks.failed).toBe(1);
    expect(watchOutcome(look({ done: ['a', 'b', 'c', 'd'], complete: true }))).toBe('complete');
    const verifyFailed = {
      ...look({ done: ['a', 'b', 'c', 'd'] }),
      verify: { ok: false, problems: ['x'], missing: 1 },
    };
    expect(watchOutcome(verifyFailed)).toBe('needs-attention');
  });
});
