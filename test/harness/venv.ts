import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureTiktokenCache, pythonTiktokenHashes } from './tiktoken-cache.js';
import { run, withLock } from './proc.js';

const STAMP = '.tokenize-wiki-stamp';

/**
 * A Python venv at `dir` with `requirements` pip-installed, reused while its stamp file holds `stamp`; built under a
 * lock, so parallel test processes (and other checkouts sharing the cache) build it once.
 */
export async function ensureVenv(
  dir: string,
  stamp: string,
  requirements: readonly string[],
  timeoutMs = 30 * 60_000,
): Promise<string> {
  const ready = (): boolean => existsSync(join(dir, STAMP)) && readFileSync(join(dir, STAMP), 'utf8') === stamp;
  if (ready()) return dir;
  return withLock(`${dir}.lock`, timeoutMs, async () => {
    if (ready()) return dir;
    rmSync(dir, { recursive: true, force: true });
    await run(process.env.TW_PYTHON || 'python3', ['-m', 'venv', dir]);
    await run(join(dir, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', ...requirements]);
    writeFileSync(join(dir, STAMP), stamp);
    return dir;
  });
}

/** TIKTOKEN_CACHE_DIR for the venv's Python tiktoken, checked against the hashes that tiktoken pins. */
export function tiktokenCacheFor(venvDir: string): string {
  const lib = join(venvDir, 'lib');
  const python = readdirSync(lib).find((name) => name.startsWith('python'));
  if (python === undefined) throw new Error(`${lib}: no python* folder; remove ${venvDir} to rebuild the venv`);
  return ensureTiktokenCache(
    pythonTiktokenHashes(join(lib, python, 'site-packages', 'tiktoken_ext', 'openai_public.py')),
  );
}
