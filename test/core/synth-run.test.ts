import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshBucket, s3Env, testS3Client } from '../harness/s3-env.js';
import { removeDir, sha256, shardRows, snapshot, tempDir } from './helpers.js';
import { cli, CLI_TEST_TIMEOUT, cliOk } from '../harness/cli.js';

const PARTS = 'cirrus_search_index/20261122/index_name=synthwiki_content';
const LEGACY = 'synthwiki-20261122-cirrussearch-content.json.gz';

/** key → [etag, last modified, size] of every object under a prefix. */
async function objects(bucket: string, prefix: string): Promise<Map<string, string>> {
  const client = testS3Client();
  const out = new Map<string, string>();
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? [])
      out.set(o.Key as string, `${o.ETag} ${o.LastModified?.toISOString()} ${o.Size}`);
    token = page.NextContinuationToken;
  } while (token);
  client.destroy();
  return out;
}

describe('run on synthetic dumps of both layouts', { timeout: CLI_TEST_TIMEOUT }, () => {
  let dir: string;
  let legacy: string;
  let parts: string;
  beforeAll(async () => {
    dir = tempDir('synth');
    legacy = join(dir, LEGACY);
    parts = join(dir, PARTS);
    // Several gzip members in the legacy file; three .json.bz2 parts with _SUCCESS in the current layout.
    await cliOk(['synth', '--docs', '150', '--members', '3', '--seed', '11', '--out', legacy]);
    await cliOk(['synth', '--docs', '150', '--parts', '3', '--seed', '12', '--out', parts]);
  });
  afterAll(() => removeDir(dir));

  it('synth writes both layouts: a multi-member .json.gz, and .json.bz2 parts with _SUCCESS', () => {
    expect(readdirSync(parts).sort()).toEqual([
      '_SUCCESS',
      'synthwiki_content-20261122-00000.json.bz2',
      'synthwiki_content-20261122-00001.json.bz2',
      'synthwiki_content-20261122-00002.json.bz2',
    ]);
    // A gzip member starts with 1f 8b 08 and an OS byte; count members by walking them with zlib.
    const bytes = readFileSync(legacy);
    let members = 0;
    for (let at = 0; at + 3 < bytes.length; at++)
      if (
        bytes[at] === 0x1f &&
        bytes[at + 1] === 0x8b &&
        bytes[at + 2] === 8 &&
        bytes[at + 3] === 0 &&
        bytes[at + 9] === 3
      )
        members++;
    expect(members).toBeGreaterThanOrEqual(3);
  });

  it('to a local folder: verify OK, every doc once, and a re-run is a no-op', async () => {
    const out = join(dir, 'local');
    const args = [
      'run',
      '--dump',
      legacy,
      '--dump',
      parts,
      '--output-dir',
      out,
      '--max-docs-per-task',
      '40',
      '--concurrency',
      '2',
    ];
    const first = await cliOk(args);
    expect(first.stdout).toMatch(/verify: OK/);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as {
      totals: { docs: number; tasks: number; dumps: number };
      tasks: Array<{ task_id: string; dump: string }>;
    };
    expect(manifest.totals).toMatchObject({ dumps: 4, docs: 300 });
    expect(new Set(manifest.tasks.map((t) => t.dump))).toEqual(
      new Set([
        'synthwiki-20261122-legacy',
        'synthwiki-20261122-00000',
        'synthwiki-20261122-00001',
        'synthwiki-20261122-00002',
      ]),
    );
    // Page ids are unique within the synthetic wiki, so across both dumps every row's page id is distinct per dump.
    const rows = manifest.tasks.flatMap((t) =>
      shardRows(readFileSync(join(out, 'shards', `${t.task_id}.jsonl.gz`))).map((r) => `${t.dump}:${r.page_id}`),
    );
    expect(new Set(rows).size).toBe(rows.length);
    expect(readdirSync(join(out, 'markers'))).toHaveLength(manifest.totals.tasks);

    const before = snapshot(out);
    const again = await cliOk(args);
    expect(again.stdout).toMatch(new RegExp(`tasks: 0 done, ${manifest.totals.tasks} already done`));
    const after = snapshot(out);
    for (const [name, file] of before) expect({ name, ...after.get(name) }).toEqual({ name, ...file });
  });

  it('from and to s3:// on the real S3 server: verify OK, same shard bytes as locally, re-run is a no-op', async () => {
    const bucket = await freshBucket('core-synth-run');
    const client = testS3Client();
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `dumps/${LEGACY}`, Body: readFileSync(legacy) }));
    for (const name of readdirSync(parts)) {
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: `dumps/${PARTS}/${name}`, Body: readFileSync(join(parts, name)) }),
      );
    }
    const prefix = `s3://${bucket}/run`;
    const args = [
      'run',
      '--dump',
      `s3://${bucket}/dumps/${LEGACY}`,
      '--dump',
      `s3://${bucket}/dumps/${PARTS}/`,
      '--output-prefix',
      prefix,
      '--max-docs-per-task',
      '40',
      '--concurrency',
      '2',
    ];
    const first = await cliOk(args, { env: s3Env() });
    expect(first.stdout).toMatch(/verify: OK/);

    const verify = await cli(
      ['verify', '--manifest-uri', `${prefix}/manifest.json`, '--output-prefix', prefix, '--deep'],
      { env: s3Env() },
    );
    expect(verify.stdout).toMatch(/verify: OK/);
    expect(verify.code).toBe(0);

    // Same tasks as the local run (task ids come from dump names), so the same shard bytes.
    const local = snapshot(join(dir, 'local'));
    const shards = [...(await objects(bucket, 'run/shards/')).keys()];
    expect(shards.length).toBe([...local.keys()].filter((k) => k.startsWith('shards/')).length);
    for (const key of shards) {
      const body = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const bytes = Buffer.from(await body.Body!.transformToByteArray());
      expect({ key, sha256: sha256(bytes) }).toEqual({ key, sha256: local.get(key.slice('run/'.length))?.sha256 });
    }

    const before = await objects(bucket, 'run/');
    const again = await cliOk(args, { env: s3Env() });
    expect(again.stdout).toMatch(/tasks: 0 done, \d+ already done/);
    const after = await objects(bucket, 'run/');
    for (const [key, meta] of before)
      if (!key.endsWith('_SUCCESS')) expect({ key, meta: after.get(key) }).toEqual({ key, meta });
    client.destroy();
  });
});
