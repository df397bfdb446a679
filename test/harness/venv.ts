import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Install } from './announce.js';
import { ensureTiktokenCache, pythonTiktokenHashes } from './tiktoken-cache.js';
import { run, withLock } from './proc.js';

const STAMP = '.tokenize-wiki-stamp';

/** A Python venv of the cache: its folder, the stamp that says what it holds, and what pip installs into it. */
export interface VenvSpec {
  dir: string;
  stamp: string;
  requirements: readonly string[];
  timeoutMs?: number;
}

/** Whether the venv is built and holds what its stamp says. */
export function venvReady({ dir, stamp }: VenvSpec): boolean {
  return existsSync(join(dir, STAMP)) && readFileSync(join(dir, STAMP), 'utf8') === stamp;
}

/**
 * The venv of `spec`, reused while its stamp file matches; built under a lock, so parallel test processes (and other
 * checkouts sharing the cache) build it once. `log` gets a line per step.
 */
export async function ensureVenv(spec: VenvSpec, log: (line: string) => void = () => {}): Promise<string> {
  const { dir, requirements, timeoutMs = 30 * 60_000 } = spec;
  if (venvReady(spec)) return dir;
  return withLock(`${dir}.lock`, timeoutMs, async () => {
    if (venvReady(spec)) return dir;
    rmSync(dir, { recursive: true, force: true });
    log(`python3 -m venv ${dir}`);
    await run(process.env.TW_PYTHON || 'python3', ['-m', 'venv', dir]);
    log(`pip install ${requirements.join(' ')}`);
    await run(join(dir, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', ...requirements]);
    writeFileSync(join(dir, STAMP), spec.stamp);
    return dir;
  });
}

/** A venv as an announced one-time install (see announce.ts). */
export function venvInstall(name: string, estimate: string, spec: VenvSpec): Install {
  return {
    name,
    where: spec.dir,
    estimate,
    cached: () => venvReady(spec),
    ensure: (log) => ensureVenv(spec, log),
  };
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
