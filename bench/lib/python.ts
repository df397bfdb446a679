import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

export type PythonEnv = { python: string; env: NodeJS.ProcessEnv } | { skip: string };

/** The cached Ray venv from the test harness (it has tiktoken and an offline TIKTOKEN_CACHE_DIR). */
export async function pythonEnv(): Promise<PythonEnv> {
  const dir = join(repoRoot, 'test', 'harness');
  if (!existsSync(dir)) return { skip: 'test/harness (cached Ray venv with tiktoken) is not in the tree yet' };
  return { skip: `test/harness has no venv helper the bench knows (${readdirSync(dir).join(', ')})` };
}
