// The S3 features tokenize-wiki relies on, checked against the server the suite runs (SeaweedFS, also the in-cluster
// store): docs/storage.md's support table is this file's result.
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../src/storage/s3.js';
import { freshBucket, testS3Client } from '../harness/s3-env.js';

const client = testS3Client();
const store = new S3Store(client);
afterAll(() => client.destroy());

async function text(stream: AsyncIterable<unknown>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks).toString('latin1');
}

describe('S3 features we rely on (SeaweedFS)', () => {
  it('multipart upload: a streamed write of 3 parts becomes one object', async () => {
    const bucket = await freshBucket('features-multipart', client);
    const part = 8 * 1024 * 1024; // S3Store's part size
    const body = Buffer.alloc(2 * part + 12345);
    for (let i = 0; i < body.length; i += 4096) body.write(String(i % 251).padStart(4, '0'), i, 'latin1');
    await store.write(
      `s3://${bucket}/shards/t1.jsonl.gz`,
      Readable.from([body.subarray(0, part + 1), body.subarray(part + 1)]),
    );
    const head = await store.stat(`s3://${bucket}/shards/t1.jsonl.gz`);
    expect(head?.size).toBe(body.length);
    expect(head?.etag).toMatch(/-3"$/); // a multipart ETag names its part count
  });

  it('ranged GET: a byte range in the middle and to the end', async () => {
    const bucket = await freshBucket('features-range', client);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'dump.json.bz2', Body: '0123456789abcdef' }));
    expect(await text(await store.read(`s3://${bucket}/dump.json.bz2`, { start: 3, end: 7 }))).toBe('3456');
    expect(await text(await store.read(`s3://${bucket}/dump.json.bz2`, { start: 12 }))).toBe('cdef');
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'dump.json.bz2', Range: 'bytes=-2' }));
    expect(await got.Body?.transformToString()).toBe('ef');
  });

  it('ListObjectsV2 pagination: continuation tokens walk every key once, in order', async () => {
    const bucket = await freshBucket('features-list', client);
    const keys = Array.from({ length: 7 }, (_, i) => `markers/t${String(i).padStart(3, '0')}.json`);
    await Promise.all(keys.map((Key) => client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: '{}' }))));
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: 'markers/', MaxKeys: 3, ContinuationToken: token }),
      );
      seen.push(...(page.Contents ?? []).map((o) => o.Key ?? ''));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      pages += 1;
    } while (token);
    expect(seen).toEqual(keys);
    expect(pages).toBe(3);
    const listed: string[] = [];
    for await (const o of store.list(`s3://${bucket}/markers/`)) listed.push(o.uri);
    expect(listed).toEqual(keys.map((k) => `s3://${bucket}/${k}`));
  });

  it('conditional create (If-None-Match: *): the second writer gets 412', async () => {
    const bucket = await freshBucket('features-inm', client);
    expect(await store.writeIfAbsent(`s3://${bucket}/state/lease.json`, 'first')).toBe(true);
    expect(await store.writeIfAbsent(`s3://${bucket}/state/lease.json`, 'second')).toBe(false);
    expect(await text(await store.read(`s3://${bucket}/state/lease.json`))).toBe('first');
  });

  it('incomplete multipart uploads are listed and can be aborted (what the lifecycle rule does on a schedule)', async () => {
    const bucket = await freshBucket('features-mpu', client);
    const { UploadId } = await client.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'runs/x/shards/t.jsonl.gz' }),
    );
    const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'runs/x/' }));
    expect(listed.Uploads?.map((u) => u.UploadId)).toEqual([UploadId]);
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'runs/x/shards/t.jsonl.gz', UploadId }));
    expect((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
  });
});
