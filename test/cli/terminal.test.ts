// `tokenize-wiki run` as a person sees it: in a pseudo-terminal (util-linux `script`), its output interpreted by a
// terminal emulator (@xterm/headless), so the test reads the screen, not the bytes: carriage returns, cleared lines
// and redraws of the bar have done their work. Through a pipe the same command must still write JSON lines only.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../core/helpers.js';
import { CLI, CLI_TEST_TIMEOUT, cli, cliEnv } from '../harness/cli.js';
import { screenOf } from '../harness/screen.js';
import { shellQuote } from '../../src/util/index.js';

const COLS = 120;
const ROWS = 40;

let dir: string;
beforeAll(() => {
  dir = tempDir('terminal');
});
afterAll(() => removeDir(dir));

/** A fresh working directory: `run --embedded-default` keeps its sample and output under it. */
function freshDir(name: string): string {
  const path = join(dir, name);
  mkdirSync(path);
  return path;
}

/** Runs the CLI in a fresh pseudo-terminal of COLS x ROWS; resolves with its exit code and the raw bytes it drew. */
function inTerminal(args: readonly string[], cwd: string): Promise<{ code: number | null; raw: string }> {
  const command = `stty cols ${COLS} rows ${ROWS}; exec ${[process.execPath, CLI, ...args].map(shellQuote).join(' ')}`;
  // -q: no start/done banners, -e: the command's exit code, -f: flush as it writes; the typescript goes nowhere.
  const child = spawn('script', ['-qefc', command, '/dev/null'], {
    cwd,
    env: cliEnv({ TERM: 'xterm-256color' }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let raw = '';
  // Decoded as a stream: a bar character split between two reads must not become two replacement characters.
  child.stdout.setEncoding('utf8').on('data', (d: string) => (raw += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (raw += d));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, raw }));
  });
}

const BAR = /[█░]{10}/;
/** A whole bar line and nothing else on it. */
const BAR_LINE =
  /^[█░]+ \d+% \| \d+\/\d+ docs \| \d+ docs\/s \| \d+ tok\/s \| [\d.]+ MB\/s \| ETA (\d+[smhd]|\d+h\d+m|\d+m\d+s|NULL|N\/A)$/;
const LOG_LINE = /^\[\d\d:\d\d:\d\d\] (INFO|WARN|ERROR): /;

describe('run in a terminal', () => {
  it(
    'shows readable log lines above the bar, never on it, and the summary last; JSON lines through a pipe',
    async () => {
      // -v: the per-task lines are written while the bar is drawn, the case where they used to collide.
      const cwd = freshDir('tty');
      const { code, raw } = await inTerminal(['run', '--embedded-default', '-v'], cwd);
      const screen = await screenOf(raw, COLS, ROWS);
      console.log(`[terminal screen]\n${screen.join('\n')}`);
      expect(code).toBe(0);

      expect(screen.filter((line) => line.includes('{"'))).toEqual([]);
      const barLines = screen.filter((line) => BAR.test(line));
      expect(barLines.length, screen.join('\n')).toBeGreaterThan(0);
      expect(barLines.filter((line) => !BAR_LINE.test(line))).toEqual([]);
      expect(barLines.at(-1)).toMatch(/ 100% \| 3000\/3000 docs/);

      const logLines = screen.filter((line) => LOG_LINE.test(line));
      expect(logLines.some((line) => line.includes('manifest written tasks=3 docs=3000'))).toBe(true);
      expect(logLines.filter((line) => line.includes('task done task=')).length).toBe(3);
      // Every line is a log line, the bar, or the summary after the bar.
      const lastBar = screen.findLastIndex((line) => BAR.test(line));
      expect(screen.slice(0, lastBar).filter((line) => !LOG_LINE.test(line) && !BAR.test(line))).toEqual([]);
      const summary = screen.slice(lastBar + 1);
      expect(summary[0]).toMatch(/^tasks: 3 done, 0 already done \(skipped\), 0 failed$/);
      expect(summary[1]).toBe('verify: OK: 3/3 tasks done');
      expect(summary.at(-1)).toMatch(/^run: [\d.]+ s; this invocation tokenized 3000 docs/);

      // Without -v the routine per-task lines stay in the JSON face only; the second run finds every task done.
      const again = await screenOf((await inTerminal(['run', '--embedded-default'], cwd)).raw, COLS, ROWS);
      expect(again.filter((line) => line.includes('task'))).toEqual([
        'tasks: 0 done, 3 already done (skipped), 0 failed',
        'verify: OK: 3/3 tasks done',
      ]);

      const piped = await cli(['run', '--embedded-default'], { cwd: freshDir('piped') });
      expect(piped.code).toBe(0);
      const stderrLines = piped.stderr.split('\n').filter((line) => line !== '');
      const entries = stderrLines.map((line) => JSON.parse(line) as { msg?: string; level?: number });
      expect(entries.map((e) => e.msg)).toContain('manifest written');
      expect(entries.filter((e) => e.msg === 'task done')).toHaveLength(3);
      expect(piped.stdout).toMatch(/^tasks: 3 done/);
    },
    CLI_TEST_TIMEOUT,
  );

  it(
    '--log-format json keeps JSON lines (and no bar) on a terminal; a bad --log-format is a usage error',
    async () => {
      const { code, raw } = await inTerminal(['run', '--embedded-default', '--log-format', 'json'], freshDir('json'));
      expect(code).toBe(0);
      const screen = await screenOf(raw, COLS, ROWS);
      expect(screen.filter((line) => BAR.test(line))).toEqual([]);
      expect(screen.filter((line) => line.startsWith('{"level":30,')).length).toBeGreaterThanOrEqual(7);

      const bad = await cli(['status', '--run', 'x.yaml', '--log-format', 'fancy']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain("argument 'fancy' is invalid. expected one of auto, json, pretty");
    },
    CLI_TEST_TIMEOUT,
  );
});
