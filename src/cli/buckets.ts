import type { Command } from 'commander';
import { loadRunFile, runFilePaths, DEFAULT_MULTIPART_DAYS, DEFAULT_STATE_DAYS } from '../runs/index.js';
import { positiveInt } from './options.js';

interface EnsureFlags {
  run: string[];
  lifecycle: boolean;
  expireStateDays: number;
  abortMultipartDays: number;
  json: boolean;
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
    .requiredOption(
      '--run <file-or-folder>',
      'a run file, or a folder of run files (repeatable)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--no-lifecycle', 'do not add lifecycle rules')
    .option(
      '--expire-state-days <n>',
      'days after which state/ attempt records expire (only when the rule is missing)',
      positiveInt,
      DEFAULT_STATE_DAYS,
    )
    .option(
      '--abort-multipart-days <n>',
      'days after which incomplete multipart uploads are aborted (only when the rule is missing)',
      positiveInt,
      DEFAULT_MULTIPART_DAYS,
    )
    .option('--json', 'print the report as JSON', false)
    .action(async (flags: EnsureFlags) => {
      // The S3 SDK loads only for this command (see storage/lazy.ts).
      const [{ ensureBuckets, formatEnsureReport }, { s3Client }] = await Promise.all([
        import('../runs/buckets.js'),
        import('../storage/s3.js'),
      ]);
      // A folder is the mounted runs ConfigMap: every committed run is checked without a per-cluster patch.
      const runs = await Promise.all((await runFilePaths(flags.run)).map((f) => loadRunFile(f)));
      const report = await ensureBuckets(s3Client(), runs, {
        lifecycle: flags.lifecycle,
        stateDays: flags.expireStateDays,
        multipartDays: flags.abortMultipartDays,
      });
      process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + '\n' : formatEnsureReport(report));
      if (!report.ok) process.exitCode = 1;
    });
}
