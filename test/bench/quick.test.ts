import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../core/helpers.js';
import { repoRoot } from '../harness/paths.js';
import { run } from '../kube/harness.js';

interface QuickResults {
  complete: boolean;
  sections: Array<{ section: string; notes: string[]; tables: unknown[] }>;
  targets: Array<{ figure: string; measured: number | null }>;
}

/** Issue 7: `npm run bench -- --quick` is CI's check that every part of the benchmark still runs. */
describe('npm run bench -- --quick', () => {
  const dir = tempDir('bench-quick');
  afterAll(() => removeDir(dir));

  it('runs every section on tiny inputs and measures every target', async () => {
    const out = join(dir, 'quick.json');
    const { code, stdout, stderr } = await run('node', ['--import', 'tsx', 'bench/run.ts', '--quick', '--out', out], { cwd: repoRoot });
    expect(code, (stdout + stderr).slice(-3000)).toBe(0);
    const results = JSON.parse(readFileSync(out, 'utf8')) as QuickResults;
    expect(results.complete).toBe(true);
    expect(results.sections.map((s) => s.section)).toEqual(['tokenizer', 'decode', 'pipeline', 'scaling', 'memory', 'baseline', 'random-access']);
    for (const s of results.sections) {
      // lbzip2 is an optional contender (a SKIP line where it is not installed); nothing else may fail or be skipped.
      expect(s.notes.filter((n) => /^(FAILED|MISMATCH)/.test(n) || (/^SKIP/.test(n) && !/lbzip2/.test(n))), s.section).toEqual([]);
      expect(s.tables.length, s.section).toBeGreaterThan(0);
    }
    for (const t of results.targets) expect(t.measured, t.figure).not.toBeNull();
  }, 900_000);
});
