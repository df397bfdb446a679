// Shared pieces of the submitter's Ray tests: synthetic dumps, run files, reconcile ticks on a real Ray head.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { readManifest } from '../../src/manifest/index.js';
import { RayJobsApiBackend } from '../../src/runs/backends/ray-jobs-api.js';
import { TERMINAL, type JobInfo } from '../../src/runs/backends/backend.js';
import { runStoreLease } from '../../src/runs/lease.js';
import { reconcileOnce, type TickReport } from '../../src/runs/reconcile.js';
import { parseRunFile, type RunFile } from '../../src/runs/run-file.js';
import { readMarker } from '../../src/tasks/marker.js';
import { completeRun } from '../../src/tasks/complete.js';
import { synthLegacyDump, synthPartsDump } from '../../src/dumps/synth.js';

export const quietLogger = createLogger();
quietLogger.level = process.env.TW_TEST_LOG_LEVEL ?? 'warn';

/** A legacy .json.gz dump (2 gzip members) and a folder of 3 .json.bz2 parts: 600 docs, 6 tasks of 100. */
export async function synthDumps(dir: string): Promise<{ legacy: string; parts: string }> {
  const common = { wiki: 'synthwiki', bigPageMb: 0 };
  const legacy = join(dir, 'synthwiki-20261122-cirrussearch-content.json.gz');
  await synthLegacyDump(legacy, { ...common, seed: 11, docs: 300, members: 2, parts: 1 });
  const parts = join(dir, 'cirrus_search_index/20261122/index_name=synthwiki_content');
  await synthPartsDump(parts, { ...common, seed: 12, docs: 300, members: 1, parts: 3 });
  return { legacy, parts };
}

/** Upload a local file or folder to s3://bucket/key…, returning the s3:// URI of the same shape. */
export async function upload(
  client: S3Client,
  bucket: string,
  local: string,
  key: string,
  isDir: boolean,
): Promise<string> {
  if (!isDir) {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: readFileSync(local) }));
    return `s3://${bucket}/${key}`;
  }
  for (const name of readdirSync(local)) {
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: `${key}/${name}`, Body: readFileSync(join(local, name)) }),
    );
  }
  return `s3://${bucket}/${key}/`;
}

export function writeRunFile(dir: string, fields: Record<string, unknown>): { path: string; run: RunFile } {
  const path = join(dir, `${String(fields.run_id)}.yaml`);
  const text = Object.entries(fields)
    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
    .join('\n');
  writeFileSync(path, text + '\n');
  return { path, run: parseRunFile(text, path) };
}

export function backendOf(run: RunFile): RayJobsApiBackend {
  if (run.backend.kind !== 'ray-jobs-api') throw new Error('these tests use the ray-jobs-api backend');
  return new RayJobsApiBackend(run.backend.dashboard_url);
}

export async function tick(run: RunFile): Promise<TickReport> {
  return reconcileOnce(run, {
    backend: backendOf(run),
    lease: runStoreLease(run.output_prefix, 'test-submitter', 60_000),
    logger: quietLogger,
  });
}

/** Wait until none of the run's jobs is pending or running (what happens between two CronJob ticks). */
export async function waitUntilJobsEnd(run: RunFile, timeoutMs = 240_000): Promise<JobInfo[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const jobs = await backendOf(run).list(run.run_id);
    if (jobs.every((j) => TERMINAL.has(j.status))) return jobs;
    if (Date.now() > deadline)
      throw new Error(`jobs still running after ${timeoutMs} ms: ${jobs.map((j) => `${j.id} ${j.status}`).join(', ')}`);
    await sleep(300);
  }
}

/** Tick, let the submitted jobs finish, tick again … until the run is complete; returns the number of ticks. */
export async function ticksUntilComplete(run: RunFile, maxTicks = 12): Promise<{ ticks: number; last: TickReport }> {
  for (let ticks = 1; ticks <= maxTicks; ticks++) {
    const report = await tick(run);
    if (report.progress?.complete) return { ticks, last: report };
    await waitUntilJobsEnd(run);
  }
  throw new Error(`run ${run.run_id} not complete after ${maxTicks} ticks`);
}

/** Every doc of the manifest exactly once: the deep verify (shard hashes, row counts, page ids unique per dump). */
export async function expectExactlyOnce(run: RunFile): Promise<void> {
  const manifest = await readManifest(run.manifest_uri);
  const report = await completeRun(manifest, run.output_prefix, { deep: true });
  expect(report.problems).toEqual([]);
  expect(report).toMatchObject({ ok: true, done: manifest.tasks.length });
  expect(report.totals.docs).toBe(manifest.totals.docs);
}

/**
 * Poll until the job's driver is RUNNING. Its tasks are small: on a quiet machine a job finishes all of them within
 * moments of its first marker, so a test that must stop a job with work left stops it here, before any task ends.
 */
export async function waitForJobRunning(run: RunFile, jobId: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = (await backendOf(run).list(run.run_id)).find((j) => j.id === jobId);
    if (job?.status === 'RUNNING') return;
    if (job && TERMINAL.has(job.status))
      throw new Error(`job ${jobId} ended (${job.status}) before it was seen running`);
    if (Date.now() > deadline)
      throw new Error(`job ${jobId} not running within ${timeoutMs} ms (${job?.status ?? 'unknown'})`);
    await sleep(50);
  }
}

/** Poll until a marker of one of `tasks` exists (a job is mid-run). */
export async function waitForMarker(run: RunFile, tasks: readonly string[], timeoutMs = 120_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const task of tasks) if (await readMarker(run.output_prefix, task)) return task;
    if (Date.now() > deadline) throw new Error(`no marker of ${tasks.join(', ')} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** pids of `tokenize-wiki run-tasks` processes whose command line mentions `needle` (e.g. the output prefix). */
export function runTasksPids(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    if (
      cmdline.includes('run-tasks') &&
      cmdline.includes(needle) &&
      !cmdline.startsWith('/bin/sh') &&
      !cmdline.startsWith('sh ')
    )
      pids.push(Number(entry));
  }
  return pids;
}
