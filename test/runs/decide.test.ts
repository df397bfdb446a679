import { describe, expect, it } from 'vitest';
import type { JobInfo } from '../../src/runs/backends/backend.js';
import { decide, jobsToExplain, reasonFromLog, type DecideInput, type Limits } from '../../src/runs/decide.js';
import type { RunProgress } from '../../src/runs/progress.js';
import { docsPerCpuSecond, slotFreed, waitsForJobEnd } from '../../src/runs/slots.js';
import { outageRetry, type RunOutcome } from '../../src/runs/submitter.js';
import { classifyFailure, storageRetryDelay } from '../../src/tasks/failure.js';

const T0 = Date.parse('2026-11-28T10:00:00Z');
const at = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString();
const tasks = ['t0', 't1', 't2', 't3', 't4', 't5'];
const limits: Limits = {
  tasksPerJob: 2,
  cpusPerJob: 1,
  jobTargetSeconds: 600,
  maxJobsInFlight: 2,
  maxAttempts: 2,
  jobTimeoutSeconds: 600,
  jobTtlSeconds: 3600,
  paused: false,
};

function input(over: Partial<DecideInput> = {}): DecideInput {
  return {
    runId: 'w',
    taskIds: tasks,
    taskDocs: new Map(tasks.map((t) => [t, 100])),
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

const job = (id: string, batch: number, jobTasks: string[], submitted = 0) => ({
  id,
  batch,
  tasks: jobTasks,
  submitted_at: at(submitted),
});
const info = (id: string, status: JobInfo['status'], jobTasks: string[], extra: Partial<JobInfo> = {}): JobInfo => ({
  id,
  status,
  tasks: jobTasks,
  ...extra,
});

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
    const d = decide(
      input({
        limits: { ...limits, paused: true },
        jobs: { next_batch: 1, jobs: [job('w-b00000-a1', 0, ['t0', 't1'])] },
      }),
    );
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
    const log =
      'progress …\ntasks: 1 done, 0 already done (skipped), 1 failed\n  failed t1: bzip2 block CRC mismatch at 1234\n';
    const d = decide(
      input({
        done: new Set(['t0']),
        jobs: { next_batch: 1, jobs: [job('w-b00000-a1', 0, ['t0', 't1'])] },
        backendJobs: [
          info('w-b00000-a1', 'FAILED', ['t0', 't1'], {
            message: 'exit code 1',
            submitted_at: at(0),
            ended_at: at(90),
          }),
        ],
        reasons: new Map([['w-b00000-a1', reasonFromLog(log)]]),
      }),
    );
    expect(d.attempts.tasks.t1).toMatchObject({
      failures: 1,
      last_job: 'w-b00000-a1',
      last_error: 'job w-b00000-a1 FAILED: bzip2 block CRC mismatch at 1234',
    });
    expect(d.attempts.tasks.t0).toBeUndefined();
    expect(d.events).toEqual([
      expect.objectContaining({ outcome: 'failed', failed_tasks: ['t1'], duration_seconds: 90 }),
    ]);
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
        backendJobs: [
          info('w-b00000-a1', 'SUCCEEDED', ['t0'], { ended_at: at(100) }),
          info('w-b00001-a1', 'FAILED', ['t1'], { ended_at: at(3900) }),
        ],
      }),
    );
    expect(d.delete).toEqual(['w-b00000-a1']);
    expect(d.events).toEqual([]);
    expect(d.submit).toEqual([]);
  });

  it('counts a succeeded job without a marker as a failure', () => {
    const d = decide(
      input({
        jobs: { next_batch: 1, jobs: [job('w-b00000-a1', 0, ['t0'])] },
        backendJobs: [info('w-b00000-a1', 'SUCCEEDED', ['t0'])],
      }),
    );
    expect(d.attempts.tasks.t0?.last_error).toMatch(/succeeded but wrote no marker/);
  });

  it('asks for logs only of failed or stopped jobs it did not stop itself', () => {
    const jobs = {
      next_batch: 3,
      jobs: [
        job('a', 0, ['t0']),
        job('b', 1, ['t1']),
        { ...job('c', 2, ['t2']), stop_reason: 'timed out', stop_requested_at: at(0) },
      ],
    };
    expect(
      jobsToExplain(jobs, [info('a', 'FAILED', ['t0']), info('b', 'RUNNING', ['t1']), info('c', 'STOPPED', ['t2'])]),
    ).toEqual(['a']);
  });

  it("gives a killed runner a short reason: the first line of Ray's message and the telling end of the log", () => {
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
        backendJobs: [
          info('w-b00000-a1', 'FAILED', ['t0', 't1'], {
            message: `Job entrypoint command failed with exit code 137, last available logs (truncated to 20,000 chars):\n${log}`,
          }),
        ],
        reasons: new Map([['w-b00000-a1', reasonFromLog(log)]]),
      }),
    );
    expect(d.attempts.tasks.t1?.last_error).toBe(
      'job w-b00000-a1 FAILED: Job entrypoint command failed with exit code 137 | Killed',
    );
  });

  it('reads per-task errors from pino lines too', () => {
    const log = '{"level":50,"task_id":"t3","err":"gzip: invalid block type","msg":"task failed"}\nlast line';
    expect(reasonFromLog(log)).toEqual({
      tasks: { t3: 'gzip: invalid block type' },
      tail: expect.stringContaining('last line'),
    });
  });

  it('never counts an object-store outage towards quarantine, only failures of the task itself', () => {
    const unreachable =
      'failed t0: s3://b/dumps/x.json.gz: S3 endpoint unreachable (http://store:8333): connect ECONNREFUSED 10.0.0.7:8333\n';
    const failedJob = (id: string, batch: number): DecideInput => ({
      ...input({ limits: { ...limits, maxAttempts: 1 } }),
      jobs: { next_batch: batch + 1, jobs: [job(id, batch, ['t0'])] },
      backendJobs: [info(id, 'FAILED', ['t0'], { message: 'exit code 1' })],
      reasons: new Map([[id, reasonFromLog(unreachable)]]),
    });
    const d1 = decide(failedJob('w-b00000-a1', 0));
    expect(d1.quarantined).toEqual([]);
    expect(d1.attempts.tasks.t0).toMatchObject({
      failures: 0,
      outages: 1,
      last_error: expect.stringMatching(/S3 endpoint unreachable/),
    });
    expect(d1.failures).toEqual([expect.objectContaining({ task: 't0', kind: 'storage-unavailable', failures: 0 })]);
    // Throttling too; the retry's id still says which attempt it is.
    const d2 = decide({
      ...failedJob('w-b00001-a2', 1),
      attempts: d1.attempts,
      reasons: new Map([['w-b00001-a2', reasonFromLog('failed t0: SlowDown: Please reduce your request rate.')]]),
    });
    expect(d2.quarantined).toEqual([]);
    expect(d2.attempts.tasks.t0).toMatchObject({ failures: 0, outages: 2 });
    expect(d2.submit[0]).toMatchObject({ id: 'w-b00002-a3', tasks: ['t0', 't1'] });
    // A failure of the task's own data counts, and with max_attempts 1 quarantines it.
    const d3 = decide({
      ...failedJob('w-b00002-a3', 2),
      attempts: d2.attempts,
      reasons: new Map([['w-b00002-a3', reasonFromLog('failed t0: bzip2 block CRC mismatch')]]),
    });
    expect(d3.quarantined).toEqual(['t0']);
    expect(d3.quarantine.tasks.t0).toMatchObject({ failures: 1, outages: 2 });
  });

  it('does not count a job lost with the Ray head towards quarantine', () => {
    const d = decide(
      input({
        limits: { ...limits, maxAttempts: 1 },
        jobs: { next_batch: 1, jobs: [job('w-b00000-a1', 0, ['t0'])] },
        backendJobs: [],
      }),
    );
    expect(d.quarantined).toEqual([]);
    expect(d.attempts.tasks.t0).toMatchObject({ failures: 0, outages: 1 });
    expect(d.failures[0]).toMatchObject({ kind: 'job-lost' });
  });

  it('does not count a job whose Ray node died (a worker pod lost) towards quarantine; an actor killed on a live node counts', () => {
    const supervisorDied = (cause: string) =>
      decide(
        input({
          limits: { ...limits, maxAttempts: 1 },
          jobs: { next_batch: 1, jobs: [job('w-b00000-a1', 0, ['t0'])] },
          backendJobs: [
            info('w-b00000-a1', 'FAILED', ['t0'], {
              message: `Job supervisor actor died: The actor died unexpectedly before finishing this task.\n\tclass_name: JobSupervisor\n\tip: 10.244.0.7\n${cause}`,
            }),
          ],
        }),
      );
    const lost = supervisorDied('The actor died because its node has died. Node Id: 5e1f');
    expect(lost.quarantined).toEqual([]);
    expect(lost.failures[0]).toMatchObject({ kind: 'job-lost', failures: 0 });
    expect(lost.attempts.tasks.t0?.last_error).toMatch(/Job supervisor actor died.*because its node has died/);
    const killed = supervisorDied('The actor was killed by the memory monitor.');
    expect(killed.quarantined).toEqual(['t0']);
  });

  it('sizes jobs from the measured docs per CPU-second, and spreads the last tasks over the free slots', () => {
    // Nothing measured yet: tasks_per_job (2).
    expect(decide(input()).submit.map((j) => j.tasks.length)).toEqual([2, 2]);
    // 1 doc/s per CPU x 1 CPU x 450 s = 450 docs: 4 tasks of 100 docs, but 6 pending over 2 free slots is 3 each.
    const measured = { ...limits, docsPerCpuSecond: 1, jobTargetSeconds: 450 };
    expect(decide(input({ limits: measured })).submit.map((j) => j.tasks.length)).toEqual([3, 3]);
    expect(decide(input({ limits: { ...measured, maxJobsInFlight: 1 } })).submit.map((j) => j.tasks)).toEqual([
      ['t0', 't1', 't2', 't3'],
    ]);
    // Faster tasks, bigger jobs; never fewer than one task, even a task larger than the target.
    expect(
      decide(input({ limits: { ...measured, maxJobsInFlight: 1, docsPerCpuSecond: 10 } })).submit[0]?.tasks,
    ).toEqual(tasks);
    expect(
      decide(input({ limits: { ...measured, docsPerCpuSecond: 0.01 } })).submit.map((j) => j.tasks.length),
    ).toEqual([1, 1]);
  });

  it('times a job out from its latest start: KubeRay reruns the same job id on a new head after a head loss', () => {
    const d = decide(
      input({
        now: T0 + 4000_000,
        jobs: { next_batch: 1, jobs: [job('w-b00000-a1', 0, ['t0', 't1'])] },
        // Submitted 4000 s ago (timeout 600 s); the rerun on the new head started 100 s ago.
        backendJobs: [info('w-b00000-a1', 'RUNNING', ['t0', 't1'], { submitted_at: at(0), started_at: at(3900) })],
      }),
    );
    expect(d.stop).toEqual([]);
    expect(d.events).toEqual([]);
    expect(d.jobs.jobs[0]).toMatchObject({ id: 'w-b00000-a1', tasks: ['t0', 't1'] });
    expect(d.jobs.jobs[0]?.stop_requested_at).toBeUndefined();
  });
});

