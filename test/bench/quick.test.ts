import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../core/helpers.js';
import { repoRoot } from '../harness/paths.js';
import { exec } from '../harness/proc.js';

interface QuickResults {
  complete: boolean;
  sections: Array<{ section: string; notes: string[]; tables: unknown[] }>;
  targets: Array<{ figure: string; measured: number | null }>;
}

/** `npm run bench -- --quick` is CI's check that every part of the benchmark still runs. */
describe('npm run bench -- --quick', () => {
  const dir = tempDir('bench-quick');
  afterAll(() => removeDir(dir));

  // One retry, kept until CI shows the cause is gone: a section failed in about one CI run of five under the suite's
  // parallel load. One failure printed its cause (predecessor.py's result line lost when a Ray thread started during
  // interpreter shutdown; it now flushes and shuts Ray down itself). A failed attempt prints its failures, so a
  // passing retry still leaves them in the log.
  it('runs every section on tiny inputs and measures every target', { timeout: 900_000, retry: 1 }, async () => {
    const out = join(dir, 'quick.json');
    rmSync(out, { force: true }); // a retry must not read the failed attempt's results
    const { code, stdout, stderr } = await exec('node', ['--import', 'tsx', 'bench/run.ts', '--quick', '--out', out], {
      cwd: repoRoot,
    });
    if (code !== 0) console.error(`bench --quick attempt: exit ${code}\n${(stdout + stderr).slice(-3000)}`);
    const results = JSON.parse(readFileSync(out, 'utf8')) as QuickResults;
    // A failed section is named in its notes; the output's tail alone showed only the targets table.
    const failures = results.sections.flatMap((s) =>
      s.notes.filter((n) => /^(FAILED|MISMATCH|SKIP)/.test(n)).map((n) => `${s.section}: ${n}`),
    );
    if (failures.length > 0) console.error(`bench --quick attempt:\n${failures.join('\n')}`);
    expect(code, [...failures, (stdout + stderr).slice(-2000)].join('\n')).toBe(0);
    expect(results.complete).toBe(true);
    expect(results.sections.map((s) => s.section)).toEqual([
      'tokenizer',
      'decode',
      'pipeline',
      'scaling',
      'memory',
      'baseline',
      'plain-python',
      'random-access',
    ]);
    for (const s of results.sections) {
      // lbzip2 is an optional contender (a SKIP line where it is not installed); nothing else may fail or be skipped.
      expect(
        s.notes.filter((n) => /^(FAILED|MISMATCH)/.test(n) || (/^SKIP/.test(n) && !/lbzip2/.test(n))),
        s.section,
      ).toEqual([]);
      expect(s.tables.length, s.section).toBeGreaterThan(0);
    }
    for (const t of results.targets) expect(t.measured, t.figure).not.toBeNull();
  });
});
