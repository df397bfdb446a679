// `submit` against the harness's shared Ray head and S3 server, as the CronJob runs it: every run file of the mounted
// folder in one tick (a bad file named, the others reconciled), slots kept full within one tick (and by the daemon
// between its scheduled ticks), the run metrics pushed to a real Pushgateway, and one submitter log line per failed
// task with the task's error.
import { cpSync, mkdirSync, mkdtempSync, openSync, statSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureManifest } from '../../src/manifest/index.js';
import { manifestOptionsOf } from '../../src/runs/run-file.js';
import { readStatus } from '../../src/runs/status.js';
import { cli, startCli } from '../harness/cli.js';
import { freePorts } from '../harness/proc.js';
import { startPushgateway, type PushgatewayServer } from '../harness/pushgateway.js';
import { rayConnection } from '../harness/ray-env.js';
import { freshBucket, s3Env, testS3Client } from '../harness/s3-env.js';
import {
  backendOf,
  expectExactlyOnce,
  quietLogger,
  synthDumps,
  upload,
  waitUntilJobsEnd,
  writeRunFile,
} from './helpers.js';

const LONG = 600_000;
let dir = '';
let bucket = '';
let parts = '';
let localParts = '';
let pushgateway: PushgatewayServer;

beforeAll(async () => {
  Object.assign(process.env, s3Env());
  dir = mkdtempSync(join(tmpdir(), 'tw-submit-'));
  const client = testS3Client();
  const [local, b, gateway] = await Promise.all([
    synthDumps(dir),
    freshBucket('runs-submit', client),
    startPushgateway(),
  ]);
  bucket = b;
  pushgateway = gateway;
  localParts = local.parts;
  parts = await upload(
    client,
    bucket,
    local.parts,
    'dumps/cirrus_search_index/20261122/index_name=synthwiki_content',
    true,
  );
  client.destroy();
}, 900_000);

afterAll(async () => {
  await pushgateway?.stop();
});

function runFields(name: string, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    run_id: name,
    dumps: [parts],
    output_prefix: `s3://${bucket}/runs/${name}/`,
    max_docs_per_task: 100,
    tasks_per_job: 1,
    cpus_per_job: 1,
    max_jobs_in_flight: 1,
    max_attempts: 3,
    backend: { kind: 'ray-jobs-api', dashboard_url: rayConnection().dashboardUrl },
    ...fields,
  };
}

const figure = (what: string, value: unknown): void =>
  console.log(`[submit figures] ${what}: ${JSON.stringify(value)}`);