describe('slots', () => {
  const progress = (over: Partial<RunProgress>): RunProgress =>
    ({
      complete: false,
      paused: false,
      jobs_in_flight: [{ id: 'a', tasks: ['t0'], submitted_at: at(0) }],
      ...over,
    }) as RunProgress;

  it('wakes for a job end only when a run has jobs in flight and is neither complete nor paused', () => {
    expect(waitsForJobEnd(progress({}))).toBe(true);
    expect(waitsForJobEnd(progress({ jobs_in_flight: [] }))).toBe(false);
    expect(waitsForJobEnd(progress({ paused: true }))).toBe(false);
    expect(waitsForJobEnd(progress({ complete: true }))).toBe(false);
    expect(waitsForJobEnd(undefined)).toBe(false);
  });

  it('sees a slot freed when a job in flight ended or vanished', () => {
    expect(slotFreed(['a'], [info('a', 'RUNNING', ['t0'])])).toBe(false);
    expect(slotFreed(['a'], [info('a', 'SUCCEEDED', ['t0'])])).toBe(true);
    expect(slotFreed(['a'], [])).toBe(true);
  });

  it('measures docs per CPU-second over the most recent finished tasks', () => {
    const task = (docs: number, start: number, end: number) => ({
      docs,
      tokens: 0,
      text_bytes: 0,
      started_at: at(start),
      finished_at: at(end),
    });
    expect(docsPerCpuSecond({ tasks: {} })).toBeUndefined();
    expect(docsPerCpuSecond({ tasks: { a: task(100, 0, 10), b: task(300, 5, 15) } })).toBe(20);
    const old = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`o${i}`, task(1, 0, 100)]));
    const recent = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`r${i}`, task(1000, 1000, 1010)]));
    expect(docsPerCpuSecond({ tasks: { ...old, ...recent } })).toBe(100);
  });
});

