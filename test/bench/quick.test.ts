import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../harness/paths.js';
import { removeDir, tempDir } from '../core/helpers.js';

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
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn('node', ['--import', 'tsx', 'bench/run.ts', '--quick', '--out', out], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.on('close', (c) => resolve({ code: c, output }));
    });
    expect(code, output.slice(-3000)).toBe(0);
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
