import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { InputError } from '../errors/index.js';
import { resumableRead } from './resumable.js';
import { S3_MAX_ATTEMPTS } from './retry.js';
import { s3ErrorName, s3Problem } from './s3-errors.js';
import type { Body, ByteRange, ObjectInfo, Store } from './types.js';
import { parseUri } from './uri.js';

const PART_SIZE = 8 * 1024 * 1024;

function locate(uri: string): { bucket: string; key: string } {
  const location = parseUri(uri);
  if (location.scheme !== 's3') throw new Error(`not an s3 URI: ${uri}`);
  return location;
}

/** Turn SDK errors into messages that say what to fix (credentials, endpoint, bucket). */
function explain(uri: string, error: unknown): Error {
  switch (s3Problem(error)) {
    case 'credentials':
      return new InputError(
        `${uri}: no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE / a web identity)`,
      );
    case 'unknown-key':
    case 'wrong-secret':
    case 'access-denied':
      return new InputError(
        `${uri}: access denied by the S3 store (${s3ErrorName(error)}): check the credentials and bucket policy`,
      );
    case 'no-bucket':
      return new InputError(`${uri}: bucket does not exist`);
    case 'unreachable': {
      const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL ?? 'AWS default endpoint';
      return new InputError(`${uri}: S3 endpoint unreachable (${endpoint}): ${(error as Error).message}`);
    }
    default:
      return error instanceof Error ? error : new Error(String(error));
  }
}

let sharedClient: S3Client | undefined;

/** One client per process. Endpoint from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, path-style for MinIO-like stores. */
export function s3Client(): S3Client {
  if (!sharedClient) {
    const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
    sharedClient = new S3Client({
      region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
      maxAttempts: S3_MAX_ATTEMPTS,
    });
  }
  return sharedClient;
}

export class S3Store implements Store {
  constructor(private readonly client: S3Client = s3Client()) {}

  async stat(uri: string): Promise<ObjectInfo | undefined> {
    const { bucket, key } = locate(uri);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return {
        uri,
        size: head.ContentLength ?? 0,
        etag: head.ETag,
        lastModified: head.LastModified?.toISOString(),
      };
    } catch (error) {
      const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404) return undefined;
      throw explain(uri, error);
    }
  }

  async read(uri: string, range: ByteRange = { start: 0 }): Promise<Readable> {
    const { bucket, key } = locate(uri);
    const open = async (r: ByteRange): Promise<AsyncIterable<Uint8Array>> => {
      if (r.end !== undefined && r.end <= r.start) return Readable.from([]);
      const header =
        r.start === 0 && r.end === undefined ? undefined : `bytes=${r.start}-${r.end === undefined ? '' : r.end - 1}`;
      try {
        const out = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: header }));
        return out.Body as Readable;
      } catch (error) {
        const e = error as { name?: string };
        if (e.name === 'NoSuchKey') throw new InputError(`${uri}: no such object`);
        throw explain(uri, error);
      }
    };
    // Fail fast on a missing object or bad credentials: open the first request here.
    const first = await open(range);
    let used = false;
    return resumableRead(
      async (r) => {
        if (!used && r.start === range.start) {
          used = true;
          return first;
        }
        return open(r);
      },
      range,
      uri,
    );
  }

  async write(uri: string, body: Body): Promise<void> {
    const { bucket, key } = locate(uri);
    try {
      if (typeof body === 'string' || Buffer.isBuffer(body)) {
        await this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
        return;
      }
      // A multipart upload becomes visible only when it completes, so a killed writer never leaves a partial object.
      await new Upload({
        client: this.client,
        params: { Bucket: bucket, Key: key, Body: body },
        partSize: PART_SIZE,
        queueSize: 2,
      }).done();
    } catch (error) {
      throw explain(uri, error);
    }
  }

  async writeIfAbsent(uri: string, body: Buffer | string): Promise<boolean> {
    const { bucket, key } = locate(uri);
    try {
      await this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, IfNoneMatch: '*' }));
      return true;
    } catch (error) {
      const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.$metadata?.httpStatusCode === 412 || e.name === 'PreconditionFailed') return false;
      // 409: a concurrent conditional write is in progress; the other writer wins.
      if (e.$metadata?.httpStatusCode === 409) return false;
      throw explain(uri, error);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const { bucket, key } = locate(prefix);
    try {
      for await (const page of paginateListObjectsV2({ client: this.client }, { Bucket: bucket, Prefix: key })) {
        for (const object of page.Contents ?? []) {
          if (object.Key === undefined) continue;
          yield {
            uri: `s3://${bucket}/${object.Key}`,
            size: object.Size ?? 0,
            etag: object.ETag,
            lastModified: object.LastModified?.toISOString(),
          };
        }
      }
    } catch (error) {
      throw explain(prefix, error);
    }
  }

  async delete(uri: string): Promise<void> {
    const { bucket, key } = locate(uri);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (error) {
      throw explain(uri, error);
    }
  }
}
