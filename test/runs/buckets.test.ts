// `buckets ensure` against the harness's real S3 server (SeaweedFS), through the CLI as a Job runs it.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadBucketCommand, ListObjectsV2Command, PutBucketPolicyCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRunFile } from '../../src/runs/run-file.js';
import { ensureBuckets, formatEnsureReport } from '../../src/runs/buckets.js';
import { readLifecycle, ruleId } from '../../src/storage/lifecycle.js';
import { s3Client } from '../harness/s3-server.js';
import { s3Connection, s3Env, testS3Client } from '../harness/s3-env.js';
import { cliS3 } from '../harness/cli.js';

const client = testS3Client();
afterAll(() => client.destroy());
const dir = mkdtempSync(join(tmpdir(), 'tw-buckets-'));

/** The checklist's three buckets, with a suffix so test files never share them. */
function buckets(): { dumps: string; manifests: string; output: string } {
  const id = randomBytes(3).toString('hex');
  return { dumps: `wiki-dumps-${id}`, manifests: `wiki-manifests-${id}`, output: `wiki-output-${id}` };
}

function runFile(name: string, fields: Record<string, unknown>): string {
  const file = join(dir, `${name}.yaml`);
  const lines = Object.entries({
    run_id: name,
    text_field: 'text',
    backend: { kind: 'kuberay', namespace: 'tokenize-wiki', ray_cluster: 'tokenize-wiki' },
    ...fields,
  }).map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

function enwiki(b: ReturnType<typeof buckets>, name = `enwiki-${randomBytes(2).toString('hex')}`): string {
  return runFile(name, {
    dumps: [`s3://${b.dumps}/cirrus_search_index/20261122/index_name=enwiki_content/`],
    manifest_uri: `s3://${b.manifests}/${name}/manifest.json`,
    output_prefix: `s3://${b.output}/runs/${name}/`,
  });
}

/** `buckets ensure` in this process (the CLI's own behaviour is covered by the tests that spawn it). */
async function ensure(files: string[], credentials: Partial<{ accessKeyId: string; secretAccessKey: string }> = {}) {
  const c = s3Client({ ...s3Connection(), ...credentials });
  try {
    const runs = files.map((f) => parseRunFile(readFileSync(f, 'utf8'), f));
    const report = await ensureBuckets(c, runs, { lifecycle: true });
    return { report, text: formatEnsureReport(report) };
  } finally {
    c.destroy();
  }
}

async function keys(bucket: string): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (out.Contents ?? []).map((o) => o.Key ?? '');
}