describe('failure policy', () => {
  it('tells an unavailable object store from a failure of the task', () => {
    expect(
      classifyFailure('s3://b/k: S3 endpoint unreachable (http://x:8333): connect ECONNREFUSED 127.0.0.1:8333'),
    ).toBe('storage-unavailable');
    expect(classifyFailure('s3://b/k: read failed at byte 5030: read ECONNRESET')).toBe('storage-unavailable');
    expect(classifyFailure('job w FAILED: SlowDown: Please reduce your request rate.')).toBe('storage-unavailable');
    expect(classifyFailure('job vanished from the backend (Ray head restarted, or its record was deleted)')).toBe(
      'job-lost',
    );
    expect(
      classifyFailure('job w FAILED: Job supervisor actor failed to start within 900.0 seconds. This timeout can be'),
    ).toBe('job-lost');
    expect(classifyFailure('job w timed out: PENDING for more than job_timeout_seconds=3600')).toBe('job-lost');
    expect(classifyFailure('job w timed out: RUNNING for more than job_timeout_seconds=3600')).toBe('task');
    expect(classifyFailure('x.json.bz2 (task t1): bzip2 block CRC mismatch at 1234')).toBe('task');
    expect(classifyFailure('s3://b/k: no such object')).toBe('task');
    expect(classifyFailure('s3://b/k: access denied by the S3 store (AccessDenied): check the credentials')).toBe(
      'task',
    );
  });

  it('backs off, doubling up to a ceiling, until the budget is spent', () => {
    const retry = { budgetMs: 60_000, firstDelayMs: 2_000, maxDelayMs: 20_000 };
    const delays: number[] = [];
    let elapsed = 0;
    for (let attempt = 1; ; attempt++) {
      const delay = storageRetryDelay(attempt, elapsed, retry);
      if (delay === undefined) break;
      delays.push(delay);
      elapsed += delay;
    }
    expect(delays).toEqual([2_000, 4_000, 8_000, 16_000, 20_000]);
    expect(elapsed).toBeLessThanOrEqual(60_000);
  });
});

