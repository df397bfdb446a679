import './quiet-logs.js';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveDumps } from '../../src/dumps/layout.js';
import { synthLegacyDump } from '../../src/dumps/synth.js';
import { freshBucket, s3Env, testS3Client } from '../harness/s3-env.js';
import { DumpServer } from './dump-server.js';
import { PARTS_PATH, PART_NAMES, expectExit, removeDir, sha256, stage, synthTree } from './fixtures.js';

const BIG_PATH = 'other/cirrussearch/20261122/bigwiki-20261122-cirrussearch-content.json.gz';
/** lib-storage's part size in the S3 store: a bigger file must go up as a multipart upload. */
const PART_SIZE = 8 * 1024 * 1024;

describe('stage from a local HTTP mirror to s3:// on the real S3 server', () => {
  let root: string;
  let server: DumpServer;
  let client: S3Client;
  let bucket: string;
  beforeAll(async () => {
    // The program under test runs in this process and reads the S3 endpoint and credentials from the environment.
    Object.assign(process.env, s3Env(), { AWS_EC2_METADATA_DISABLED: 'true' });
    client = testS3Client();
    [root, bucket] = await Promise.all([synthTree('s3'), freshBucket('stage')]);
    // A multi-member legacy file over the multipart threshold: one synthetic member repeated (any member sequence is valid gzip).
    const member = join(root, 'member.json.gz');
    await synthLegacyDump(member, { docs: 20, seed: 33, wiki: 'bigwiki', members: 1, parts: 1, bigPageMb: 3 });
    const bytes = readFileSync(member);
    for (let i = 0; i < Math.ceil((PART_SIZE + 1024 * 1024) / bytes.length); i++)
      appendFileSync(join(root, BIG_PATH), bytes);
    server = await DumpServer.start(root, 256 * 1024);
  });
  afterAll(async () => {
    await server?.close();
    client?.destroy();
    removeDir(root);
  });

  async function objects(prefix: string): Promise<Map<string, string>> {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return new Map(
      (page.Contents ?? []).map((o) => [
        (o.Key as string).slice(prefix.length),
        `${o.ETag} ${o.LastModified?.toISOString()} ${o.Size}`,
      ]),
    );
  }
  async function objectBytes(key: string): Promise<Buffer> {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
  }

  it('stages a parts folder with a dropped connection, then a re-run downloads nothing', async () => {
    const prefix = 'mirror/synthwiki_content/';
    server.resetCounts();
    server.dropOnce.add(`/${PARTS_PATH}/${PART_NAMES[2]}`);
    const first = expectExit(
      await stage(['--from', server.url(PARTS_PATH) + '/', '--to', `s3://${bucket}/${prefix}`, '--parallel', '3']),
      0,
    );
    expect(first.stdout).toMatch(/stage: 3 staged, 0 already staged, 0 failed; _SUCCESS copied/);
    expect(server.maxConnections).toBeLessThanOrEqual(2);
    expect(server.gets(PART_NAMES[2] as string).map((r) => r.range)).toHaveLength(2);

    const listed = await objects(prefix);
    expect([...listed.keys()].sort()).toEqual(
      ['_SUCCESS', ...PART_NAMES, ...PART_NAMES.map((n) => `_staging/${n}.json`)].sort(),
    );
    for (const name of PART_NAMES) {
      expect(sha256(await objectBytes(prefix + name)), name).toBe(sha256(readFileSync(join(root, PARTS_PATH, name))));
    }
    // The staged folder is a complete dump in its own right.
    expect((await resolveDumps([`s3://${bucket}/${prefix}`])).map((d) => d.name)).toEqual([
      'synthwiki-20261122-00000',
      'synthwiki-20261122-00001',
      'synthwiki-20261122-00002',
    ]);

    server.resetCounts();
    const again = expectExit(
      await stage(['--from', server.url(PARTS_PATH) + '/', '--to', `s3://${bucket}/${prefix}`]),
      0,
    );
    expect(again.stdout).toMatch(/stage: 0 staged, 3 already staged, 0 failed; _SUCCESS present/);
    expect(server.requests.filter((r) => r.method === 'GET' && !r.path.endsWith('/'))).toEqual([]);
    expect(await objects(prefix)).toEqual(listed);
  });

  it('a bucket that does not exist is bad input (exit 2) naming it, and no transfer is left hanging', async () => {
    const missing = `${bucket}-missing`;
    const result = expectExit(
      await stage(['--from', server.url(PARTS_PATH) + '/', '--to', `s3://${missing}/mirror/`, '--parallel', '1']),
      2,
    );
    expect(result.stderr).toMatch(new RegExp(`s3://${missing}/.*bucket does not exist`));
  });

  it('streams a file over the part size as a multipart upload; a corrupt one never appears and leaves no upload behind', async () => {
    const source = readFileSync(join(root, BIG_PATH));
    expect(source.length).toBeGreaterThan(PART_SIZE);
    const name = BIG_PATH.slice(BIG_PATH.lastIndexOf('/') + 1);

    server.corrupt.add(`/${BIG_PATH}`);
    const bad = expectExit(await stage(['--from', server.url(BIG_PATH), '--to', `s3://${bucket}/bad/`]), 1);
    server.corrupt.clear();
    expect(bad.stdout).toContain(`FAILED ${name}: ${name}: corrupt transfer: gzip check failed`);
    expect(await objects('bad/')).toEqual(new Map());
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    expect(uploads.Uploads ?? []).toEqual([]);

    expectExit(
      await stage(['--from', server.url(BIG_PATH), '--to', `s3://${bucket}/legacy/`, '--sha256', sha256(source)]),
      0,
    );
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: `legacy/${name}` }));
    expect(head.ContentLength).toBe(source.length);
    expect(head.ETag).toMatch(/-2"$/); // a multipart upload of two parts
    expect(sha256(await objectBytes(`legacy/${name}`))).toBe(sha256(source));
    expect(JSON.parse((await objectBytes(`legacy/_staging/${name}.json`)).toString('utf8'))).toMatchObject({
      verified: true,
      format_check: 'gzip-crc32-isize',
      expected_sha256: sha256(source),
    });
  });
});
