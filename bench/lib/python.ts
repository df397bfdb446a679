import { join } from 'node:path';
import { ensureRayVenv, tiktokenCacheFor } from '../../test/harness/ray.js';

export type PythonEnv = { python: string; env: NodeJS.ProcessEnv; venvDir: string } | { skip: string };

let cached: Promise<PythonEnv> | undefined;

/**
 * The test harness's cached Ray venv (ray and tiktoken from PyPI, under ~/.cache/tokenize-wiki/) with its offline
 * TIKTOKEN_CACHE_DIR; installed on first use. A failed install becomes a skip line, not a failed bench.
 */
export function pythonEnv(): Promise<PythonEnv> {
  cached ??= (async (): Promise<PythonEnv> => {
    try {
      const venvDir = await ensureRayVenv();
      return {
        python: join(venvDir, 'bin', 'python'),
        venvDir,
        env: { ...process.env, TIKTOKEN_CACHE_DIR: tiktokenCacheFor(venvDir) },
      };
    } catch (err) {
      return {
        skip: `cannot prepare the Ray venv with tiktoken: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
      };
    }
  })();
  return cached;
}
