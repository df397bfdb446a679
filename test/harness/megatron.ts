import { join } from 'node:path';
import { cacheRoot, harnessVersions } from './paths.js';
import { run } from './proc.js';
import type { Install } from './announce.js';
import { ensureVenv, tiktokenCacheFor, venvInstall, type VenvSpec } from './venv.js';

/**
 * A venv with Megatron-LM's own reader (`megatron-core`, and the torch it imports) and Python tiktoken, under the
 * cache: our megatron output is checked with the code a trainer runs, not with our own decoder.
 */
function megatronVenv(): VenvSpec {
  const { megatronCore, torch } = harnessVersions();
  const requirements = [`megatron-core==${megatronCore}`, `torch==${torch}`, 'tiktoken'];
  return {
    dir: join(cacheRoot(), `megatron-core-${megatronCore}`),
    stamp: JSON.stringify({ requirements }),
    requirements,
    // Gigabytes of wheels on a shared 2-core machine: allow a slow first build.
    timeoutMs: 60 * 60_000,
  };
}

export async function ensureMegatronVenv(): Promise<string> {
  return ensureVenv(megatronVenv());
}

export const megatronVenvInstall = (): Install =>
  venvInstall(`Megatron-LM reader venv (megatron-core, torch)`, '5-15 min', megatronVenv());

/** Run a Python script of the repo with the venv's interpreter, offline tiktoken and no GPU; returns its stdout. */
export async function megatronPython(venvDir: string, script: string, args: readonly string[]): Promise<string> {
  const env = { ...process.env, TIKTOKEN_CACHE_DIR: tiktokenCacheFor(venvDir), CUDA_VISIBLE_DEVICES: '' };
  return run(join(venvDir, 'bin', 'python'), [script, ...args], { env });
}
