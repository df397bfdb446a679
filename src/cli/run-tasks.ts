import type { Command } from 'commander';
import { readManifest, manifestFolderOf, type Manifest, type Task } from '../manifest/index.js';
import { rootLogger, type Logger, Progress } from '../observability/index.js';
import {
  runTasks,
  selectTasks,
  withStorageRetry,
  type RunTasksSummary,
  DEFAULT_STORAGE_RETRY,
  formatFailedTask,
  type StorageRetry,
} from '../tasks/index.js';
import { InputError } from '../errors/index.js';
import type { OutputFormat } from '../output/index.js';
import {
  compressionLevel,
  defaultConcurrency,
  nonNegativeInt,
  outputFormat,
  positiveInt,
  taskList,
} from './options.js';
import { outputPrefixOf } from './output-prefix.js';

export interface ExecFlags {
  outputPrefix?: string;
  outputDir?: string;
  concurrency: number;
  maxBadDocs: number;
  compressionLevel: number;
  storageRetrySeconds: number;
}

/** Flags of task execution: shared by `run-tasks` and `run`. */
export function addExecFlags(command: Command): Command {
  return command
    .option('--output-prefix <uri>', 'where shards/, markers/ and _SUCCESS go (path, file://, s3://)')
    .option('--output-dir <path>', 'local alias of --output-prefix')
    .option('--concurrency <n>', 'tokenizer worker threads (default: all CPUs)', positiveInt, defaultConcurrency())
    .option('--max-bad-docs <n>', 'malformed docs tolerated per task (counted in its marker)', nonNegativeInt, 0)
    .option(
      '--compression-level <n>',
      'gzip level of shards (1 is fastest; tokenizing dominates either way)',
      compressionLevel,
      1,
    )
    .option(
      '--storage-retry-seconds <n>',
      'how long a task waits out an unreachable or throttling object store (retrying with backoff) before it fails',
      nonNegativeInt,
      DEFAULT_STORAGE_RETRY.budgetMs / 1000,
    );
}

const storageRetryOf = (flags: ExecFlags): StorageRetry => ({
  ...DEFAULT_STORAGE_RETRY,
  budgetMs: flags.storageRetrySeconds * 1000,
});

/** Run tasks with a progress bar (or progress log lines) and print the summary: shared by `run-tasks` and `run`. */
export async function runTasksWithProgress(
  tasks: readonly Task[],
  manifest: Manifest,
  manifestUri: string,
  outputPrefix: string,
  flags: ExecFlags,
  logger: Logger,
): Promise<RunTasksSummary> {
  const progress = new Progress(
    tasks.reduce((n, t) => n + t.doc_count, 0),
    logger,
  );
  const summary = await runTasks(tasks, {
    manifest,
    manifestFolder: manifestFolderOf(manifestUri),
    outputPrefix,
    logger,
    concurrency: flags.concurrency,
    maxBadDocs: flags.maxBadDocs,
    compressionLevel: flags.compressionLevel,
    storageRetry: storageRetryOf(flags),
    onBatch: (delta) => progress.add(delta),
  }).finally(() => progress.stop());
  printTaskSummary(summary);
  return summary;
}

function printTaskSummary(summary: RunTasksSummary): void {
  const lines = [
    `tasks: ${summary.done.length} done, ${summary.skipped.length} already done (skipped), ${summary.failed.length} failed`,
  ];
  for (const failure of summary.failed) lines.push(formatFailedTask({ taskId: failure.task_id, error: failure.error }));
  process.stdout.write(lines.join('\n') + '\n');
}

export function registerRunTasks(program: Command): void {
  addExecFlags(
    program
      .command('run-tasks')
      .description('execute tasks of a manifest (the Ray job entrypoint): skip those with a marker'),
  )
    .requiredOption('--manifest-uri <uri>', 'the manifest')
    .option('--tasks <list>', 'comma-separated task ids (default: all)', taskList)
    .option('--run-id <id>', 'run id to put on every log line (the submitter passes it)')
    .option(
      '--format <name>',
      "refuse to run unless the manifest's output format is this one (jsonl or megatron)",
      outputFormat,
    )
    .action(
      async (flags: ExecFlags & { manifestUri: string; tasks?: string[]; runId?: string; format?: OutputFormat }) => {
        const outputPrefix = outputPrefixOf(flags);
        const logger = rootLogger.child({
          ...(flags.runId === undefined ? {} : { run_id: flags.runId }),
          manifest: flags.manifestUri,
          job_id: process.env.RAY_JOB_SUBMISSION_ID ?? process.env.RAY_JOB_ID,
        });
        // A job started while the object store is down waits for it, as its tasks do, instead of failing at once.
        const manifest = await withStorageRetry(
          { what: 'the manifest read', fields: {}, logger, retry: storageRetryOf(flags) },
          () => readManifest(flags.manifestUri),
        );
        if (flags.format !== undefined && flags.format !== manifest.output_format) {
          throw new InputError(
            `--format ${flags.format}: the manifest ${flags.manifestUri} was made for output format ${manifest.output_format}; make a manifest with --format ${flags.format} (and another output prefix)`,
          );
        }
        const tasks = selectTasks(manifest, flags.tasks);
        const summary = await runTasksWithProgress(tasks, manifest, flags.manifestUri, outputPrefix, flags, logger);
        if (summary.failed.length > 0) process.exitCode = 1;
      },
    );
}
