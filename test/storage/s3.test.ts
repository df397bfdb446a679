import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../src/storage/s3.js';
import { listDoneTaskIds } from '../../src/tasks/marker.js';
import { storeFor } from '../../src/storage/index.js';
import { freshBucket, s3Env, testS3Client } from '../harness/s3-env.js';
import { removeDir, sha256, tempDir } from '../core/helpers.js';
import { cli, CLI_TEST_TIMEOUT, cliOk, startCli } from '../harness/cli.js';

let client: S3Client;
let bucket: string;
beforeAll(async () => {
  // The program's S3 client reads the standard environment, as it does in a real run.
  Object.assign(process.env, s3Env());
  client = testS3Client();
  bucket = await freshBucket('core-s3');
});
afterAll(() => client.destroy());

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

async function getObject(key: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function keys(prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    out.push(...(page.Contents ?? []).map((o) => o.Key as string));
    token = page.NextContinuationToken;
  } while (token);
  return out;
}

/** 20 MiB of incompressible-looking bytes, streamed in 1 MiB chunks (never one buffer). */
function bigStream(mib: number): { stream: Readable; digest: () => string } {
  const hash = { parts: [] as Buffer[] };
  async function* generate(): AsyncIterable<Buffer> {
    let x = 1;
    for (let i = 0; i < mib; i++) {
      const chunk = Buffer.alloc(1 << 20);
      for (let j = 0; j < chunk.length; j += 4)
        chunk.writeUInt32LE((x = (Math.imul(x, 1664525) + 1013904223) >>> 0), j);
      hash.parts.push(chunk);
      yield chunk;
    }
  }
  return { stream: Readable.from(generate()), digest: () => sha256(Buffer.concat(hash.parts)) };
}

describe('S3 store on the real S3 server', { timeout: CLI_TEST_TIMEOUT }, () => {
  it('writes a stream larger than the 8 MiB part size as a multipart upload, readable back byte for byte', async () => {
    const store = new S3Store();
    const uri = `s3://${bucket}/multipart/big.bin`;
    const { stream, digest } = bigStream(20);
    await store.write(uri, stream);
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'multipart/big.bin' }));
    expect(head.ContentLength).toBe(20 << 20);
    // A multipart object's ETag is "<md5 of part md5s>-<parts>": 20 MiB in 8 MiB parts is 3 parts.
    expect(head.ETag).toMatch(/-3"$/);
    expect(sha256(await readAll(await store.read(uri)))).toBe(digest());
  });

  it('serves byte ranges (half-open [start, end))', async () => {
    const store = new S3Store();
    const body = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'ranges/obj', Body: body }));
    const uri = `s3://${bucket}/ranges/obj`;
    for (const [start, end] of [
      [0, 1],
      [0, 100_000],
      [12_345, 67_890],
      [99_999, 100_000],
      [50_000, undefined],
    ] as const) {
      const got = await readAll(await store.read(uri, { start, end }));
      expect({ start, end, ok: got.equals(body.subarray(start, end)) }).toEqual({ start, end, ok: true });
    }
    expect((await readAll(await store.read(uri, { start: 10, end: 10 }))).length).toBe(0);
    await expect(store.read(`s3://${bucket}/ranges/missing`)).rejects.toThrow(/ranges\/missing: no such object/);
  });

  it('lists more than 1,000 keys (pagination), in key order', async () => {
    const n = 1_050;
    const names = Array.from({ length: n }, (_, i) => `run/markers/t-${String(i).padStart(5, '0')}.json`);
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(
        names.slice(i, i + 50).map((Key) => client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: '{}' }))),
      );
    }
    const listed: string[] = [];
    for await (const info of storeFor(`s3://${bucket}/run/markers/`).list(`s3://${bucket}/run/markers/`))
      listed.push(info.uri);
    expect(listed).toEqual(names.map((k) => `s3://${bucket}/${k}`));
    expect((await listDoneTaskIds(`s3://${bucket}/run`)).size).toBe(n);
  });
});

