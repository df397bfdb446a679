// An object-store outage in the middle of a task: a private real S3 server stops (as its pod would when deleted)
// while `run-tasks` runs a task, and starts again on the same ports with the same data 20 s later. The task rides
// the outage out by retrying with backoff and finishes; without a retry budget the same outage fails it at once. A job
// that starts while the store is down waits for it too (on a real cluster it failed with exit code 2 at once).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthLegacyDump } from '../../src/dumps/synth.js';
import { CLI_TEST_TIMEOUT, cliOk, startCli } from '../harness/cli.js';
import { envFor, s3Client, startS3Server, type S3Env, type S3Server } from '../harness/s3-server.js';

let server: S3Server;
let env: S3Env;
const BUCKET = 'tw-outage';
const manifestUri = `s3://${BUCKET}/runs/outage/manifest.json`;

beforeAll(async () => {
  server = await startS3Server();
  env = envFor(server.connection);
  const dir = mkdtempSync(join(tmpdir(), 'tw-outage-'));
  const dump = join(dir, 'synthwiki-20261122-cirrussearch-content.json.gz');
  await synthLegacyDump(dump, { wiki: 'synthwiki', bigPageMb: 0, seed: 5, docs: 1500, members: 1, parts: 1 });
  const client = s3Client(server.connection);
  await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await client.send(
    new PutObjectCommand({
      Bucket: BUCKET,
      Key: 'dumps/synthwiki-20261122-cirrussearch-content.json.gz',
      Body: readFileSync(dump),
    }),
  );
  client.destroy();
  await cliOk(
    [
      'manifest',
      '--dump',
      `s3://${BUCKET}/dumps/synthwiki-20261122-cirrussearch-content.json.gz`,
      '--manifest-uri',
      manifestUri,
      '--max-docs-per-task',
      '1500',
    ],
    { env },
  );
}, 900_000);

afterAll(async () => {
  await server?.stop();
});

/** Resolves when the process has written `text` on stderr. */
function whenStderrHas(child: ReturnType<typeof startCli>['child'], text: string): Promise<void> {
  return new Promise((resolve) => {
    let seen = '';
    child.stderr?.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes(text)) resolve();
    });
  });
}

describe('an object-store outage mid-task', { timeout: CLI_TEST_TIMEOUT }, () => {
  it('is ridden out by retries: the task finishes once the store is back, and verify passes', async () => {
    const args = [
      'run-tasks',
      '--manifest-uri',
      manifestUri,
      '--output-prefix',
      `s3://${BUCKET}/runs/outage/`,
      '--concurrency',
      '1',
    ];
    const runner = startCli([...args, '--storage-retry-seconds', '240'], { env });
    // The same outage with no retry budget: the task fails at once, with the message the submitter classifies.
    const impatient = startCli(
      [...args, '--output-prefix', `s3://${BUCKET}/runs/impatient/`, '--storage-retry-seconds', '0'],
      { env },
    );
    await Promise.all([
      whenStderrHas(runner.child, '"task started"'),
      whenStderrHas(impatient.child, '"task started"'),
    ]);
    await server.halt();
    await sleep(20_000);
    await server.resume();
    const result = await runner.done;
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    expect(result.stdout).toContain('tasks: 1 done, 0 already done (skipped), 0 failed');
    const retries = result.stderr.split('\n').filter((l) => l.includes('object store unavailable; retrying the task'));
    expect(retries.length).toBeGreaterThan(0);
    expect(retries[0]).toMatch(/S3 endpoint unreachable|ECONNREFUSED|ECONNRESET/);
    await cliOk(['verify', '--manifest-uri', manifestUri, '--output-prefix', `s3://${BUCKET}/runs/outage/`], { env });
    console.log(`[outage figures] ${JSON.stringify({ retries: retries.length })}`);

    const failed = await impatient.done;
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/failed synthwiki-\S+: .*(S3 endpoint unreachable|ECONNREFUSED)/);
  });

  it('is waited out by a job that starts during it: run-tasks retries reading the manifest', async () => {
    await server.halt();
    const runner = startCli(
      ['run-tasks', '--manifest-uri', manifestUri, '--output-prefix', `s3://${BUCKET}/runs/late/`],
      { env },
    );
    await whenStderrHas(runner.child, 'object store unavailable; retrying the manifest read');
    await server.resume();
    const result = await runner.done;
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    expect(result.stdout).toContain('tasks: 1 done, 0 already done (skipped), 0 failed');
  });
});
