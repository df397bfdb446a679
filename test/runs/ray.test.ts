// The submitter against a real Ray head (its own: one test restarts it) and the harness's real S3 server:
// a full multi-dump run, faults healed by further reconcile ticks, quarantine and requeue, two submitters at once,
// and the daemon's /metrics. Figures (ticks to heal, docs/s, tokens/s, per-job overhead) are printed as
// `[runs figures]` lines.
import { cpSync, mkdtempSync, openSync, readFileSync, writeSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureManifest, readManifest } from '../../src/manifest/index.js';
import { TERMINAL } from '../../src/runs/backends/backend.js';
import { manifestOptionsOf, type RunFile } from '../../src/runs/run-file.js';
import { loadRunState } from '../../src/runs/state.js';
import { readStatus } from '../../src/runs/status.js';
import { joinUri, storeFor } from '../../src/storage/index.js';
import { readMarker } from '../../src/tasks/marker.js';
import { cli, startCli } from '../harness/cli.js';
import { freePorts, waitFor } from '../harness/proc.js';
import { startRayHead, type RayHead } from '../harness/ray.js';
import { freshBucket, s3Env, testS3Client } from '../harness/s3-env.js';
import {
  backendOf,
  expectExactlyOnce,
  quietLogger,
  runTasksPids,
  synthDumps,
  tick,
  ticksUntilComplete,
  upload,
  waitForJobRunning,
  waitForMarker,
  waitUntilJobsEnd,
  writeRunFile,
} from './helpers.js';

const LONG = 420_000;
let head: RayHead;
let bucket = '';
let dir = '';
let dumps: { legacy: string; parts: string; localParts: string };

beforeAll(async () => {
  Object.assign(process.env, s3Env());
  dir = mkdtempSync(join(tmpdir(), 'tw-runs-'));
  const client = testS3Client();
  const [started, local, b] = await Promise.all([
    startRayHead({ env: s3Env(), numCpus: 2 }),
    synthDumps(dir),
    freshBucket('runs-ray', client),
  ]);
  head = started;
  bucket = b;
  dumps = {
    legacy: await upload(client, bucket, local.legacy, 'dumps/synthwiki-20261122-cirrussearch-content.json.gz', false),
    parts: await upload(
      client,
      bucket,
      local.parts,
      'dumps/cirrus_search_index/20261122/index_name=synthwiki_content',
      true,
    ),
    localParts: local.parts,
  };
  client.destroy();
}, 900_000);

afterAll(async () => {
  await head?.stop();
});

function runOf(name: string, fields: Record<string, unknown> = {}): { path: string; run: RunFile } {
  return writeRunFile(dir, {
    run_id: name,
    dumps: [dumps.legacy, dumps.parts],
    output_prefix: `s3://${bucket}/runs/${name}/`,
    max_docs_per_task: 100,
    tasks_per_job: 2,
    cpus_per_job: 1,
    max_jobs_in_flight: 2,
    max_attempts: 3,
    backend: { kind: 'ray-jobs-api', dashboard_url: head.connection.dashboardUrl },
    ...fields,
  });
}

const figure = (what: string, value: unknown): void => console.log(`[runs figures] ${what}: ${JSON.stringify(value)}`);

