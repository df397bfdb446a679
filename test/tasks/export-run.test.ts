import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeIdx, encodeIdx } from '../../src/output/megatron.js';
import { freshBucket, s3Env, testS3Client } from '../harness/s3-env.js';
import { removeDir, sha256, tempDir } from '../core/helpers.js';
import { cli, CLI_TEST_TIMEOUT, cliOk, plainStderr } from '../harness/cli.js';

const DUMP = 'exwiki-20261122-cirrussearch-content.json.gz';

describe('export', { timeout: CLI_TEST_TIMEOUT }, () => {
  let dir: string;
  let dump: string;
  let out: string;
  let taskIds: string[];
  const shardFile = (id: string, suffix: string): Buffer => readFileSync(join(out, 'shards', `${id}${suffix}`));
  beforeAll(async () => {
    dir = tempDir('export');
    dump = join(dir, DUMP);
    out = join(dir, 'run');
    await cliOk(['synth', '--docs', '150', '--members', '2', '--seed', '31', '--wiki', 'exwiki', '--out', dump]);
    await cliOk([
      'run',
      '--dump',
      dump,
      '--output-dir',
      out,
      '--format',
      'megatron',
      '--append-eot',
      '--max-docs-per-task',
      '30',
      '--concurrency',
      '2',
    ]);
    taskIds = (
      JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { tasks: Array<{ task_id: string }> }
    ).tasks.map((t) => t.task_id);
  });
  afterAll(() => removeDir(dir));

  const exportArgs = (to: string, extra: string[] = []): string[] => [
    'export',
    '--manifest-uri',
    join(out, 'manifest.json'),
    '--output-dir',
    out,
    '--to',
    to,
    ...extra,
  ];

  it("writes one dataset: the shards' .bin and metadata back to back in manifest order, and the index of all their pages", async () => {
    const to = join(dir, 'datasets', 'exwiki');
    const result = await cliOk(exportArgs(to));
    expect(result.stdout).toMatch(/export: 1 part\(s\), \d+ sequences/);
    expect(readFileSync(`${to}.bin`)).toEqual(Buffer.concat(taskIds.map((id) => shardFile(id, '.bin'))));
    expect(readFileSync(`${to}.meta.jsonl.gz`)).toEqual(
      Buffer.concat(taskIds.map((id) => shardFile(id, '.meta.jsonl.gz'))),
    );
    const lengths = taskIds.flatMap((id) => Array.from(decodeIdx(shardFile(id, '.idx'), id).lengths));
    expect(readFileSync(`${to}.idx`)).toEqual(encodeIdx('int32', lengths));
    const record = JSON.parse(readFileSync(`${to}.export.json`, 'utf8')) as {
      complete: boolean;
      sequences: number;
      parts: unknown[];
    };
    expect(record).toMatchObject({ complete: true, sequences: lengths.length });
    expect(record.parts).toHaveLength(1);
  });

  it('with --max-part-bytes: parts of whole shards within the cap, together the same bytes; a killed export resumes to the same bytes', async () => {
    const bins = taskIds.map((id) => shardFile(id, '.bin').length);
    const cap = Math.max(...bins) * 2;
    const to = join(dir, 'parts', 'exwiki');
    const first = await cliOk(exportArgs(to, ['--max-part-bytes', String(cap)]));
    const record = JSON.parse(readFileSync(`${to}.export.json`, 'utf8')) as {
      parts: Array<{ prefix: string; bin: { bytes: number; sha256: string } }>;
    };
    expect(record.parts.length).toBeGreaterThan(1);
    for (const part of record.parts) expect(part.bin.bytes).toBeLessThanOrEqual(cap);
    expect(Buffer.concat(record.parts.map((p) => readFileSync(`${p.prefix}.bin`)))).toEqual(
      readFileSync(join(dir, 'datasets', 'exwiki.bin')),
    );
    expect(first.stdout.match(/ written/g)).toHaveLength(record.parts.length);

    // As if killed while writing the last part: its files are gone and the record lists only the parts before it.
    const last = record.parts.pop() as { prefix: string };
    writeFileSync(`${to}.export.json`, JSON.stringify({ ...record, complete: false }));
    for (const suffix of ['.bin', '.idx', '.meta.jsonl.gz']) rmSync(`${last.prefix}${suffix}`);
    const again = await cliOk(exportArgs(to, ['--max-part-bytes', String(cap)]));
    expect(again.stdout.match(/kept from an earlier export/g)).toHaveLength(record.parts.length);
    expect(again.stdout.match(/ written/g)).toHaveLength(1);
    const resumed = JSON.parse(readFileSync(`${to}.export.json`, 'utf8')) as {
      complete: boolean;
      parts: Array<{ bin: { sha256: string } }>;
    };
    expect(resumed.complete).toBe(true);
    expect(sha256(readFileSync(`${last.prefix}.bin`))).toBe(resumed.parts[resumed.parts.length - 1]?.bin.sha256);

    const other = await cli(exportArgs(to, ['--max-part-bytes', String(cap + 1)]));
    expect(other.code).toBe(2);
    expect(plainStderr(other).join('\n')).toMatch(
      /an export of other shards \(or another --max-part-bytes\) is already there/,
    );
    const tooSmall = await cli(
      exportArgs(join(dir, 'small', 'x'), ['--max-part-bytes', String(Math.max(...bins) - 1)]),
    );
    expect(tooSmall.code).toBe(2);
    expect(plainStderr(tooSmall).join('\n')).toMatch(/parts hold whole shards, so give at least/);
  });

  it('from s3:// to s3://: the same bytes as the local export', async () => {
    const bucket = await freshBucket('output-export');
    const client = testS3Client();
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `dumps/${DUMP}`, Body: readFileSync(dump) }));
    const prefix = `s3://${bucket}/run`;
    await cliOk(
      [
        'run',
        '--dump',
        `s3://${bucket}/dumps/${DUMP}`,
        '--output-prefix',
        prefix,
        '--format',
        'megatron',
        '--append-eot',
        '--max-docs-per-task',
        '30',
        '--concurrency',
        '2',
      ],
      { env: s3Env() },
    );
    await cliOk(
      [
        'export',
        '--manifest-uri',
        `${prefix}/manifest.json`,
        '--output-prefix',
        prefix,
        '--to',
        `s3://${bucket}/datasets/exwiki`,
      ],
      { env: s3Env() },
    );
    for (const suffix of ['.bin', '.idx', '.meta.jsonl.gz']) {
      const body = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `datasets/exwiki${suffix}` }));
      const bytes = Buffer.from(await body.Body!.transformToByteArray());
      expect({ suffix, sha256: sha256(bytes) }).toEqual({
        suffix,
        sha256: sha256(readFileSync(join(dir, 'datasets', `exwiki${suffix}`))),
      });
    }
    client.destroy();
  });

  it('refuses a jsonl run and an unfinished run (exit 2), saying what to do', async () => {
    const jsonl = join(dir, 'jsonl');
    await cliOk(['run', '--dump', dump, '--output-dir', jsonl, '--max-docs-per-task', '30', '--concurrency', '2']);
    const fromJsonl = await cli([
      'export',
      '--manifest-uri',
      join(jsonl, 'manifest.json'),
      '--output-dir',
      jsonl,
      '--to',
      join(dir, 'j'),
    ]);
    expect(fromJsonl.code).toBe(2);
    expect(plainStderr(fromJsonl).join('\n')).toMatch(
      /output format is jsonl; export concatenates megatron shards\. Run the dumps again with --format megatron/,
    );

    rmSync(join(out, 'markers', `${taskIds[1]}.json`));
    const unfinished = await cli(exportArgs(join(dir, 'unfinished')));
    expect(unfinished.code).toBe(2);
    expect(plainStderr(unfinished).join('\n')).toMatch(
      new RegExp(`the run is not complete \\(1 task\\(s\\) have no marker \\(e\\.g\\. ${taskIds[1]}\\)\\)`),
    );
  });
});
