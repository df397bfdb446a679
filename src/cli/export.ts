import type { Command } from 'commander';
import { readManifest } from '../manifest/index.js';
import { exportRun } from '../tasks/index.js';
import { outputPrefixOf } from './output-prefix.js';
import { positiveInt } from './options.js';

interface ExportFlags {
  manifestUri: string;
  outputPrefix?: string;
  outputDir?: string;
  to: string;
  maxPartBytes?: number;
  json: boolean;
}

export function registerExport(program: Command): void {
  program
    .command('export')
    .description(
      "concatenate a finished megatron run's shards, in manifest order, into one Megatron-LM dataset (<to>.bin, <to>.idx, " +
        '<to>.meta.jsonl.gz) or parts of whole shards; streamed, resumable (<to>.export.json records finished parts), any store to any store',
    )
    .requiredOption('--manifest-uri <uri>', "the run's manifest")
    .option('--output-prefix <uri>', "the run's output prefix")
    .option('--output-dir <path>', 'local alias of --output-prefix')
    .requiredOption(
      '--to <uri>',
      'dataset prefix to write, e.g. s3://bucket/datasets/enwiki-cl100k (a path, file:// or s3://)',
    )
    .option(
      '--max-part-bytes <n>',
      "cap on each part's .bin: write <to>_00000.*, <to>_00001.*, … of whole shards",
      positiveInt,
    )
    .option('--json', 'print the export record as JSON', false)
    .action(async (flags: ExportFlags) => {
      const manifest = await readManifest(flags.manifestUri);
      const record = await exportRun({
        manifest,
        manifestUri: flags.manifestUri,
        outputPrefix: outputPrefixOf(flags),
        to: flags.to.replace(/\/+$/, ''),
        maxPartBytes: flags.maxPartBytes,
        onPart: (part, kept) => {
          if (!flags.json)
            process.stdout.write(
              `part ${part.index}: ${part.prefix} (${part.sequences} sequences, ${part.bin.bytes} bytes of tokens) ${kept ? 'kept from an earlier export' : 'written'}\n`,
            );
        },
      });
      process.stdout.write(
        flags.json
          ? JSON.stringify(record, null, 2) + '\n'
          : `export: ${record.parts.length} part(s), ${record.sequences} sequences, ${record.tokens} tokens (${record.dtype}, ${record.encoding})\n`,
      );
    });
}
