// The line `submit --once` prints per run file, from plain tick outcomes.
import { describe, expect, it } from 'vitest';
import { summary } from '../../src/cli/submit.js';
import type { RunOutcome, RunProgress, TickReport } from '../../src/runs/index.js';

const report = (progress?: Partial<RunProgress>): TickReport => ({
  acted: true,
  lease: { held: true },
  submitted: [{ id: 'r-m1', batch: 0, tasks: [] }],
  stopped: [],
  deleted: [],
  events: [],
  quarantined: [],
  ...(progress ? { progress: progress as RunProgress } : {}),
});
const outcome = (r: TickReport): RunOutcome => ({ file: 'runs/r.yaml', report: r });

describe('submit summary', () => {
  it('says a tick that submitted the manifest job has no manifest yet, instead of undefined counts', () => {
    const line = summary(outcome(report()));
    expect(line).toBe('run runs/r.yaml: no manifest yet; submitted 1 jobs\n');
  });

  it('counts tasks once the manifest exists', () => {
    const tasks = { total: 3, done: 1, in_flight: 2, pending: 0, failed: 0, quarantined: 0 };
    expect(summary(outcome(report({ tasks, complete: false })))).toBe(
      'run runs/r.yaml: 1/3 tasks done, 2 in flight, 0 quarantined; submitted 1 jobs, stopped 0\n',
    );
  });
});
