import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { harnessVersions, repoRoot } from './harness/paths.js';
import { GiveUp, startWithRetry } from './harness/proc.js';
import { rayRequest, tiktokenCacheFor, venvPython } from './harness/ray.js';
import { rayConnection } from './harness/ray-env.js';
import { freshBucket, s3Connection, s3Env, testS3Client } from './harness/s3-env.js';

describe('S3 server', () => {
  const client = testS3Client();
  afterAll(() => client.destroy());

  it('stores an object and serves a byte range of it', async () => {
    const Bucket = await freshBucket('harness');
    await client.send(new PutObjectCommand({ Bucket, Key: 'a/b.txt', Body: 'hello, ranged world' }));
    const got = await client.send(new GetObjectCommand({ Bucket, Key: 'a/b.txt', Range: 'bytes=7-12' }));
    expect(await got.Body?.transformToString()).toBe('ranged');
    expect(got.ContentRange).toBe('bytes 7-12/19');
  });

  it('hands tests the SDK environment for child processes', () => {
    const env = s3Env();
    expect(env.AWS_ENDPOINT_URL_S3).toBe(s3Connection().endpoint);
    expect(new URL(env.AWS_ENDPOINT_URL_S3).hostname).toBe('127.0.0.1');
    expect(env.AWS_REGION).toBe('us-east-1');
  });
});

describe('Ray head', () => {
  it('runs a job submitted through the Jobs REST API', async () => {
    const { dashboardUrl } = rayConnection();
    const submitted = await rayRequest(dashboardUrl, 'POST', '/api/jobs/', {
      entrypoint: 'echo hi',
      entrypoint_num_cpus: 1,
    });
    expect(submitted.status).toBe(200);
    const id = (submitted.json as { submission_id: string }).submission_id;
    let status = 'PENDING';
    for (const deadline = Date.now() + 90_000; Date.now() < deadline && !isTerminal(status);) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      status = ((await rayRequest(dashboardUrl, 'GET', `/api/jobs/${id}`)).json as { status: string }).status;
    }
    expect(status).toBe('SUCCEEDED');
    const logs = (await rayRequest(dashboardUrl, 'GET', `/api/jobs/${id}/logs`)).json as { logs: string };
    expect(logs.logs).toContain('hi\n');
  });

  it('runs the pinned Ray with a Python tiktoken that works offline', async () => {
    const { venvDir } = rayConnection();
    const code =
      'import ray, tiktoken; print(ray.__version__, tiktoken.get_encoding("cl100k_base").encode_ordinary("hello world"))';
    const out = await venvPython(venvDir, code, { ...process.env, TIKTOKEN_CACHE_DIR: tiktokenCacheFor(venvDir) });
    expect(out.trim()).toBe(`${harnessVersions().ray} [15339, 1917]`);
  });
});

describe('versions', () => {
  it('reads the harness pins from versions.yaml', () => {
    const raw = parse(readFileSync(join(repoRoot, 'versions.yaml'), 'utf8')) as Record<string, unknown>;
    expect(harnessVersions()).toEqual({
      ray: raw.ray,
      megatronCore: raw.megatronCore,
      torch: raw.torch,
      seaweedfs: raw.seaweedfs,
      pushgateway: raw.pushgateway,
    });
  });
});

describe('startWithRetry', () => {
  it('starts again only when the server died while starting', async () => {
    let calls = 0;
    const flaky = async (): Promise<string> => {
      calls++;
      if (calls < 3) throw new GiveUp('exited: port taken');
      return 'up';
    };
    expect(await startWithRetry(3, flaky)).toBe('up');
    expect(calls).toBe(3);
    calls = 0;
    await expect(
      startWithRetry(3, () => Promise.reject(new Error('timed out')).finally(() => calls++)),
    ).rejects.toThrow('timed out');
    expect(calls).toBe(1);
  });
});

function isTerminal(status: string): boolean {
  return status === 'SUCCEEDED' || status === 'FAILED' || status === 'STOPPED';
}
