import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheRoot } from '../../test/harness/paths.js';

export const benchDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = resolve(benchDir, '..');
/** The real CirrusSearch sample shared by all sessions; never copied into the repo. */
export const realSamplePath = resolve(
  repoRoot,
  'test',
  'fixtures',
  'simplewikibooks',
  'simplewikibooks-sample-200.json.gz',
);

/** Generated inputs are cached here so repeated bench runs skip the (slow) bzip2 compression. */
export function benchCacheDir(...parts: string[]): string {
  const dir = join(cacheRoot(), 'bench', ...parts);
  mkdirSync(dir, { recursive: true });
  return dir;
}
