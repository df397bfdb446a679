// Load test of the submitter and Ray execution on a local Ray head (a runnable script, not a vitest test):
//
//   npx tsx test/ops/load-test.ts [--docs 20000] [--docs-per-task 1000] [--settings 1x2,2x2,5x2,5x4,10x2,10x1x2]
//                                 [--cpus 2] [--cpus-per-job 1] [--tick-seconds 5] [--out FILE.md] [--no-build]
//
// It starts the test harness's S3 server and a Ray head (test/harness), writes one synthetic dump and its manifest,
// then runs the same run once per setting `TASKSxJOBS[xCPUS]` (tasks_per_job x max_jobs_in_flight x cpus_per_job), each with its own
// run_id and output prefix, by calling `tokenize-wiki submit --run FILE --once` every --tick-seconds until the run
// is complete, as the CronJob does on a cluster. For each setting it records wall time, docs/s and tokens/s, the
// memory of the Ray head's process tree (baseline and peak) and of the largest `run-tasks` driver, the CPU seconds
// the tree used, jobs submitted, failed attempts and quarantined tasks, and the machine's load average, and prints
// a Markdown table (docs/runbooks/scaling.md explains it).
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { stringify } from 'yaml';
import { z } from 'zod';
import { cli as runCli } from '../harness/cli.js';
import { repoRoot } from '../harness/paths.js';
import { run } from '../harness/proc.js';
import { startRayHead, type RayHead } from '../harness/ray.js';
import { envFor, s3Client, startS3Server, type S3Server } from '../harness/s3-server.js';

interface Setting {
  tasksPerJob: number;
  jobsInFlight: number;
  /** cpus_per_job, from TxJxC or --cpus-per-job. */
  cpusPerJob: number;
}

interface Result extends Setting {
  seconds: number;
  docs: number;
  tokens: number;
  jobs: number;
  ticks: number;
  failedAttempts: number;
  quarantined: number;
  rayBaselineMiB: number;
  rayPeakMiB: number;
  driverPeakMiB: number;
  /** CPU seconds used by the Ray head's process tree (head services, job supervisors, drivers) during the setting. */
  cpuSeconds: number;
  /** Mean 1-minute load average while the setting ran: other work on the machine skews throughput. */
  load: number;
  complete: boolean;
}

const USAGE =
  'usage: npx tsx test/ops/load-test.ts [--docs N] [--docs-per-task N] [--settings TxJ,…] [--cpus N] [--cpus-per-job N] [--tick-seconds S] [--timeout-minutes M] [--out FILE] [--no-build]';

function parseSettings(text: string, cpusPerJob: number): Setting[] {
  return text.split(',').map((item) => {
    const m = /^(\d+)x(\d+)(?:x(\d+))?$/.exec(item.trim());
    if (!m) throw new Error(`--settings: "${item}" is not TASKSxJOBS or TASKSxJOBSxCPUS (e.g. 4x2, 8x1x2)\n${USAGE}`);
    return {
      tasksPerJob: Number(m[1]),
      jobsInFlight: Number(m[2]),
      cpusPerJob: m[3] === undefined ? cpusPerJob : Number(m[3]),
    };
  });
}

