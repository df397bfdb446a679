import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshBucket, s3Env, testS3Client } from '../harness/s3-env.js';
import { removeDir, shardRows, tempDir } from './helpers.js';
import { CLI_TEST_TIMEOUT, cliOk } from '../harness/cli.js';

const PAGE_MB = 14;
const PART_SIZE = 8 * 1024 * 1024;

describe('a very large page (14 MiB of text) to s3://', { timeout: CLI_TEST_TIMEOUT }, () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('big');
  });
  afterAll(() => removeDir(dir));

  it('is processed with bounded memory, and its shard (> 8 MiB) goes up as a multipart upload', async () => {
    const dump = join(dir, 'bigwiki-20261122-cirrussearch-content.json.gz');
    await cliOk(['synth', '--docs', '12', '--seed', '41', '--big-page-mb', String(PAGE_MB), '--out', dump]);
    const pageBytes = Math.max(
      ...gunzipSync(readFileSync(dump))
        .toString('utf8')
        .split('\n')
        .filter((l) => l.startsWith('{"version"'))
        .map((l) => Buffer.byteLength((JSON.parse(l) as { text: string }).text)),
    );
    expect(pageBytes).toBeGreaterThanOrEqual(PAGE_MB * 1024 * 1024);

    const bucket = await freshBucket('core-big-page');
    const prefix = `s3://${bucket}/run`;
    // Level 1 keeps the shard above the 8 MiB part size with one task.
    const result = await cliOk(
      ['run', '--dump', dump, '--output-prefix', prefix, '--concurrency', '2', '--compression-level', '1'],
      {
        env: s3Env(),
        measure: true,
      },
    );
    expect(result.stdout).toMatch(/verify: OK: 1\/1 tasks done/);

    const client = testS3Client();
    const marker = JSON.parse(
      await (
        await client.send(
          new GetObjectCommand({ Bucket: bucket, Key: 'run/markers/bigwiki-20261122-legacy-000000.json' }),
        )
      ).Body!.transformToString(),
    ) as { shard: { bytes: number }; rows: number };
    expect(marker.shard.bytes).toBeGreaterThan(PART_SIZE);
    const head = await client.send(
      new HeadObjectCommand({ Bucket: bucket, Key: 'run/shards/bigwiki-20261122-legacy-000000.jsonl.gz' }),
    );
    expect(head.ETag).toMatch(/-\d+"$/); // "<md5 of part md5s>-<parts>": a multipart upload
    const shard = Buffer.from(
      await (
        await client.send(
          new GetObjectCommand({ Bucket: bucket, Key: 'run/shards/bigwiki-20261122-legacy-000000.jsonl.gz' }),
        )
      ).Body!.transformToByteArray(),
    );
    const biggest = Math.max(...shardRows(shard).map((r) => r.n_tokens));
    expect(biggest).toBeGreaterThan(PAGE_MB * 200_000); // the big page is one row with all its tokens
    client.destroy();

    // Peak RSS as the program reports it and as the kernel saw it (/usr/bin/time): measured, not timed.
    const reported = Number(/peak RSS (\d+) MB/.exec(result.stdout)?.[1]);
    // The memory bound, 512 MB + 3 × the largest page, holds even with two workers: a document line over 8 MiB is read
    // field by field and its text tokenized in pieces (src/dumps/huge-doc.ts), so neither the line nor the text is
    // ever one string. 505 MB measured for this page (it was 617-840 MB when whole lines were parsed).
    const limitMb = 512 + (3 * pageBytes) / (1024 * 1024);
    console.log(
      `big page: ${(pageBytes / 1e6).toFixed(1)} MB text, peak RSS ${reported} MB (run summary), ${result.maxRssMb?.toFixed(0)} MB (time -v); limit ${limitMb.toFixed(0)} MB`,
    );
    expect(reported).toBeGreaterThan(0);
    expect(result.maxRssMb).toBeDefined();
    expect(Math.max(reported, result.maxRssMb ?? 0)).toBeLessThan(limitMb);
  });
});
