/** The commands a job runs: the same CLI a person would type (so a job can be replayed by hand). */
import { shellQuote } from '../util/index.js';

/** The command a job runs: the same `run-tasks` a person would type, with the CPUs the job was granted. */
export function runTasksEntrypoint(options: {
  manifestUri: string;
  outputPrefix: string;
  tasks: readonly string[];
  cpus: number;
  runId?: string;
}): string {
  return [
    'tokenize-wiki',
    'run-tasks',
    // The run id only labels the runner's log lines (so logs of one run can be found together).
    ...(options.runId === undefined ? [] : ['--run-id', options.runId]),
    '--manifest-uri',
    options.manifestUri,
    '--output-prefix',
    options.outputPrefix,
    '--tasks',
    options.tasks.join(','),
    '--concurrency',
    String(options.cpus),
  ]
    .map(shellQuote)
    .join(' ');
}

/** The command of a manifest job: `tokenize-wiki manifest` with the run's planning settings. */
export function manifestEntrypoint(run: {
  dumps: readonly string[];
  manifest_uri: string;
  max_docs_per_task: number;
  text_field: string;
  encoding: string;
  append_eot: boolean;
  format: string;
}): string {
  const words = [
    'tokenize-wiki',
    'manifest',
    ...run.dumps.flatMap((d) => ['--dump', d]),
    '--manifest-uri',
    run.manifest_uri,
  ];
  words.push(
    '--max-docs-per-task',
    String(run.max_docs_per_task),
    '--text-field',
    run.text_field,
    '--encoding',
    run.encoding,
  );
  if (run.append_eot) words.push('--append-eot');
  words.push('--format', run.format);
  return words.map(shellQuote).join(' ');
}