function positive(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: expected a positive number, got "${value}"\n${USAGE}`);
  return n;
}

const Progress = z.looseObject({
  complete: z.boolean(),
  tasks: z.looseObject({ total: z.number(), done: z.number(), quarantined: z.number() }),
  docs: z.looseObject({ total: z.number(), done: z.number() }),
  tokens_done: z.number(),
  failed_attempts: z.number(),
});

/** The CLI from dist/ (as in the image and in Ray job entrypoints), with only the harness's S3 settings. */
async function cli(
  args: readonly string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const result = await runCli(args, { env: { ...env, NODE_NO_WARNINGS: '1' } });
  return { code: result.code ?? 1, stdout: result.stdout, stderr: result.stderr };
}

interface Proc {
  pid: number;
  ppid: number;
  rssKiB: number;
  /** User + system CPU time so far, in clock ticks. */
  cpuTicks: number;
  cmdline: string;
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on Linux). */
const CLOCK_TICKS = 100;

function processes(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, 'utf8');
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      const rssKiB = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ');
      // Fields after the parenthesised command name: state is field 3, utime and stime are fields 14 and 15.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cpuTicks = Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
      out.push({ pid: Number(name), ppid, rssKiB, cpuTicks, cmdline });
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/**
 * RSS of the Ray head's process tree (found by its GCS port), of the largest `run-tasks` driver in it, and the CPU
 * ticks of every process of the tree by pid (drivers come and go: the caller keeps the last value seen per pid).
 */
function rayUsage(gcsPort: string): { treeMiB: number; driverMiB: number; cpuTicks: Map<number, number> } {
  const all = processes();
  const roots = all
    .filter((p) => p.cmdline.includes(' start ') && p.cmdline.includes(`--port=${gcsPort}`))
    .map((p) => p.pid);
  const children = new Map<number, Proc[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  let tree = 0;
  let driver = 0;
  const cpuTicks = new Map<number, number>();
  const seen = new Set<number>();
  const walk = (pid: number): void => {
    for (const c of children.get(pid) ?? []) {
      if (seen.has(c.pid)) continue;
      seen.add(c.pid);
      tree += c.rssKiB;
      cpuTicks.set(c.pid, c.cpuTicks);
      if (c.cmdline.includes('run-tasks')) driver = Math.max(driver, c.rssKiB);
      walk(c.pid);
    }
  };
  for (const root of roots) {
    const p = all.find((x) => x.pid === root);
    tree += p?.rssKiB ?? 0;
    cpuTicks.set(root, p?.cpuTicks ?? 0);
    walk(root);
  }
  return { treeMiB: tree / 1024, driverMiB: driver / 1024, cpuTicks };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      docs: { type: 'string', default: '20000' },
      'docs-per-task': { type: 'string', default: '1000' },
      settings: { type: 'string', default: '1x2,2x2,5x2,5x4,10x2,10x1x2' },
      cpus: { type: 'string', default: '2' },
      'cpus-per-job': { type: 'string', default: '1' },
      'tick-seconds': { type: 'string', default: '5' },
      'timeout-minutes': { type: 'string', default: '30' },
      out: { type: 'string' },
      'no-build': { type: 'boolean', default: false },
    },
  });
  const docs = positive('docs', values.docs);
  const docsPerTask = positive('docs-per-task', values['docs-per-task']);
  const cpus = positive('cpus', values.cpus);
  const settings = parseSettings(values.settings, positive('cpus-per-job', values['cpus-per-job']));
  const tickMs = positive('tick-seconds', values['tick-seconds']) * 1000;
  const timeoutMs = positive('timeout-minutes', values['timeout-minutes']) * 60_000;

  // Ray job entrypoints run bin/tokenize-wiki.js, which loads dist/: build it from the current source.
  if (!values['no-build']) await run('npm', ['run', '--silent', 'build'], { cwd: repoRoot });

  const scratch = mkdtempSync(join(tmpdir(), 'tw-load-'));
  let s3: S3Server | undefined;
  let ray: RayHead | undefined;
  const stopAll = async (): Promise<void> => {
    await Promise.allSettled([ray?.stop(), s3?.stop()]);
    rmSync(scratch, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void stopAll().finally(() => process.exit(130)));
  try {
    s3 = await startS3Server();
    const env = envFor(s3.connection);
    ray = await startRayHead({ env, numCpus: cpus });
    const gcsPort = ray.connection.gcsAddress.split(':')[1] ?? '';
    const bucket = 'tw-load';
    const client = s3Client(s3.connection);
    await client.send(new CreateBucketCommand({ Bucket: bucket }));

    const dumpFile = join(scratch, 'loadwiki-20261122-cirrussearch-content.json.gz');
    await run(process.execPath, [
      join(repoRoot, 'bin', 'tokenize-wiki.js'),
      'synth',
      '--docs',
      String(docs),
      '--out',
      dumpFile,
      '--wiki',
      'loadwiki',
      '--seed',
      '7',
    ]);
    const dump = `s3://${bucket}/dumps/loadwiki-20261122-cirrussearch-content.json.gz`;
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: dump.slice(`s3://${bucket}/`.length), Body: readFileSync(dumpFile) }),
    );
    client.destroy();
    // One manifest for every setting, made once, so the runs time only the jobs.
    const manifestUri = `s3://${bucket}/manifest.json`;
    const made = await cli(
      ['manifest', '--dump', dump, '--manifest-uri', manifestUri, '--max-docs-per-task', String(docsPerTask)],
      env,
    );
    if (made.code !== 0) throw new Error(`manifest failed: ${made.stderr}`);
    await sleep(5000); // let the head settle before measuring its baseline
    process.stderr.write(
      `dump ${docs} docs, ${Math.ceil(docs / docsPerTask)} tasks; Ray head ${cpus} CPUs at ${ray.connection.dashboardUrl}\n`,
    );

    const results: Result[] = [];
    for (const s of settings) {
      const runId = `load-t${s.tasksPerJob}-j${s.jobsInFlight}-c${s.cpusPerJob}`;
      const runFile = join(scratch, `${runId}.yaml`);
      writeFileSync(
        runFile,
        stringify({
          run_id: runId,
          dumps: [dump],
          max_docs_per_task: docsPerTask,
          output_prefix: `s3://${bucket}/runs/${runId}`,
          manifest_uri: manifestUri,
          tasks_per_job: s.tasksPerJob,
          cpus_per_job: s.cpusPerJob,
          max_jobs_in_flight: s.jobsInFlight,
          max_attempts: 3,
          backend: { kind: 'ray-jobs-api', dashboard_url: ray.connection.dashboardUrl },
        }),
      );
      const before = rayUsage(gcsPort);
      const baseline = before.treeMiB;
      let peak = baseline;
      let driverPeak = 0;
      const loads: number[] = [];
      // CPU time of the Ray tree during this setting: unlike wall time, it does not depend on what else the
      // machine runs. The last <= 0.5 s of each process that ends between samples is missed.
      const lastTicks = new Map<number, number>();
      const sample = (): void => {
        loads.push(loadavg()[0] ?? 0);
        const m = rayUsage(gcsPort);
        peak = Math.max(peak, m.treeMiB);
        driverPeak = Math.max(driverPeak, m.driverMiB);
        for (const [pid, ticks] of m.cpuTicks) lastTicks.set(pid, ticks);
      };
      const sampler = setInterval(sample, 500);
      const started = Date.now();
      let jobs = 0;
      let ticks = 0;
      let complete = false;
      try {
        while (!complete && Date.now() - started < timeoutMs) {
          const tickStarted = Date.now();
          const tick = await cli(['submit', '--run', runFile, '--once'], env);
          ticks++;
          if (tick.code !== 0)
            process.stderr.write(
              `${runId}: tick exited ${tick.code}: ${tick.stderr.trim().split('\n').slice(-1)[0] ?? ''}\n`,
            );
          jobs += Number(/submitted (\d+) jobs/.exec(tick.stdout)?.[1] ?? 0);
          complete = tick.stdout.includes('; complete');
          if (!complete) await sleep(Math.max(0, tickMs - (Date.now() - tickStarted)));
        }
      } finally {
        clearInterval(sampler);
      }
      sample();
      let cpuTicks = 0;
      for (const [pid, t] of lastTicks) cpuTicks += t - (before.cpuTicks.get(pid) ?? 0);
      const seconds = (Date.now() - started) / 1000;
      const status = await cli(['status', '--run', runFile, '--json'], env);
      if (status.code !== 0) throw new Error(`${runId}: status failed: ${status.stderr}`);
      const p = Progress.parse(JSON.parse(status.stdout));
      const r: Result = {
        ...s,
        seconds,
        docs: p.docs.done,
        tokens: p.tokens_done,
        jobs,
        ticks,
        failedAttempts: p.failed_attempts,
        quarantined: p.tasks.quarantined,
        rayBaselineMiB: baseline,
        rayPeakMiB: peak,
        driverPeakMiB: driverPeak,
        cpuSeconds: cpuTicks / CLOCK_TICKS,
        load: loads.reduce((a, b) => a + b, 0) / Math.max(1, loads.length),
        complete: p.complete,
      };
      results.push(r);
      process.stderr.write(`${runId}: ${JSON.stringify(r)}\n`);
    }
    const table = formatTable(results, { docs, docsPerTask, cpus, tickSeconds: tickMs / 1000 });
    process.stdout.write(table);
    if (values.out) writeFileSync(values.out, table);
  } finally {
    await stopAll();
  }
}

