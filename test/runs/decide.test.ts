import { describe, expect, it } from 'vitest';
import type { JobInfo } from '../../src/runs/backends/types.js';
import { decide, jobsToExplain, reasonFromLog, type DecideInput, type Limits } from '../../src/runs/decide.js';

const T0 = Date.parse('2026-11-28T10:00:00Z');
const at = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString();
const tasks = ['t0', 't1', 't2', 't3', 't4', 't5'];
const limits: Limits = { tasksPerJob: 2, maxJobsInFlight: 2, maxAttempts: 2, jobTimeoutSeconds: 600, jobTtlSeconds: 3600, paused: false };

function input(over: Partial<DecideInput> = {}): DecideInput {
  return {
    runId: 'w',
    taskIds: tasks,
    done: new Set(),
    jobs: { next_batch: 0, jobs: [] },
    attempts: { tasks: {} },
    quarantine: { tasks: {} },
    backendJobs: [],
    reasons: new Map(),
    limits,
    now: T0,
    ...over,
  };
}

const job = (id: string, batch: number, jobTasks: string[], submitted = 0) => ({ id, batch, tasks: jobTasks, submitted_at: at(submitted) });
const info = (id: string, status: JobInfo['status'], jobTasks: string[], extra: Partial<JobInfo> = {}): JobInfo => ({ id, status, tasks: jobTasks, ...extra });

