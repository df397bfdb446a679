import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './harness/paths.js';

// A user's clone has nothing beside it: no code, test or bench may reach a path outside the repository
// (the real sample lives in test/fixtures/, with its attribution and licence).
describe('the repository is self-contained', () => {
  it('no tracked source names a folder beside the clone', () => {
    const files = execFileSync('git', ['ls-files', '*.ts', '*.mts', '*.js', '*.py', '*.sh', '.ci/*'], {
      cwd: repoRoot,
      encoding: 'utf8',
    })
      .split('\n')
      .filter((f) => f.length > 0 && f !== 'test/self-contained.test.ts');
    const offenders = files.filter((f) => {
      const text = readFileSync(join(repoRoot, f), 'utf8');
      return /\.\.\/shared\b|'\.\.',\s*'shared'/.test(text);
    });
    expect(offenders).toEqual([]);
  });
});
