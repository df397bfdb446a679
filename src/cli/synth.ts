import type { Command } from 'commander';
import { UsageError } from '../errors/index.js';
import { synthLegacyDump, synthPartsDump } from '../dumps/index.js';
import { nonNegativeInt, positiveInt } from './options.js';

export function registerSynth(program: Command): void {
  program
    .command('synth')
    .description(
      'write a realistic synthetic CirrusSearch dump: a legacy .json.gz file, or a folder of .json.bz2 parts with _SUCCESS',
    )
    .requiredOption('--docs <n>', 'number of pages', positiveInt)
    .requiredOption('--out <path>', 'FILE.json.gz (legacy layout) or a folder (current layout, with --parts)')
    .option('--seed <n>', 'random seed (same seed, same bytes)', nonNegativeInt, 1)
    .option('--members <k>', 'gzip members in a legacy file', positiveInt, 1)
    .option('--parts <k>', 'write the current layout: K .json.bz2 parts in the --out folder', positiveInt)
    .option('--wiki <name>', 'wiki name in docs and file names', 'synthwiki')
    .option('--big-page-mb <mb>', 'add one page with this many MB of text', nonNegativeInt, 0)
    .action(
      async (o: {
        docs: number;
        out: string;
        seed: number;
        members: number;
        parts?: number;
        wiki: string;
        bigPageMb: number;
      }) => {
        const options = {
          docs: o.docs,
          seed: o.seed,
          wiki: o.wiki,
          members: o.members,
          parts: o.parts ?? 1,
          bigPageMb: o.bigPageMb,
        };
        if (o.parts !== undefined) {
          const files = await synthPartsDump(o.out, options);
          process.stdout.write(`wrote ${files.length} parts and _SUCCESS to ${o.out}\n`);
        } else {
          if (!o.out.endsWith('.json.gz'))
            throw new UsageError(
              '--out: a legacy dump file must end in .json.gz (or pass --parts K for a folder of .json.bz2 parts)',
            );
          await synthLegacyDump(o.out, options);
          process.stdout.write(`wrote ${o.out}\n`);
        }
      },
    );
}
