import type { Command } from 'commander';
import { InputError } from '../errors/index.js';
import { DEFAULT_MULTIPART_DAYS, DEFAULT_STATE_DAYS } from '../runs/index.js';
import { outputPrefixOf } from './output-prefix.js';
import { positiveInt } from './options.js';

interface ApplyFlags {
  outputPrefix?: string;
  expireStateDays: number;
  abortMultipartDays: number;
  expireShardsDays?: number;
  json: boolean;
}

export function registerLifecycle(program: Command): void {
  const lifecycle = program.command('lifecycle').description("bucket lifecycle rules of a run's output prefix");
  lifecycle
    .command('apply')
    .description(
      'set the lifecycle rules of an output prefix: expire state/ attempt records, abort incomplete multipart uploads, ' +
        'and optionally expire shards (with their markers and _SUCCESS); rules of other prefixes in the bucket are kept',
    )
    .requiredOption('--output-prefix <uri>', "the run's output prefix, s3://bucket/prefix")
    .option(
      '--expire-state-days <n>',
      'days after which state/ objects (attempts, quarantine, progress) expire',
      positiveInt,
      DEFAULT_STATE_DAYS,
    )
    .option(
      '--abort-multipart-days <n>',
      'days after which incomplete multipart uploads are aborted',
      positiveInt,
      DEFAULT_MULTIPART_DAYS,
    )
    .option(
      '--expire-shards-days <n>',
      'days after which shards, markers and _SUCCESS expire (default: never; omit to remove such a rule)',
      positiveInt,
    )
    .option('--json', "print the bucket's rules after the change as JSON", false)
    .action(async (flags: ApplyFlags) => {
      // The S3 SDK loads only for this command (see storage/lazy.ts).
      const [
        { s3Reason, s3ErrorStatus },
        { applyLifecycle, outputRules },
        { describeRule, readLifecycle },
        { s3Client },
      ] = await Promise.all([
        import('../storage/s3-errors.js'),
        import('../runs/lifecycle.js'),
        import('../storage/lifecycle.js'),
        import('../storage/s3.js'),
      ]);
      const policy = {
        outputPrefix: outputPrefixOf(flags),
        stateDays: flags.expireStateDays,
        multipartDays: flags.abortMultipartDays,
        shardsDays: flags.expireShardsDays,
      };
      const { bucket } = outputRules(policy); // validates the prefix before any request
      const client = s3Client();
      try {
        const change = await applyLifecycle(client, policy);
        const rules = await readLifecycle(client, bucket);
        if (flags.json) {
          process.stdout.write(JSON.stringify({ ...change, rules }, null, 2) + '\n');
          return;
        }
        const lines = [
          `${change.changed ? 'updated' : 'unchanged'}: s3://${bucket} (${change.ours.length} rule(s) of this prefix, ${change.kept} other rule(s) kept${change.removed.length > 0 ? `, removed ${change.removed.join(', ')}` : ''})`,
          ...rules.map((r) => `  ${describeRule(r)}`),
        ];
        process.stdout.write(lines.join('\n') + '\n');
      } catch (error) {
        if (error instanceof InputError) throw error;
        const message = `s3://${bucket}: ${s3Reason(error, 'cannot set lifecycle rules')}`;
        // A server error may pass on a retry (exit 1); anything else is the setup's to fix (exit 2).
        const status = s3ErrorStatus(error) ?? 0;
        throw status >= 500 && status !== 501 ? new Error(message) : new InputError(message);
      }
    });
}