describe('a submitter tick during an object-store outage', () => {
  const down: RunOutcome = {
    file: 'runs/r.yaml',
    error: new Error('s3://b/runs/r/state/lease/: S3 endpoint unreachable (http://s3:8333): connect ECONNREFUSED'),
  };
  const deadline = T0 + 200_000;

  it('ticks the run again with backoff, from the first failure, until the tick budget or the retry budget ends', () => {
    const first = outageRetry(down, undefined, T0, deadline);
    expect(first).toEqual({ attempt: 1, since: T0, at: T0 + 2_000 });
    const second = outageRetry(down, first, T0 + 2_500, deadline);
    expect(second).toEqual({ attempt: 2, since: T0, at: T0 + 6_500 });
    // Past the tick's deadline: the next CronJob tick takes over.
    expect(outageRetry(down, { attempt: 5, since: T0, at: 0 }, T0 + 190_000, deadline)).toBeUndefined();
  });

  it('does not retry a tick that failed for another reason, or that succeeded', () => {
    expect(
      outageRetry({ file: 'r', error: new Error('r.yaml: max_attempts: expected a number') }, undefined, T0, deadline),
    ).toBeUndefined();
    expect(outageRetry({ file: 'r' }, { attempt: 1, since: T0, at: T0 }, T0, deadline)).toBeUndefined();
  });
});