describe('decide', () => {
  it('submits pending tasks in batches up to the jobs-in-flight limit, in manifest order', () => {
    const d = decide(input());
    expect(d.submit).toEqual([
      { id: 'w-b00000-a1', batch: 0, tasks: ['t0', 't1'] },
      { id: 'w-b00001-a1', batch: 1, tasks: ['t2', 't3'] },
    ]);
    expect(d.jobs.next_batch).toBe(2);
    expect(d.pending).toEqual(['t4', 't5']);
  });

  it('submits nothing new while paused, but still handles ended jobs', () => {
    const d = decide(input({ limits: { ...limits, paused: true }, jobs: { next_batch: 1, jobs: [job('w-b00000-a1', 0, ['t0', 't1'])] } }));
    expect(d.submit).toEqual([]);
    expect(d.events[0]).toMatchObject({ outcome: 'vanished', failed_tasks: ['t0', 't1'] });
  });

  it('leaves running jobs alone and skips tasks that are done or in flight', () => {
    const d = decide(
      input({
        done: new Set(['t0', 't1']),
        jobs: { next_batch: 2, jobs: [job('w-b00001-a1', 1, ['t2', 't3'])] },
        backendJobs: [info('w-b00001-a1', 'RUNNING', ['t2', 't3'])],
      }),
    );
    expect(d.submit).toEqual([{ id: 'w-b00002-a1', batch: 2, tasks: ['t4', 't5'] }]);
    expect(d.events).toEqual([]);
  });

  it('sends the unfinished tasks of a failed job back with attempt + 1 and the per-task error from its log', () => {
    const log = 'progress …\ntasks: 1 done, 0 already done (skipped), 1 failed\n  failed t1: bzip2 block CRC mismatch at 1234\n';
    const d = decide(
      input({
        done: new Set(['t0']),
        jobs: { next_batch: 1, jobs: [job('w-b00000-a1', 0, ['t0', 't1'])] },
        backendJobs: [info('w-b00000-a1', 'FAILED', ['t0', 't1'], { message: 'exit code 1', submitted_at: at(0), ended_at: at(90) })],
        reasons: new Map([['w-b00000-a1', reasonFromLog(log)]]),
      }),
    );
    expect(d.attempts.tasks.t1).toMatchObject({ failures: 1, last_job: 'w-b00000-a1', last_error: 'job w-b00000-a1 FAILED: bzip2 block CRC mismatch at 1234' });
    expect(d.attempts.tasks.t0).toBeUndefined();
    expect(d.events).toEqual([expect.objectContaining({ outcome: 'failed', failed_tasks: ['t1'], duration_seconds: 90 })]);
    // The retry carries the attempt number in its id.
    expect(d.submit[0]).toEqual({ id: 'w-b00001-a2', batch: 1, tasks: ['t1', 't2'] });
  });

  it('quarantines a task after max_attempts and never resubmits it', () => {
    const d = decide(
      input({
        attempts: { tasks: { t0: { failures: 1, last_error: 'x', last_job: 'w-b00000-a1', last_failed_at: at(0) } } },
        jobs: { next_batch: 3, jobs: [job('w-b00002-a2', 2, ['t0'])] },
        backendJobs: [info('w-b00002-a2', 'FAILED', ['t0'], { message: 'boom' })],
      }),
    );
    expect(d.quarantined).toEqual(['t0']);
    expect(d.quarantine.tasks.t0).toMatchObject({ failures: 2, quarantined_at: at(0) });
    expect(d.submit.flatMap((s) => s.tasks)).not.toContain('t0');
    expect(d.pending).not.toContain('t0');
  });

  it('treats a recorded job missing from the backend as vanished (head restarted)', () => {
    const d = decide(input({ jobs: { next_batch: 1, jobs: [job('w-b00000-a1', 0, ['t0', 't1'])] }, backendJobs: [] }));
    expect(d.events[0]).toMatchObject({ outcome: 'vanished', failed_tasks: ['t0', 't1'] });
    expect(d.attempts.tasks.t0?.last_error).toMatch(/vanished/);
    expect(d.submit[0]).toEqual({ id: 'w-b00001-a2', batch: 1, tasks: ['t0', 't1'] });
  });

  it('stops a job past job_timeout_seconds, keeps its tasks out of new batches until it has ended', () => {
    const running = input({
      now: T0 + 601_000,
      jobs: { next_batch: 1, jobs: [job('w-b00000-a1', 0, ['t0', 't1'])] },
      backendJobs: [info('w-b00000-a1', 'PENDING', ['t0', 't1'])],
      limits: { ...limits, maxJobsInFlight: 1 },
    });
    const d1 = decide(running);
    expect(d1.stop).toEqual([{ id: 'w-b00000-a1', reason: expect.stringMatching(/timed out: PENDING/) }]);
    expect(d1.jobs.jobs[0]?.stop_requested_at).toBe(new Date(T0 + 601_000).toISOString());
    expect(d1.submit).toEqual([]);
    // Next tick: it has stopped; its tasks fail with the timeout as the reason and are resubmitted.
    const d2 = decide({ ...running, jobs: d1.jobs, backendJobs: [info('w-b00000-a1', 'STOPPED', ['t0', 't1'])] });
    expect(d2.events[0]).toMatchObject({ outcome: 'timed-out', failed_tasks: ['t0', 't1'] });
    expect(d2.attempts.tasks.t0?.last_error).toMatch(/timed out/);
    expect(d2.submit.map((s) => s.tasks)).toEqual([['t0', 't1']]);
  });

  it('adopts a running job it submitted but never recorded, and numbers new batches after it', () => {
    const d = decide(input({ backendJobs: [info('w-b00004-a1', 'RUNNING', ['t2', 't3'], { submitted_at: at(-5) })] }));
    expect(d.events).toEqual([{ job: 'w-b00004-a1', outcome: 'adopted', failed_tasks: [] }]);
    expect(d.jobs.jobs[0]).toEqual({ id: 'w-b00004-a1', batch: 4, tasks: ['t2', 't3'], submitted_at: at(-5) });
    expect(d.submit).toEqual([{ id: 'w-b00005-a1', batch: 5, tasks: ['t0', 't1'] }]);
  });

  it('ignores finished jobs it no longer tracks, and deletes them after the TTL', () => {
    const d = decide(
      input({
        now: T0 + 4000_000,
        done: new Set(tasks),
        backendJobs: [info('w-b00000-a1', 'SUCCEEDED', ['t0'], { ended_at: at(100) }), info('w-b00001-a1', 'FAILED', ['t1'], { ended_at: at(3900) })],
      }),
    );
    expect(d.delete).toEqual(['w-b00000-a1']);
    expect(d.events).toEqual([]);
    expect(d.submit).toEqual([]);
  });

  it('counts a succeeded job without a marker as a failure', () => {
    const d = decide(input({ jobs: { next_batch: 1, jobs: [job('w-b00000-a1', 0, ['t0'])] }, backendJobs: [info('w-b00000-a1', 'SUCCEEDED', ['t0'])] }));
    expect(d.attempts.tasks.t0?.last_error).toMatch(/succeeded but wrote no marker/);
  });

  it('asks for logs only of failed or stopped jobs it did not stop itself', () => {
    const jobs = { next_batch: 3, jobs: [job('a', 0, ['t0']), job('b', 1, ['t1']), { ...job('c', 2, ['t2']), stop_reason: 'timed out', stop_requested_at: at(0) }] };
    expect(jobsToExplain(jobs, [info('a', 'FAILED', ['t0']), info('b', 'RUNNING', ['t1']), info('c', 'STOPPED', ['t2'])])).toEqual(['a']);
  });

  it('gives a killed runner a short reason: the first line of Ray\'s message and the telling end of the log', () => {
    const log = [
      '2026-11-28 13:16:49,689\tINFO job_manager.py:568 -- Runtime env is setting up.',
      'Running entrypoint for job w-b00000-a1: tokenize-wiki run-tasks --tasks t0,t1',
      '{"level":30,"task_id":"t0","msg":"task done"}',
      'Killed',
    ].join('\n');
    const d = decide(
      input({
        done: new Set(['t0']),
        jobs: { next_batch: 1, jobs: [job('w-b00000-a1', 0, ['t0', 't1'])] },
        backendJobs: [info('w-b00000-a1', 'FAILED', ['t0', 't1'], { message: `Job entrypoint command failed with exit code 137, last available logs (truncated to 20,000 chars):\n${log}` })],
        reasons: new Map([['w-b00000-a1', reasonFromLog(log)]]),
      }),
    );
    expect(d.attempts.tasks.t1?.last_error).toBe('job w-b00000-a1 FAILED: Job entrypoint command failed with exit code 137 | Killed');
  });

  it('reads per-task errors from pino lines too', () => {
    const log = '{"level":50,"task_id":"t3","err":"gzip: invalid block type","msg":"task failed"}\nlast line';
    expect(reasonFromLog(log)).toEqual({ tasks: { t3: 'gzip: invalid block type' }, tail: expect.stringContaining('last line') });
  });
});
