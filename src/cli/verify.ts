import type { Command } from 'commander';
import { readManifest } from '../manifest/index.js';
import { completeRun, formatVerifyReport } from '../tasks/index.js';
import { outputPrefixOf } from './output-prefix.js';

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('check every doc of the manifest is in exactly one shard; on success write _SUCCESS with totals')
    .requiredOption('--manifest-uri <uri>', 'the manifest')
    .option('--output-prefix <uri>', "the run's output prefix")
    .option('--output-dir <path>', 'local alias of --output-prefix')
    .option('--deep', 're-read every shard (sha256, rows, page ids)', false)
    .option('--json', 'print the report as JSON', false)
    .action(
      async (flags: {
        manifestUri: string;
        outputPrefix?: string;
        outputDir?: string;
        deep: boolean;
        json: boolean;
      }) => {
        const manifest = await readManifest(flags.manifestUri);
        const report = await completeRun(manifest, outputPrefixOf(flags), { deep: flags.deep });
        process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + '\n' : formatVerifyReport(report));
        if (!report.ok) process.exitCode = 1;
      },
    );
}
