import { InvalidArgumentError, type Command } from 'commander';
import { UsageError } from '../errors/index.js';
import { configureHttp } from '../storage/index.js';
import { formatStageReport, parseSha256, readSha256List, stageDump } from '../stage/index.js';
import { positiveInt } from './options.js';

function sha256Hex(value: string): string {
  try {
    return parseSha256(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

export function registerStage(program: Command): void {
  program
    .command('stage')
    .description(
      'mirror a dump (a .json.gz file, or a folder of .json.bz2 parts with _SUCCESS) into a path or s3://: resumable, ' +
        "checked by size, the format's CRCs and an optional sha256; a re-run skips files already staged",
    )
    .requiredOption(
      '--from <url>',
      'the dump: http(s)://, s3:// or a path; a file, or a parts folder (listed from its index page over http)',
    )
    .requiredOption('--to <uri>', 'a path or s3:// folder (or, for a single file, its full destination name)')
    .option('--sha256 <hex>', 'expected sha256 of a single dump file', sha256Hex)
    .option('--sha256-file <uri>', 'expected sha256 per file, as sha256sum prints them ("HEX  name" lines)')
    .option(
      '--user-agent <ua>',
      'User-Agent with a contact, e.g. "mirror-bot/1.0 (you@example.org)" (default: $TOKENIZE_WIKI_USER_AGENT)',
    )
    .option(
      '--parallel <n>',
      'files transferred at once; connections per source host stay capped by $TOKENIZE_WIKI_HTTP_CONNECTIONS (2 unless set)',
      positiveInt,
      2,
    )
    .option('--allow-incomplete-dump', 'stage a parts folder that has no _SUCCESS (and write none)', false)
    .option('--json', 'print the report as JSON', false)
    .action(
      async (flags: {
        from: string;
        to: string;
        sha256?: string;
        sha256File?: string;
        userAgent?: string;
        parallel: number;
        allowIncompleteDump: boolean;
        json: boolean;
      }) => {
        if (flags.sha256 !== undefined && flags.sha256File !== undefined)
          throw new UsageError('give --sha256 or --sha256-file, not both');
        if (flags.userAgent !== undefined) {
          if (flags.userAgent.trim() === '') throw new UsageError('--user-agent: must not be empty');
          configureHttp({ userAgent: flags.userAgent });
        }
        const report = await stageDump({
          from: flags.from,
          to: flags.to,
          sha256: flags.sha256,
          sha256ByName: flags.sha256File === undefined ? undefined : await readSha256List(flags.sha256File),
          parallel: flags.parallel,
          allowIncompleteDump: flags.allowIncompleteDump,
          userAgentWithContact: flags.userAgent !== undefined || process.env.TOKENIZE_WIKI_USER_AGENT !== undefined,
        });
        process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + '\n' : formatStageReport(report));
        if (!report.ok) process.exitCode = 1;
      },
    );
}