function formatTable(
  results: Result[],
  c: { docs: number; docsPerTask: number; cpus: number; tickSeconds: number },
): string {
  const f0 = (n: number): string => n.toFixed(0);
  const lines = [
    `${c.docs} synthetic docs, ${c.docsPerTask} docs per task, Ray head with ${c.cpus} CPUs, a tick every ${c.tickSeconds} s`,
    '',
    '| tasks_per_job | max_jobs_in_flight | cpus_per_job | complete | wall s | docs/s | tokens/s | jobs | ticks | failed attempts | quarantined | Ray RSS baseline MiB | Ray RSS peak MiB | largest driver MiB | Ray CPU s | CPU s per 1000 docs | load avg |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.tasksPerJob} | ${r.jobsInFlight} | ${r.cpusPerJob} | ${r.complete ? 'yes' : 'NO'} | ${r.seconds.toFixed(1)} | ${f0(r.docs / r.seconds)} | ${f0(r.tokens / r.seconds)} | ${r.jobs} | ${r.ticks} | ${r.failedAttempts} | ${r.quarantined} | ${f0(r.rayBaselineMiB)} | ${f0(r.rayPeakMiB)} | ${f0(r.driverPeakMiB)} | ${f0(r.cpuSeconds)} | ${((1000 * r.cpuSeconds) / Math.max(1, r.docs)).toFixed(1)} | ${r.load.toFixed(1)} |`,
    ),
  ];
  return lines.join('\n') + '\n';
}

main().catch((error: unknown) => {
  process.stderr.write(`load test failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