describe('submit', () => {
  it(
    'reconciles every run file of a folder; a bad run file is named and does not stop the others',
    async () => {
      const folder = join(dir, 'runs-folder');
      mkdirSync(folder);
      const a = writeRunFile(folder, runFields('folder-a'));
      const b = writeRunFile(folder, runFields('folder-b'));
      writeFileSync(join(folder, 'broken.yaml'), 'run_id: broken\ndumps: []\n');
      // What a mounted ConfigMap holds besides the files: dot-entries that are not run files.
      mkdirSync(join(folder, '..2026_12_04_19_00_00.000000001'));
      const tick = await cli(['submit', '--run', folder, '--once'], { env: s3Env() });
      expect(tick.code).toBe(2);
      expect(tick.stderr).toContain(join(folder, 'broken.yaml'));
      expect(tick.stdout).toMatch(/^run folder-a: 0\/3 tasks done, 1 in flight, 0 quarantined; submitted 1 jobs/m);
      expect(tick.stdout).toMatch(/^run folder-b: 0\/3 tasks done, 1 in flight, 0 quarantined; submitted 1 jobs/m);
      for (const { run } of [a, b]) {
        expect((await backendOf(run).list(run.run_id)).map((j) => j.tasks.length)).toEqual([1]);
        await waitUntilJobsEnd(run);
      }
    },
    LONG,
  );

  it(
    'a paused run submits nothing, not even its manifest job, and says so; once resumed it runs',
    async () => {
      const fields = runFields('paused', { manifest_in_job: true, paused: true });
      const { path, run } = writeRunFile(dir, fields);
      const paused = await cli(['submit', '--run', path, '--once'], { env: s3Env() });
      expect(paused.code, paused.stderr.slice(-3000)).toBe(0);
      expect(paused.stdout).toMatch(
        /^run paused: no manifest yet; submitted 0 manifest jobs; paused: nothing new submitted$/m,
      );
      expect(await backendOf(run).list(run.run_id)).toEqual([]);

      writeRunFile(dir, { ...fields, paused: false });
      const resumed = await cli(['submit', '--run', path, '--once'], { env: s3Env() });
      expect(resumed.code, resumed.stderr.slice(-3000)).toBe(0);
      expect(resumed.stdout).toMatch(/^run paused: no manifest yet; submitted 1 manifest jobs$/m);
      expect((await waitUntilJobsEnd(run)).map((j) => j.id)).toEqual(['paused-manifest-a1']);
    },
    LONG,
  );

  it(
    'a tick stops at once on SIGTERM (as a deleted or evicted CronJob pod gets it), and the next tick takes over',
    async () => {
      const { path, run } = writeRunFile(dir, runFields('sigterm'));
      const tick = startCli(['submit', '--run', path, '--once', '--budget-seconds', '300', '--poll-seconds', '1'], {
        env: s3Env(),
      });
      // The signal comes once its first job is listed: mid-pass (the lease held) or already waiting within its budget.
      // Either way the next tick must take over at once, not after --lease-seconds (120 s).
      for (const deadline = Date.now() + 120_000; (await backendOf(run).list(run.run_id)).length === 0;) {
        expect(Date.now()).toBeLessThan(deadline);
        await sleep(300);
      }
      const signalled = Date.now();
      tick.child.kill('SIGTERM');
      const exit = await tick.done;
      expect(exit.signal ?? exit.code).toBe(143);
      expect(Date.now() - signalled).toBeLessThan(10_000);
      expect(exit.stderr).toContain('stopping on SIGTERM');
      await waitUntilJobsEnd(run);
      const next = await cli(['submit', '--run', path, '--once', '--budget-seconds', '300', '--poll-seconds', '1'], {
        env: s3Env(),
      });
      expect(next.code, next.stderr.slice(-3000)).toBe(0);
      expect(next.stdout).not.toContain('lease held');
      expect(next.stdout).toMatch(/^run sigterm: 3\/3 tasks done, .*; complete$/m);
      await expectExactlyOnce(run);
    },
    LONG,
  );

  it(
    'keeps the slots full within one tick and pushes the run metrics to the Pushgateway',
    async () => {
      const { path, run } = writeRunFile(dir, runFields('keep-busy'));
      const started = Date.now();
      const tick = await cli(
        [
          'submit',
          '--run',
          path,
          '--once',
          '--budget-seconds',
          '300',
          '--poll-seconds',
          '1',
          '--pushgateway',
          pushgateway.url,
        ],
        { env: s3Env() },
      );
      expect(tick.code, tick.stderr.slice(-3000)).toBe(0);
      // One slot, three tasks: the run completes within the one tick, each job submitted as the one before it ended.
      expect(tick.stdout).toMatch(
        /^run keep-busy: 3\/3 tasks done, 0 in flight, 0 quarantined; submitted 0 jobs, stopped 0; complete$/m,
      );
      await expectExactlyOnce(run);
      const jobs = await backendOf(run).list(run.run_id);
      // After the first task the rest are sized from its measured throughput (here: both in one job).
      expect(jobs.length).toBeGreaterThanOrEqual(2);
      const status = await readStatus(run);
      expect(status.throughput.docs_per_cpu_second).toBeGreaterThan(0);

      const metrics = await (await fetch(`${pushgateway.url}/metrics`)).text();
      const series = (name: string, labels: string): RegExp =>
        new RegExp(
          `^${name}\\{(?=[^}]*job="tokenize-wiki-submitter")(?=[^}]*run_id="keep-busy")${labels}[^}]*\\} (\\S+)$`,
          'm',
        );
      expect(metrics).toMatch(series('tokenize_wiki_tasks', '(?=[^}]*state="done")'));
      expect(series('tokenize_wiki_tasks', '(?=[^}]*state="done")').exec(metrics)?.[1]).toBe('3');
      expect(series('tokenize_wiki_run_complete', '').exec(metrics)?.[1]).toBe('1');
      expect(metrics).toMatch(series('tokenize_wiki_last_successful_reconcile_timestamp_seconds', ''));
      // Levels only: a tick's counters would restart at every push.
      expect(metrics).not.toMatch(/^tokenize_wiki_reconcile_total/m);
      figure('keep-busy: one --once tick', {
        seconds: Math.round((Date.now() - started) / 1000),
        jobs: jobs.map((j) => j.tasks.length),
        docs_per_cpu_second: status.throughput.docs_per_cpu_second,
      });
    },
    LONG,
  );

  it(
    'as a daemon, ticks again as soon as a job ends, not only on its schedule',
    async () => {
      const { path, run } = writeRunFile(dir, runFields('daemon-refill'));
      const [port] = await freePorts(1);
      // A schedule that never comes during the test: only the start-up tick and job ends can drive the run.
      const daemon = startCli(
        [
          'submit',
          '--run',
          path,
          '--schedule',
          '0 0 1 1 *',
          '--poll-seconds',
          '1',
          '--metrics-port',
          String(port),
          '--metrics-host',
          '127.0.0.1',
        ],
        { env: s3Env() },
      );
      let text = '';
      try {
        for (
          const deadline = Date.now() + 300_000;
          !text.includes('tokenize_wiki_run_complete{run_id="daemon-refill"} 1');
        ) {
          expect(Date.now(), text).toBeLessThan(deadline);
          await sleep(1000);
          text = await fetch(`http://127.0.0.1:${port}/metrics`).then(
            (r) => r.text(),
            () => '',
          );
        }
      } finally {
        daemon.child.kill('SIGTERM');
      }
      expect((await daemon.done).code).toBe(0);
      await expectExactlyOnce(run);
      expect(
        Number(/^tokenize_wiki_reconcile_total\{run_id="daemon-refill",result="ok"\} (\d+)$/m.exec(text)?.[1]),
      ).toBeGreaterThanOrEqual(3);
    },
    LONG,
  );

  it(
    'logs one line per failed task with the error from the driver log, so the log sink says why task X failed',
    async () => {
      const local = join(dir, 'corrupt-parts');
      cpSync(localParts, local, { recursive: true });
      const { path, run } = writeRunFile(dir, runFields('why-failed', { dumps: [local], max_attempts: 1 }));
      const manifest = await ensureManifest(run.dumps, run.manifest_uri, manifestOptionsOf(run), quietLogger);
      const bad = manifest.tasks[0]!;
      const file = manifest.dumps.find((d) => d.name === bad.dump)!.uri;
      const fd = openSync(file, 'r+');
      writeSync(fd, Buffer.alloc(64, 0x55), 0, 64, Math.floor(statSync(file).size / 2));
      closeSync(fd);
      const tick = await cli(['submit', '--run', path, '--once', '--budget-seconds', '120', '--poll-seconds', '1'], {
        env: s3Env(),
      });
      expect(tick.code, tick.stderr.slice(-3000)).toBe(0);
      const lines = tick.stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg?: string; task_id?: string; err?: string; job_id?: string; kind?: string });
      const failed = lines.find((l) => l.msg === 'task attempt failed' && l.task_id === bad.task_id);
      expect(failed).toMatchObject({ kind: 'task', job_id: expect.stringMatching(/^why-failed-b\d+-a1$/) });
      expect(failed?.err).toMatch(/bzip2|CRC|corrupt/i);
      expect(lines.some((l) => l.msg?.startsWith('task quarantined') && l.task_id === bad.task_id)).toBe(true);
      figure('submitter line for a failed task', failed);
    },
    LONG,
  );
});
