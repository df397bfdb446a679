// Lifecycle rules of an output prefix, applied to the harness's real S3 server (SeaweedFS) and read back.
import { PutBucketLifecycleConfigurationCommand, type LifecycleRule } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureBuckets } from '../../src/runs/buckets.js';
import { applyLifecycle, outputRules } from '../../src/runs/lifecycle.js';
import { bucketPrefix, readLifecycle, ruleId } from '../../src/storage/lifecycle.js';
import { freshBucket, s3Env, testS3Client } from '../harness/s3-env.js';
import { cliS3 } from '../harness/cli.js';

const client = testS3Client();
afterAll(() => client.destroy());

const byId = (rules: LifecycleRule[]): Record<string, LifecycleRule> =>
  Object.fromEntries(rules.map((r) => [r.ID ?? '', r]));

describe('lifecycle apply', () => {
  it('sets state, multipart and shard expiry for the prefix and reads them back', async () => {
    const bucket = await freshBucket('lifecycle-apply', client);
    const r = await cliS3(
      [
        'lifecycle',
        'apply',
        '--output-prefix',
        `s3://${bucket}/runs/enwiki`,
        '--expire-state-days',
        '14',
        '--abort-multipart-days',
        '3',
        '--expire-shards-days',
        '90',
      ],
      s3Env(),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(`updated: s3://${bucket} (5 rule(s) of this prefix, 0 other rule(s) kept)`);
    expect(r.stdout).toContain('  tokenize-wiki:state:runs/enwiki/  prefix "runs/enwiki/state/"  expire after 14 days');
    expect(r.stdout).toContain(
      '  tokenize-wiki:multipart:runs/enwiki/  prefix "runs/enwiki/"  abort incomplete multipart uploads after 3 days',
    );
    const rules = byId(await readLifecycle(client, bucket));
    expect(Object.keys(rules).sort()).toEqual(
      ['markers', 'multipart', 'shards', 'state', 'success'].map((k) => `tokenize-wiki:${k}:runs/enwiki/`),
    );
    expect(rules['tokenize-wiki:state:runs/enwiki/']).toMatchObject({
      Status: 'Enabled',
      Filter: { Prefix: 'runs/enwiki/state/' },
      Expiration: { Days: 14 },
    });
    expect(rules['tokenize-wiki:multipart:runs/enwiki/']).toMatchObject({
      Filter: { Prefix: 'runs/enwiki/' },
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 3 },
    });
    // Shards go together with their markers and _SUCCESS, so "a task is done iff its marker exists" stays true.
    expect(rules['tokenize-wiki:shards:runs/enwiki/']).toMatchObject({
      Filter: { Prefix: 'runs/enwiki/shards/' },
      Expiration: { Days: 90 },
    });
    expect(rules['tokenize-wiki:markers:runs/enwiki/']).toMatchObject({
      Filter: { Prefix: 'runs/enwiki/markers/' },
      Expiration: { Days: 90 },
    });
    expect(rules['tokenize-wiki:success:runs/enwiki/']).toMatchObject({
      Filter: { Prefix: 'runs/enwiki/_SUCCESS' },
      Expiration: { Days: 90 },
    });

    const again = await cliS3(
      [
        'lifecycle',
        'apply',
        '--output-prefix',
        `s3://${bucket}/runs/enwiki/`,
        '--expire-state-days',
        '14',
        '--abort-multipart-days',
        '3',
        '--expire-shards-days',
        '90',
        '--json',
      ],
      s3Env(),
    );
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ changed: false, added: [], removed: [], kept: 0 });
  });

  it('merges with the rules of other prefixes and other tools instead of clobbering them', async () => {
    const bucket = await freshBucket('lifecycle-merge', client);
    const foreign: LifecycleRule = {
      ID: 'logs-retention',
      Status: 'Enabled',
      Filter: { Prefix: 'logs/' },
      Expiration: { Days: 5 },
    };
    await client.send(
      new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: [foreign] } }),
    );
    await applyLifecycle(client, { outputPrefix: `s3://${bucket}/runs/dewiki/`, stateDays: 30, multipartDays: 7 });
    const change = await applyLifecycle(client, {
      outputPrefix: `s3://${bucket}/runs/enwiki/`,
      stateDays: 10,
      multipartDays: 2,
      shardsDays: 60,
    });
    expect(change).toMatchObject({ changed: true, kept: 3, removed: [] });
    const rules = byId(await readLifecycle(client, bucket));
    expect(rules['logs-retention']).toMatchObject({ Filter: { Prefix: 'logs/' }, Expiration: { Days: 5 } });
    expect(rules['tokenize-wiki:state:runs/dewiki/']).toMatchObject({ Expiration: { Days: 30 } });
    expect(rules['tokenize-wiki:state:runs/enwiki/']).toMatchObject({ Expiration: { Days: 10 } });
    expect(Object.keys(rules)).toHaveLength(1 + 2 + 5);

    // Dropping shard expiry for enwiki removes exactly its three shard rules; changed days replace the old ones.
    const off = await applyLifecycle(client, {
      outputPrefix: `s3://${bucket}/runs/enwiki/`,
      stateDays: 20,
      multipartDays: 2,
    });
    expect(off.removed.sort()).toEqual(['markers', 'shards', 'success'].map((k) => `tokenize-wiki:${k}:runs/enwiki/`));
    const after = byId(await readLifecycle(client, bucket));
    expect(Object.keys(after).sort()).toEqual(
      [
        'logs-retention',
        'tokenize-wiki:multipart:runs/dewiki/',
        'tokenize-wiki:multipart:runs/enwiki/',
        'tokenize-wiki:state:runs/dewiki/',
        'tokenize-wiki:state:runs/enwiki/',
      ].sort(),
    );
    expect(after['tokenize-wiki:state:runs/enwiki/']).toMatchObject({ Expiration: { Days: 20 } });
  });

  it('buckets ensure adds missing rules but keeps days someone set with lifecycle apply', async () => {
    const bucket = await freshBucket('lifecycle-ensure', client);
    await applyLifecycle(client, {
      outputPrefix: `s3://${bucket}/runs/x`,
      stateDays: 90,
      multipartDays: 1,
      shardsDays: 365,
    });
    const run = {
      run_id: 'x',
      dumps: [`s3://${bucket}/dumps/x/`],
      manifest_uri: `s3://${bucket}/runs/x/manifest.json`,
      output_prefix: `s3://${bucket}/runs/x`,
    };
    const report = await ensureBuckets(client, [run], { lifecycle: true });
    expect(report.ok, report.problems.join('\n')).toBe(true);
    const rules = byId(await readLifecycle(client, bucket));
    expect(rules['tokenize-wiki:state:runs/x/']).toMatchObject({ Expiration: { Days: 90 } });
    expect(rules['tokenize-wiki:shards:runs/x/']).toMatchObject({ Expiration: { Days: 365 } });
    expect(rules['tokenize-wiki:multipart:dumps/x/']).toMatchObject({
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
    });
    expect(Object.keys(rules)).toHaveLength(6);
  });

  it('bad input exits 2 before any request', async () => {
    const r = await cliS3(['lifecycle', 'apply', '--output-prefix', '/data/runs/x'], s3Env());
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('tokenize-wiki: /data/runs/x: lifecycle rules need an s3:// prefix\n');
    expect(() => outputRules({ outputPrefix: 's3://b/x', stateDays: 30, multipartDays: 7, shardsDays: 0 })).toThrow(
      'shards expiry: expected a whole number of days ≥ 1, got 0',
    );
  });
});

describe('rule ids', () => {
  it('are stable, name the prefix, and stay within 255 characters for long prefixes', () => {
    expect(bucketPrefix('s3://b')).toEqual({ bucket: 'b', keyPrefix: '' });
    expect(
      outputRules({ outputPrefix: 's3://b', stateDays: 1, multipartDays: 1 }).rules.map((r) => r.Filter?.Prefix),
    ).toEqual(['state/', '']);
    const long = `${'a'.repeat(300)}/`;
    expect(ruleId('state', long)).toMatch(/^tokenize-wiki:state:sha256-[0-9a-f]{64}$/);
    expect(ruleId('state', long)).toBe(ruleId('state', long));
    expect(ruleId('state', 'runs/x/')).toBe('tokenize-wiki:state:runs/x/');
  });
});
