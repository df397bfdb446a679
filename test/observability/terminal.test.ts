import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { isRoutine, LogWriter } from '../../src/observability/index.js';
import { screenOf } from '../harness/screen.js';

/** A pretty LogWriter on a stream that only collects what it is given (not a terminal: no colours, no bar). */
function prettyWriter(verbose: boolean): { writer: LogWriter; out: string[] } {
  const out: string[] = [];
  const stream = { isTTY: false, write: (text: string) => out.push(text) } as unknown as NodeJS.WriteStream;
  const writer = new LogWriter(stream);
  writer.configure({ format: 'pretty', verbose });
  return { writer, out };
}

const line = (fields: Record<string, unknown>): string =>
  JSON.stringify({ time: '2026-12-05T01:02:03.000Z', output_prefix: '/out', ...fields }) + '\n';

describe('the terminal face of the log', () => {
  it('keeps the message and the fields that matter, puts the error last, and hides the routine lines', () => {
    const { writer, out } = prettyWriter(false);
    expect(writer.showsBar).toBe(false);
    writer.write(line({ level: 30, manifest: '/out/manifest.json', tasks: 3, docs: 3000, msg: 'manifest written' }));
    writer.write(line({ level: 30, task_id: 'w-000001', dump: 'w-00000', docs: 750, msg: 'task started' }));
    writer.write(line({ level: 30, dump: 'w-00000', docs: 750, tasks: 1, seconds: 0.5, msg: 'dump scanned' }));
    writer.write(line({ level: 40, task_id: 'w-000001', err: 'SlowDown', msg: 'object store unavailable' }));
    writer.write(line({ level: 50, task_id: 'w-000002', err: 'bzip2: CRC mismatch', msg: 'task failed' }));
    expect(out.map((text) => text.replace(/^\[\d\d:\d\d:\d\d\] /, ''))).toEqual([
      'INFO: manifest written tasks=3 docs=3000\n',
      'WARN: object store unavailable task=w-000001: SlowDown\n',
      'ERROR: task failed task=w-000002: bzip2: CRC mismatch\n',
    ]);
  });

  it('shows the routine lines with -v', () => {
    const { writer, out } = prettyWriter(true);
    writer.write(line({ level: 30, task_id: 'w-000001', docs: 750, rows: 700, msg: 'task done' }));
    expect(out.map((text) => text.slice(11))).toEqual(['INFO: task done task=w-000001 docs=750\n']);
  });

  it('calls per-task and per-dump info lines routine, never a warning', () => {
    expect(isRoutine({ level: 30, task_id: 't' })).toBe(true);
    expect(isRoutine({ level: 30, dump: 'd' })).toBe(true);
    expect(isRoutine({ level: 30, manifest: 'm' })).toBe(false);
    expect(isRoutine({ level: 40, task_id: 't' })).toBe(false);
  });

  it('prints a line logged while the bar stands still above the bar, and leaves the bar drawn', async () => {
    let raw = '';
    const stream = { isTTY: true, columns: 80, write: (text: string) => (raw += text) };
    const writer = new LogWriter(stream as unknown as NodeJS.WriteStream);
    writer.configure({ format: 'pretty', verbose: true });
    expect(writer.showsBar).toBe(true);
    const bar = writer.startBar('{bar} {value}/{total} docs', 10, {});
    bar.update(5, {});
    await sleep(300); // the bar's first redraw (10 per second)
    writer.write(line({ level: 30, task_id: 'w-000001', docs: 5, msg: 'task done' }));
    bar.stop();
    const screen = await screenOf(raw, 80, 10);
    expect(screen.map((text) => text.replace(/^\[\d\d:\d\d:\d\d\] /, ''))).toEqual([
      'INFO: task done task=w-000001 docs=5',
      `${'█'.repeat(20)}${'░'.repeat(20)} 5/10 docs`,
    ]);
  });
});
