// How run-tasks reports a failed task, and how the submitter reads it back from a job's log.
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { formatFailedTask, parseFailedTask, TASK_FAILED_EVENT } from '../../src/tasks/failure.js';

describe('failed task lines', () => {
  it('the summary line round-trips', () => {
    const failure = {
      taskId: 'enwiki-20261122-cirrussearch-content.json.gz-000042',
      error: 's3://b/k: bucket does not exist: check: it',
    };
    expect(parseFailedTask(formatFailedTask(failure))).toEqual(failure);
  });

  it('the JSON log line round-trips', async () => {
    const lines: string[] = [];
    const logger = pino(
      { timestamp: pino.stdTimeFunctions.isoTime },
      { write: (line: string) => void lines.push(line) },
    );
    logger.error({ task_id: 't-7', err: 'corrupt gzip data' }, TASK_FAILED_EVENT);
    expect(lines.map((l) => parseFailedTask(l.trim()))).toEqual([{ taskId: 't-7', error: 'corrupt gzip data' }]);
  });

  it('other lines are not failures', () => {
    expect(parseFailedTask('tasks: 3 done, 0 already done (skipped), 1 failed')).toBeUndefined();
    expect(parseFailedTask('{"msg":"task done","task_id":"t"}')).toBeUndefined();
  });
});
