import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import { envFor, s3Client, type S3Connection, type S3Env } from './s3-server.js';

export { envFor, type S3Env };

/** The harness's S3 server, for use inside tests. */
export function s3Connection(): S3Connection {
  return inject('s3');
}

/** Env for child processes (`tokenize-wiki …`) and for code under test that reads process.env. */
export function s3Env(): S3Env {
  return envFor(s3Connection());
}

/** An SDK client for the harness's S3 server (path-style, static test credentials). */
export function testS3Client(): S3Client {
  return s3Client(s3Connection());
}

/**
 * Creates an empty bucket with a unique name, so test files running in parallel never see each other's objects.
 * `label` (e.g. the test file's subject) only makes the name readable.
 */
export async function freshBucket(label: string, client: S3Client = testS3Client()): Promise<string> {
  const slug =
    label
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40) || 'test';
  const bucket = `tw-${slug}-${randomBytes(4).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}