describe('buckets ensure', () => {
  it("creates the run's buckets, adds lifecycle rules, probes every prefix and leaves nothing behind", async () => {
    const b = buckets();
    const run = enwiki(b);
    const r = await cliS3(['buckets', 'ensure', '--run', run], s3Env());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(
      /^PREFIX\s+ROLES\s+RUNS\s+BUCKET\s+WRITE\s+READ\s+LIST\s+DELETE\s+IF-NONE-MATCH\s+LIFECYCLE$/,
    );
    expect(lines.find((l) => l.startsWith(`s3://${b.output}/runs/`))).toMatch(
      /outputs\s+\S+\s+created\s+ok\s+ok\s+ok\s+ok\s+ok\s+added 2 rule\(s\)/,
    );
    expect(lines.find((l) => l.startsWith(`s3://${b.dumps}/`))).toMatch(
      /dumps\s+\S+\s+created\s+ok\s+ok\s+ok\s+ok\s+-\s+added 1 rule\(s\)/,
    );
    expect(lines.find((l) => l.startsWith(`s3://${b.manifests}/`))).toMatch(
      /manifests\s+\S+\s+created\s+ok\s+ok\s+ok\s+ok\s+-\s+-/,
    );
    expect(r.stdout).toContain('all good: 3 prefix(es) readable and writable');
    for (const bucket of Object.values(b)) {
      await client.send(new HeadBucketCommand({ Bucket: bucket }));
      expect(await keys(bucket), `${bucket}: probe objects removed`).toEqual([]);
    }
    const output = await readLifecycle(client, b.output);
    const prefix = r.stdout.match(new RegExp(`s3://${b.output}/(runs/[^/]+/)`))?.[1] ?? '';
    expect(output.map((x) => x.ID).sort()).toEqual([ruleId('multipart', prefix), ruleId('state', prefix)].sort());
    expect(output.find((x) => x.ID === ruleId('state', prefix))).toMatchObject({
      Filter: { Prefix: `${prefix}state/` },
      Expiration: { Days: 30 },
    });
    const dumps = await readLifecycle(client, b.dumps);
    expect(dumps).toMatchObject([
      {
        Filter: { Prefix: 'cirrus_search_index/20261122/index_name=enwiki_content/' },
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
      },
    ]);
  });

  it('is idempotent: a second run creates nothing and changes no rule', async () => {
    const b = buckets();
    const run = enwiki(b);
    expect((await ensure([run])).report.ok).toBe(true);
    const before = await readLifecycle(client, b.output);
    const { report } = await ensure([run]);
    expect(report.ok).toBe(true);
    expect(report.locations.map((l) => l.bucketState.text)).toEqual(['exists', 'exists', 'exists']);
    expect(report.locations.map((l) => l.lifecycle.text)).toEqual(['present', '-', 'present']);
    expect(await readLifecycle(client, b.output)).toEqual(before);
  });

  it('checks every run file of a folder (the mounted runs ConfigMap) and one bucket shared by runs', async () => {
    const shared = `tokenize-wiki-${randomBytes(3).toString('hex')}`;
    const folder = mkdtempSync(join(dir, 'runs-'));
    for (const name of ['enwiki-a', 'dewiki-b']) {
      writeFileSync(
        join(folder, `${name}.yaml`),
        [
          `run_id: ${name}`,
          `dumps: ["s3://${shared}/dumps/${name}/"]`,
          `output_prefix: s3://${shared}/runs/${name}`,
          'backend: {kind: kuberay, namespace: tokenize-wiki, ray_cluster: tokenize-wiki}',
        ].join('\n'),
      );
    }
    writeFileSync(join(folder, 'kustomization.yaml'), 'resources: []\n');
    const r = await cliS3(['buckets', 'ensure', '--run', folder], s3Env());
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // Each run's manifest defaults to <output_prefix>/manifest.json: one prefix, two roles.
    expect(r.stdout).toMatch(new RegExp(`s3://${shared}/runs/enwiki-a/\\s+manifests,outputs\\s+enwiki-a\\s+created`));
    expect(r.stdout).toMatch(new RegExp(`s3://${shared}/runs/dewiki-b/\\s+manifests,outputs\\s+dewiki-b\\s+created`));
    const ids = (await readLifecycle(client, shared)).map((x) => x.ID).sort();
    expect(ids).toEqual(
      [
        ruleId('multipart', 'dumps/enwiki-a/'),
        ruleId('multipart', 'dumps/dewiki-b/'),
        ...['runs/enwiki-a/', 'runs/dewiki-b/'].flatMap((p) => [ruleId('multipart', p), ruleId('state', p)]),
      ].sort(),
    );
  });

  it('reports a prefix the credentials cannot write (a bucket policy denies PutObject) and exits 1', async () => {
    const b = buckets();
    const run = enwiki(b, 'enwiki-denied');
    expect((await ensure([run])).report.ok).toBe(true);
    const policy = {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Deny',
          Principal: '*',
          Action: ['s3:PutObject'],
          Resource: [`arn:aws:s3:::${b.output}/runs/enwiki-denied/*`],
        },
      ],
    };
    await client.send(new PutBucketPolicyCommand({ Bucket: b.output, Policy: JSON.stringify(policy) }));
    const r = await cliS3(['buckets', 'ensure', '--run', run], s3Env());
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      new RegExp(
        `s3://${b.output}/runs/enwiki-denied/\\s+outputs\\s+enwiki-denied\\s+exists\\s+MISSING\\s+ok\\s+ok\\s+ok\\s+-\\s+present`,
      ),
    );
    expect(r.stdout).toContain('missing (1):');
    expect(r.stdout).toContain(`  - s3://${b.output}/runs/enwiki-denied/: write: access denied (AccessDenied)`);
    // The other prefixes are still fine.
    expect(r.stdout).toMatch(new RegExp(`s3://${b.dumps}/\\S*\\s+dumps\\s+enwiki-denied\\s+exists\\s+ok\\s+ok`));
  });

  it.each([
    ['a wrong secret key', { secretAccessKey: 'not-the-secret' }, 'wrong secret key (SignatureDoesNotMatch)'],
    [
      'an unknown access key',
      { accessKeyId: 'no-such-key', secretAccessKey: 'whatever' },
      'unknown access key id (InvalidAccessKeyId)',
    ],
  ])('reports %s for every bucket', async (_what, credentials, message) => {
    const b = buckets();
    const { report, text } = await ensure([enwiki(b)], credentials);
    expect(report.ok).toBe(false);
    for (const bucket of Object.values(b))
      expect(text).toMatch(
        new RegExp(`s3://${bucket}/\\S*\\s+\\S+\\s+\\S+\\s+MISSING\\s+-\\s+-\\s+-\\s+-\\s+-\\s+(no bucket|-)\\n`),
      );
    expect(report.problems).toEqual(
      Object.values(b).map((bucket) =>
        expect.stringMatching(new RegExp(`^s3://${bucket}/\\S*: bucket: ${message.replace(/[()]/g, '\\$&')}$`)),
      ),
    );
    // Nothing was created with a bad credential.
    for (const bucket of Object.values(b))
      await expect(client.send(new HeadBucketCommand({ Bucket: bucket }))).rejects.toThrow();
  });

  it('dump_access decides whether an http dump is a problem', async () => {
    const b = buckets();
    const fields = (access: string): Record<string, unknown> => ({
      dumps: ['https://dumps.example.org/other/cirrus_search_index/20261122/index_name=enwiki_content/'],
      dump_access: access,
      output_prefix: `s3://${b.output}/runs/http-dumps/`,
    });
    const staged = await ensure([runFile('http-dumps-staged', fields('object-store'))]);
    expect(staged.report.ok).toBe(false);
    expect(staged.report.problems).toEqual([
      expect.stringContaining('an HTTP dump with dump_access object-store: stage it'),
    ]);
    const mirror = await ensure([runFile('http-dumps-mirror', fields('http'))]);
    expect(mirror.report.ok, mirror.text).toBe(true);
    expect(mirror.text).toContain('not checked: https://dumps.example.org/');
    expect(mirror.text).toContain('read over HTTP from a mirror (dump_access: http)');
  });

  it('bad input exits 2 with a message naming the file and key', async () => {
    const missing = await cliS3(['buckets', 'ensure', '--run', join(dir, 'nope.yaml')], s3Env());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope.yaml: no such run file or folder');
    const bad = runFile('bad-run', { dumps: 'not-a-list', output_prefix: 's3://x/y' });
    const invalid = await cliS3(['buckets', 'ensure', '--run', bad], s3Env());
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/bad-run\.yaml: dumps: /);
  });
});
