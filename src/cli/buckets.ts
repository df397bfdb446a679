import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { InputError } from '../config/errors.js';
import { loadRunFile, type RunFile } from '../runs/run-file.js';
import { DEFAULT_MULTIPART_DAYS, DEFAULT_STATE_DAYS } from '../storage/retention.js';
import { positiveInt } from './options.js';

interface EnsureFlags {
  run: string[];
  lifecycle: boolean;
  expireStateDays: number;
  abortMultipartDays: number;
  json: boolean;
}

/**
 * `--run` takes run files or folders of them: the in-cluster Job points it at the mounted runs ConfigMap, so every
 * committed run is checked without a per-cluster patch.
 */
async function loadRuns(paths: readonly string[]): Promise<RunFile[]> {
  const files: string[] = [];
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (!info) throw new InputError(`${path}: no such run file or folder`);
    if (!info.isDirectory()) {
      files.push(path);
      continue;
    }
    // Mounted ConfigMaps also hold ..data symlinks: only visible *.yaml / *.yml files are run files.
    const names = (await readdir(path)).filter((n) => /^[^.].*\.ya?ml$/.test(n) && n !== 'kustomization.yaml').sort();
    if (names.length === 0) throw new InputError(`${path}: no run files (*.yaml) in this folder`);
    files.push(...names.map((n) => join(path, n)));
  }
  return Promise.all(files.map((f) => loadRunFile(f)));
}

export function registerBuckets(program: Command): void {
  const buckets = program.command('buckets').description('object-store buckets of runs');
  buckets
    .command('ensure')
    .description(
      'create the buckets of the runs (dumps, manifests, outputs), add missing lifecycle rules, and check that the configured ' +
        'credentials can write, read, list and delete under each prefix (a probe object under <prefix>_probe/); ' +
        'exit 0 all good, 1 something missing, 2 bad input',
    )
    .requiredOption('--run <file-or-folder>', 'a run file, or a folder of run files (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--no-lifecycle', 'do not add lifecycle rules')
    .option('--expire-state-days <n>', 'days after which state/ attempt records expire (only when the rule is missing)', positiveInt, DEFAULT_STATE_DAYS)
    .option('--abort-multipart-days <n>', 'days after which incomplete multipart uploads are aborted (only when the rule is missing)', positiveInt, DEFAULT_MULTIPART_DAYS)
    .option('--json', 'print the report as JSON', false)
    .action(async (flags: EnsureFlags) => {
      // The S3 SDK loads only for this command (see storage/lazy.ts).
      const [{ ensureBuckets, formatEnsureReport }, { s3Client }] = await Promise.all([import('../storage/buckets.js'), import('../storage/s3.js')]);
      const runs = await loadRuns(flags.run);
      const report = await ensureBuckets(s3Client(), runs, {
        lifecycle: flags.lifecycle,
        stateDays: flags.expireStateDays,
        multipartDays: flags.abortMultipartDays,
      });
      process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + '\n' : formatEnsureReport(report));
      if (!report.ok) process.exitCode = 1;
    });
}