describe('submitter on a real Ray head', () => {
  it(
    'runs a multi-dump run to completion through the Ray Jobs API; verify passes',
    async () => {
      const { run } = runOf('full');
      const started = Date.now();
      const { ticks, last } = await ticksUntilComplete(run);
      const wall = (Date.now() - started) / 1000;
      // 6 tasks, 2 per job, 2 jobs in flight: submit 2 jobs; then, with the throughput measured, the last 2 tasks as a
      // fair share over the 2 free slots (1 each); then verify.
      expect(ticks).toBe(3);
      expect(last.progress).toMatchObject({
        complete: true,
        tasks: { total: 6, done: 6, in_flight: 0, quarantined: 0 },
        failed_attempts: 0,
      });
      await expectExactlyOnce(run);
      expect(
        await storeFor(joinUri(run.output_prefix, '_SUCCESS')).stat(joinUri(run.output_prefix, '_SUCCESS')),
      ).toBeDefined();

      // Figures: throughput over the run, and per job the time from submit to its first task starting.
      const manifest = await readManifest(run.manifest_uri);
      const jobs = (await backendOf(run).list(run.run_id)).sort((a, b) => a.id.localeCompare(b.id));
      expect(jobs.map((j) => j.tasks.length)).toEqual([2, 2, 1, 1]);
      expect(jobs.every((j) => j.status === 'SUCCEEDED')).toBe(true);
      const markers = await Promise.all(
        manifest.tasks.map(async (t) => (await readMarker(run.output_prefix, t.task_id))!),
      );
      const firstSubmit = Math.min(...jobs.map((j) => Date.parse(j.submitted_at!)));
      const lastFinish = Math.max(...markers.map((m) => Date.parse(m.finished_at)));
      const docs = markers.reduce((n, m) => n + m.docs, 0);
      const tokens = markers.reduce((n, m) => n + m.tokens, 0);
      const seconds = (lastFinish - firstSubmit) / 1000;
      const taskSeconds = markers.reduce(
        (n, m) => n + (Date.parse(m.finished_at) - Date.parse(m.started_at)) / 1000,
        0,
      );
      const overheads = jobs.map((j) => {
        const first = Math.min(...j.tasks.map((t) => Date.parse(markers.find((m) => m.task_id === t)!.started_at)));
        return (first - Date.parse(j.submitted_at!)) / 1000;
      });
      figure('full run', {
        ticks,
        wall_seconds: Math.round(wall),
        docs,
        tokens,
        docs_per_second_submit_to_last_marker: Math.round(docs / seconds),
        tokens_per_second_submit_to_last_marker: Math.round(tokens / seconds),
        docs_per_task_second: Math.round(docs / taskSeconds),
        tokens_per_task_second: Math.round(tokens / taskSeconds),
        job_overhead_submit_to_first_task_seconds: overheads.map((s) => Math.round(s * 10) / 10),
      });

      // A tick on a complete run changes nothing.
      const again = await tick(run);
      expect(again.submitted).toEqual([]);
      expect(again.progress?.complete).toBe(true);
    },
    LONG,
  );

  it(
    'heals a job stopped mid-run',
    async () => {
      const { run } = runOf('stopped', { tasks_per_job: 3 });
      const first = await tick(run);
      const victim = first.submitted[0]!;
      await waitForJobRunning(run, victim.id);
      await backendOf(run).stop(victim.id);
      await waitUntilJobsEnd(run);
      const { ticks } = await ticksUntilComplete(run);
      const state = await loadRunState(run.output_prefix);
      const retried = Object.keys(state.attempts.tasks);
      expect(retried.length).toBeGreaterThan(0);
      for (const task of retried) expect(victim.tasks).toContain(task);
      expect(state.attempts.tasks[retried[0]!]?.last_error).toMatch(/STOPPED/);
      await expectExactlyOnce(run);
      figure('heal ticks: job stopped mid-run', { ticks, retried_tasks: retried.length });
    },
    LONG,
  );

  it(
    'heals a killed runner process',
    async () => {
      const { run } = runOf('killed', { tasks_per_job: 3 });
      const first = await tick(run);
      const victim = first.submitted[0]!;
      // Killed as soon as it runs, not after its first marker: with the native tokenizer a job of small tasks
      // finishes them all within moments of the first, and nothing would be left to heal.
      const pids = await waitFor("the victim job's run-tasks process", 120_000, () => {
        const found = runTasksPids(`--tasks ${victim.tasks.join(',')}`);
        return Promise.resolve(found.length > 0 ? found : undefined);
      });
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      await waitUntilJobsEnd(run);
      expect((await backendOf(run).list(run.run_id)).find((j) => j.id === victim.id)?.status).toBe('FAILED');
      const { ticks } = await ticksUntilComplete(run);
      const state = await loadRunState(run.output_prefix);
      expect(Object.keys(state.attempts.tasks).length).toBeGreaterThan(0);
      await expectExactlyOnce(run);
      figure('heal ticks: runner killed', { ticks, retried_tasks: Object.keys(state.attempts.tasks).length });
    },
    LONG,
  );

  it(
    'heals a Ray head restarted with jobs in flight',
    async () => {
      const { run } = runOf('head-restart', { tasks_per_job: 3 });
      const first = await tick(run);
      await waitForMarker(
        run,
        first.submitted.flatMap((s) => s.tasks),
      );
      // The head's node is lost with everything on it. Drivers run in sessions of their own and would outlive a
      // killed `ray start` here (and finish their tasks, which heals nothing), so they go first.
      const drivers = runTasksPids(run.output_prefix);
      expect(drivers.length).toBeGreaterThan(0);
      for (const pid of drivers) process.kill(pid, 'SIGKILL');
      await head.restart();
      // The restarted head has no record of the jobs (no GCS persistence): they vanished.
      expect(await backendOf(run).list(run.run_id)).toEqual([]);
      const { ticks } = await ticksUntilComplete(run);
      const state = await loadRunState(run.output_prefix);
      const vanished = Object.values(state.attempts.tasks).filter((a) => /vanished/.test(a.last_error));
      expect(vanished.length).toBeGreaterThan(0);
      await expectExactlyOnce(run);
      figure('heal ticks: head restarted', { ticks, retried_tasks: vanished.length });
    },
    LONG,
  );

  it(
    'quarantines a corrupt task range after max_attempts, finishes the rest, and finishes it after requeue',
    async () => {
      const local = join(dir, 'corrupt-parts');
      cpSync(dumps.localParts, local, { recursive: true });
      const { path, run } = runOf('corrupt', {
        dumps: [local],
        tasks_per_job: 1,
        max_jobs_in_flight: 3,
        max_attempts: 2,
      });
      const manifest = await ensureManifest(run.dumps, run.manifest_uri, manifestOptionsOf(run), quietLogger);
      expect(manifest.tasks).toHaveLength(3);
      // Same size, different bytes in the middle of one part: its task's blocks fail the bzip2 CRC.
      const bad = manifest.tasks[1]!;
      const file = manifest.dumps.find((d) => d.name === bad.dump)!.uri;
      const original = readFileSync(file);
      const fd = openSync(file, 'r+');
      writeSync(fd, Buffer.alloc(64, 0x55), 0, 64, Math.floor(statSync(file).size / 2));
      closeSync(fd);

      let ticks = 0;
      let report = await tick(run);
      for (ticks = 1; !(report.progress?.tasks.quarantined === 1 && report.progress.tasks.done === 2); ticks++) {
        expect(ticks).toBeLessThan(8);
        await waitUntilJobsEnd(run);
        report = await tick(run);
      }
      expect(
        report.quarantined.concat(Object.keys((await loadRunState(run.output_prefix)).quarantine.tasks)),
      ).toContain(bad.task_id);
      expect(report.progress).toMatchObject({
        complete: false,
        tasks: { done: 2, quarantined: 1, in_flight: 0, pending: 0 },
      });

      // status shows it, with the reason.
      const env = s3Env();
      const status = await cli(['status', '--run', path], { env });
      expect(status.code).toBe(0);
      expect(status.stdout).toContain('quarantined tasks (1');
      expect(status.stdout).toContain(bad.task_id);
      expect(status.stdout).toMatch(/bzip2|CRC|corrupt/i);
      const json = JSON.parse((await cli(['status', '--run', path, '--json'], { env })).stdout) as {
        quarantined: Array<{ task_id: string; failures: number }>;
      };
      expect(json.quarantined).toEqual([expect.objectContaining({ task_id: bad.task_id, failures: 2 })]);
      figure('status with a quarantined task', status.stdout);

      // A quarantined task is not resubmitted …
      expect((await tick(run)).submitted).toEqual([]);
      // … until a person fixes the data and requeues it.
      expect((await cli(['requeue', '--run', path, '--tasks', 'no-such-task'], { env })).code).toBe(2);
      const fd2 = openSync(file, 'r+');
      writeSync(fd2, original, 0, original.length, 0);
      closeSync(fd2);
      const requeue = await cli(['requeue', '--run', path, '--tasks', bad.task_id], { env });
      expect(requeue.code).toBe(0);
      expect(requeue.stdout).toContain(`requeued 1 task(s): ${bad.task_id}`);
      const healed = await ticksUntilComplete(run);
      await expectExactlyOnce(run);
      figure('corrupt range', { ticks_until_quarantined: ticks, ticks_after_requeue: healed.ticks });
    },
    LONG,
  );

  it(
    'lets only one of two submitters started at the same moment act: no task is submitted twice',
    async () => {
      const { path, run } = runOf('two-submitters', { dumps: [dumps.parts], tasks_per_job: 1, max_jobs_in_flight: 3 });
      await ensureManifest(run.dumps, run.manifest_uri, manifestOptionsOf(run), quietLogger);
      const env = s3Env();
      let skipped = 0;
      for (let round = 0; round < 6; round++) {
        const [a, b] = await Promise.all([
          cli(['submit', '--run', path, '--once'], { env }),
          cli(['submit', '--run', path, '--once'], { env }),
        ]);
        expect([a.code, b.code], `round ${round}:\n${a.stderr}\n${b.stderr}`).toEqual([0, 0]);
        skipped += [a, b].filter((r) => r.stdout.includes('lease held by')).length;
        if ((await readStatus(run)).complete) break;
        await waitUntilJobsEnd(run);
      }
      expect((await readStatus(run)).complete).toBe(true);
      const submitted = (await backendOf(run).list(run.run_id)).flatMap((j) => j.tasks);
      expect(submitted.length).toBe(3);
      expect(new Set(submitted).size).toBe(submitted.length);
      await expectExactlyOnce(run);
      figure('two submitters', { ticks_skipped_because_lease_held: skipped });
    },
    LONG,
  );

  it(
    'runs as a daemon on a schedule, serving /healthz and /metrics that move during the run',
    async () => {
      // The manifest is made by a job on the cluster here (manifest_in_job), as a CronJob with a deadline needs it.
      const { path, run } = runOf('daemon', {
        dumps: [dumps.parts],
        tasks_per_job: 1,
        max_jobs_in_flight: 2,
        manifest_in_job: true,
      });
      const [port] = await freePorts(1);
      const daemon = startCli(
        [
          'submit',
          '--run',
          path,
          '--schedule',
          '*/2 * * * * *',
          '--metrics-port',
          String(port),
          '--metrics-host',
          '127.0.0.1',
        ],
        { env: s3Env() },
      );
      const base = `http://127.0.0.1:${port}`;
      const doneValues: number[] = [];
      let text = '';
      try {
        for (const deadline = Date.now() + 300_000; ;) {
          expect(Date.now()).toBeLessThan(deadline);
          await sleep(1000);
          const res = await fetch(`${base}/metrics`).catch(() => undefined);
          if (!res) continue;
          text = await res.text();
          const done = new RegExp(`^tokenize_wiki_tasks\\{run_id="daemon",state="done"\\} (\\d+)$`, 'm').exec(text);
          if (done) doneValues.push(Number(done[1]));
          if (text.includes('tokenize_wiki_run_complete{run_id="daemon"} 1')) break;
        }
        const health = await fetch(`${base}/healthz`);
        expect(health.status).toBe(200);
        expect(await health.json()).toMatchObject({ ok: true, runs: ['daemon'], last_error: null });
      } finally {
        daemon.child.kill('SIGTERM');
      }
      const exit = await daemon.done;
      expect(exit.code).toBe(0);
      expect(doneValues[0]).toBeLessThan(3);
      expect(doneValues.at(-1)).toBe(3);
      expect(text).toMatch(/^tokenize_wiki_tasks\{run_id="daemon",state="total"\} 3$/m);
      expect(text).toMatch(/^tokenize_wiki_docs\{run_id="daemon",state="done"\} 300$/m);
      expect(text).toMatch(/^tokenize_wiki_reconcile_total\{run_id="daemon",result="ok"\} \d+$/m);
      expect(text).toMatch(/^tokenize_wiki_last_successful_reconcile_timestamp_seconds\{run_id="daemon"\} \d/m);
      expect(text).toMatch(/^tokenize_wiki_lease_held\{run_id="daemon",holder="[^"]+"\} 1$/m);
      // A job's duration is recorded when a tick sees it end; the run can complete (all markers present) while the
      // last job's driver is still exiting, so on a slow machine fewer than all three may have been seen by then.
      expect(text).toMatch(/^tokenize_wiki_job_duration_seconds_count\{run_id="daemon",outcome="succeeded"\} [123]$/m);
      const jobs = await backendOf(run).list(run.run_id);
      expect(jobs.every((j) => TERMINAL.has(j.status))).toBe(true);
      expect(jobs.map((j) => j.id)).toContain('daemon-manifest-a1');
      figure(
        'daemon /metrics sample',
        text
          .split('\n')
          .filter((l) => l.startsWith('tokenize_wiki_') && !l.startsWith('tokenize_wiki_submitter_'))
          .join('\n'),
      );
    },
    LONG,
  );
});
