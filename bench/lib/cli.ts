import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runMeasured, spawnCollect, type ProcessUsage, type RunOptions } from './measure.js';
import { repoRoot } from './paths.js';

const binPath = join(repoRoot, 'bin', 'tokenize-wiki.js');
const mainJs = join(repoRoot, 'dist', 'cli', 'main.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

let built: Promise<string | null> | undefined;

/**
 * The bench measures the program as users run it (bin/tokenize-wiki.js over dist/), building dist/ when src/ is newer.
 * Returns a skip reason when the CLI is not there yet or does not build.
 */
export function ensureCli(): Promise<string | null> {
  built ??= (async () => {
    if (!existsSync(join(repoRoot, 'src', 'cli', 'main.ts'))) return 'src/cli/main.ts is not in the tree yet';
    if (!existsSync(mainJs) || statSync(mainJs).mtimeMs < newestMtime(join(repoRoot, 'src'))) {
      try {
        await spawnCollect('npm', ['run', 'build']);
      } catch (err) {
        return `npm run build failed: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
    return null;
  })();
  return built;
}

let profileDir: string | undefined;

/** With `--cpu-prof DIR`, every measured CLI run also writes V8 CPU profiles (main thread and workers) to DIR. */
export function setCpuProfileDir(dir: string | undefined): void {
  profileDir = dir;
}

/** Run one tokenize-wiki command to completion, measuring wall, CPU (all threads) and peak RSS. */
export function runCli(args: readonly string[], opts: RunOptions = {}): Promise<ProcessUsage> {
  const prof = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  return runMeasured(process.execPath, [...prof, binPath, ...args], opts);
}

/** Run one tokenize-wiki command and return its stdout (for commands whose output the bench reads). */
export function cliOutput(args: readonly string[], opts: RunOptions = {}): Promise<string> {
  return spawnCollect(process.execPath, [binPath, ...args], opts);
}
