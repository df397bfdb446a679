import type { Command } from 'commander';
import { createManifest, DEFAULT_MAX_DOCS_PER_TASK, DEFAULT_MAX_TASK_BYTES } from '../manifest/index.js';
import { rootLogger } from '../observability/index.js';
import type { OutputFormat } from '../output/index.js';
import type { EncodingName } from '../tokenize/index.js';
import { collect, encodingName, outputFormat, positiveInt } from './options.js';

export interface PlanFlags {
  dump: string[];
  maxDocsPerTask: number;
  maxTaskMb: number;
  textField: string;
  encoding: EncodingName;
  appendEot: boolean;
  format: OutputFormat;
  allowIncompleteDump: boolean;
}

/** Flags that decide the tasks of a run: shared by `manifest` and `run`. */
export function addPlanFlags(command: Command): Command {
  return command
    .requiredOption('--dump <uri>', 'dump file, parts folder or prefix (repeatable)', collect)
    .option('--max-docs-per-task <n>', 'docs per task (sensible: 1000-5000)', positiveInt, DEFAULT_MAX_DOCS_PER_TASK)
    .option(
      '--max-task-mb <mb>',
      "cap on a task's uncompressed MB",
      positiveInt,
      DEFAULT_MAX_TASK_BYTES / (1024 * 1024),
    )
    .option('--text-field <field>', 'document field to tokenize (source_text for wikitext)', 'text')
    .option('--encoding <name>', 'tiktoken encoding', encodingName, 'cl100k_base')
    .option('--append-eot', 'append <|endoftext|> to every page', false)
    .option(
      '--format <name>',
      'what tasks write: jsonl (rows with ids) or megatron (a .bin/.idx dataset per task)',
      outputFormat,
      'jsonl',
    )
    .option('--allow-incomplete-dump', 'accept a parts folder without _SUCCESS', false);
}

export function planOptions(flags: PlanFlags) {
  return {
    textField: flags.textField,
    encoding: flags.encoding,
    appendEot: flags.appendEot,
    outputFormat: flags.format,
    maxDocsPerTask: flags.maxDocsPerTask,
    maxTaskBytes: flags.maxTaskMb * 1024 * 1024,
    allowIncompleteDump: flags.allowIncompleteDump,
  };
}

export function registerManifest(program: Command): void {
  addPlanFlags(program.command('manifest').description('scan dumps once and write the manifest of tasks'))
    .requiredOption('--manifest-uri <uri>', 'where to write manifest.json (index files go beside it)')
    .action(async (flags: PlanFlags & { manifestUri: string }) => {
      const manifest = await createManifest(flags.dump, flags.manifestUri, planOptions(flags), rootLogger);
      process.stdout.write(
        `manifest ${flags.manifestUri}: ${manifest.totals.dumps} dumps, ${manifest.totals.tasks} tasks, ${manifest.totals.docs} docs\n`,
      );
    });
}
