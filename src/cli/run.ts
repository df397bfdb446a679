import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors/index.js';
import { synthLegacyDump, synthPartsDump } from '../dumps/index.js';
import { MANIFEST_KEY } from '../output/index.js';
import { ensureManifest } from '../manifest/index.js';
import { rootLogger } from '../observability/index.js';
import { joinUri } from '../storage/index.js';
import { completeRun, formatVerifyReport } from '../tasks/index.js';
import { addPlanFlags, planOptions, type PlanFlags } from './manifest.js';
import { outputPrefixOf } from './output-prefix.js';
import { addExecFlags, runTasksWithProgress, type ExecFlags } from './run-tasks.js';

type RunFlags = PlanFlags & ExecFlags & { manifestUri?: string; embeddedDefault: boolean };

/** The embedded default: a generated sample in both dump layouts, under .tokenize-wiki/ in the working directory. */
async function embeddedDefault(): Promise<{ dumps: string[]; outputPrefix: string }> {
  const root = resolve('.tokenize-wiki/embedded');
  const legacy = `${root}/samplewiki-20261122-cirrussearch-content.json.gz`;
  const parts = `${root}/cirrus_search_index/20261122/index_name=samplewiki_content`;
  const common = { seed: 7, wiki: 'samplewiki', bigPageMb: 0 };
  await mkdir(root, { recursive: true });
  if (!existsSync(legacy)) await synthLegacyDump(legacy, { ...common, docs: 1500, members: 2, parts: 1 });
  if (!existsSync(`${parts}/_SUCCESS`))
    await synthPartsDump(parts, { ...common, seed: 8, docs: 1500, members: 1, parts: 2 });
  return { dumps: [legacy, parts], outputPrefix: `${root}/output` };
}

export function registerRun(program: Command): void {
  const command = program
    .command('run')
    .description('the one-machine default: manifest + all tasks + verify, locally with all cores')
    .option('--manifest-uri <uri>', 'manifest location (default: <output-prefix>/manifest.json)')
    .option(
      '--embedded-default',
      'generate a sample dump in both layouts and process it (what `npm start` does)',
      false,
    );
  addExecFlags(addPlanFlags(command));
  // With --embedded-default the dump is generated, so --dump is not required there.
  command.options.find((o) => o.long === '--dump')!.mandatory = false;
  command.action(async (flags: RunFlags) => {
    let dumps = flags.dump ?? [];
    let outputPrefix: string;
    if (flags.embeddedDefault) {
      ({ dumps, outputPrefix } = await embeddedDefault());
    } else {
      if (dumps.length === 0) throw new UsageError('missing --dump (or use --embedded-default)');
      outputPrefix = outputPrefixOf(flags);
    }
    const manifestUri = flags.manifestUri ?? joinUri(outputPrefix, MANIFEST_KEY);
    const logger = rootLogger.child({ output_prefix: outputPrefix });
    const started = Date.now();
    const manifest = await ensureManifest(dumps, manifestUri, planOptions(flags), logger);
    const summary = await runTasksWithProgress(manifest.tasks, manifest, manifestUri, outputPrefix, flags, logger);
    const report = await completeRun(manifest, outputPrefix, { deep: true });
    process.stdout.write(formatVerifyReport(report));
    const seconds = (Date.now() - started) / 1000;
    const worked = summary.done.reduce(
      (acc, m) => ({ docs: acc.docs + m.docs, tokens: acc.tokens + m.tokens, bytes: acc.bytes + m.text_bytes }),
      { docs: 0, tokens: 0, bytes: 0 },
    );
    process.stdout.write(
      `run: ${seconds.toFixed(1)} s; this invocation tokenized ${worked.docs} docs: ${Math.round(worked.docs / seconds)} docs/s, ` +
        `${(worked.bytes / 1e6 / seconds).toFixed(2)} MB/s of text, ${Math.round(worked.tokens / seconds)} tokens/s; ` +
        `peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB; output ${outputPrefix}\n`,
    );
    if (summary.failed.length > 0 || !report.ok) process.exitCode = 1;
  });
}