describe('a killed run-tasks, re-run', { timeout: CLI_TEST_TIMEOUT }, () => {
  let dir: string;
  let manifest: string;
  let taskIds: string[];
  beforeAll(() => {
    dir = tempDir('kill');
  });
  afterAll(() => removeDir(dir));

  it('leaves no marker for the unfinished task; the re-run completes with the same shard bytes as a clean run', async () => {
    const dump = `${dir}/killwiki-20261122-cirrussearch-content.json.gz`;
    await cliOk(['synth', '--docs', '200', '--seed', '21', '--out', dump]);
    manifest = `s3://${bucket}/kill/manifest.json`;
    const env = s3Env();
    await cliOk(['manifest', '--dump', dump, '--manifest-uri', manifest, '--max-docs-per-task', '20'], { env });
    taskIds = (
      JSON.parse((await getObject('kill/manifest.json')).toString()) as { tasks: Array<{ task_id: string }> }
    ).tasks.map((t) => t.task_id);
    expect(taskIds.length).toBe(10);

    // One lane: tasks run in manifest order, so the task after the last marker is the one cut off.
    const killed = `s3://${bucket}/kill/a`;
    const { child, done } = startCli(
      ['run-tasks', '--manifest-uri', manifest, '--output-prefix', killed, '--concurrency', '1'],
      { env },
    );
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr?.on('data', (d: Buffer) => {
        seen += d.toString();
        if (seen.includes('"msg":"task done"')) resolve();
      });
      child.once('close', () => reject(new Error(`run-tasks ended before it could be killed:\n${seen}`)));
    });
    process.kill(-(child.pid as number), 'SIGKILL');
    const result = await done;
    expect(result.signal).toBe('SIGKILL');

    const markers = (await keys('kill/a/markers/')).map((k) => k.slice('kill/a/markers/'.length, -'.json'.length));
    expect(markers.length).toBeGreaterThanOrEqual(1);
    expect(markers.length).toBeLessThan(taskIds.length);
    expect(markers).toEqual(taskIds.slice(0, markers.length));
    const unfinished = taskIds[markers.length] as string;
    expect(await keys(`kill/a/markers/${unfinished}`)).toEqual([]);
    // Every shard present is whole: a multipart/put upload only appears once complete. The unfinished task's shard
    // may be there (the kill can land between its upload and its marker): whole, yet not marked done.
    for (const key of await keys('kill/a/shards/')) {
      const taskId = key.slice('kill/a/shards/'.length, -'.jsonl.gz'.length);
      if (markers.includes(taskId)) continue;
      expect(taskId).toBe(unfinished);
      expect(gunzipSync(await getObject(key)).length).toBeGreaterThan(0);
    }
    const incomplete = await cli(['verify', '--manifest-uri', manifest, '--output-prefix', killed], { env });
    expect(incomplete.code).toBe(1);
    expect(incomplete.stdout).toMatch(
      new RegExp(`missing markers \\(${taskIds.length - markers.length}\\): ${unfinished}`),
    );

    const rerun = await cliOk(
      ['run-tasks', '--manifest-uri', manifest, '--output-prefix', killed, '--concurrency', '2'],
      { env },
    );
    expect(rerun.stdout).toMatch(
      new RegExp(`tasks: ${taskIds.length - markers.length} done, ${markers.length} already done`),
    );
    const clean = `s3://${bucket}/kill/b`;
    await cliOk(['run-tasks', '--manifest-uri', manifest, '--output-prefix', clean, '--concurrency', '2'], { env });
    for (const prefix of [killed, clean]) {
      const verify = await cli(['verify', '--manifest-uri', manifest, '--output-prefix', prefix, '--deep'], { env });
      expect(verify.stdout).toMatch(/verify: OK/);
    }
    for (const id of taskIds) {
      expect({ id, sha256: sha256(await getObject(`kill/a/shards/${id}.jsonl.gz`)) }).toEqual({
        id,
        sha256: sha256(await getObject(`kill/b/shards/${id}.jsonl.gz`)),
      });
    }
  });

  it('to a local folder, killed while a shard is being written: no marker, and the re-run writes the same shards', async () => {
    const out = join(dir, 'local');
    const env = s3Env(); // the manifest and its index files are on S3
    const { child, done } = startCli(
      ['run-tasks', '--manifest-uri', manifest, '--output-dir', out, '--concurrency', '1'],
      { env },
    );
    // A local shard is written to a temp file and renamed when complete: kill while one exists.
    let inProgress: string | undefined;
    for (const deadline = Date.now() + 300_000; inProgress === undefined && Date.now() < deadline; await sleep(10)) {
      inProgress = (existsSync(join(out, 'shards')) ? readdirSync(join(out, 'shards')) : []).find((name) =>
        name.includes('.tmp-'),
      );
      if (child.exitCode !== null) break;
    }
    process.kill(-(child.pid as number), 'SIGKILL');
    await done;
    expect(inProgress, 'no shard was seen in progress').toBeDefined();
    const taskId = (inProgress as string).slice(0, (inProgress as string).indexOf('.jsonl.gz'));
    expect(existsSync(join(out, 'markers', `${taskId}.json`))).toBe(false);
    expect(existsSync(join(out, 'shards', `${taskId}.jsonl.gz`))).toBe(false);

    await cliOk(['run-tasks', '--manifest-uri', manifest, '--output-dir', out, '--concurrency', '2'], { env });
    const verify = await cli(['verify', '--manifest-uri', manifest, '--output-dir', out, '--deep'], { env });
    expect(verify.stdout).toMatch(/verify: OK/);
    for (const id of taskIds) {
      expect({ id, sha256: sha256(readFileSync(join(out, 'shards', `${id}.jsonl.gz`))) }).toEqual({
        id,
        sha256: sha256(await getObject(`kill/b/shards/${id}.jsonl.gz`)),
      });
    }
  });
});
