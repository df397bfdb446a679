// `status --watch` as a person uses it next to a run: against the harness's Ray head and S3 server it looks again every
// interval while the submitter works, and exits 0 once the run is complete; on a run that only quarantined tasks are
// left in it exits 1 at once. Through a pipe (as here) every look prints a new table.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureManifest } from '../../src/manifest/index.js';
import { manifestOptionsOf } from '../../src/runs/run-file.js';
import { loadRunState, saveRunState } from '../../src/runs/state.js';
import { cli, cliOk, startCli } from '../harness/cli.js';
import { rayConnection } from '../harness/ray-env.js';
import { freshBucket, s3Env, testS3Client } from '../harness/s3-env.js';
import { expectExactlyOnce, quietLogger, synthDumps, upload, writeRunFile } from './helpers.js';

const LONG = 600_000;
let dir = '';
let parts = '';
let localParts = '';
let bucket = '';

beforeAll(async () => {
  Object.assign(process.env, s3Env());
  dir = mkdtempSync(join(tmpdir(), 'tw-watch-'));
  const client = testS3Client();
  const [local, b] = await Promise.all([synthDumps(dir), freshBucket('runs-watch', client)]);
  bucket = b;
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

/** The looks a non-TTY watch printed: one table each, headed by the run's line. */
const looks = (stdout: string, runId: string): string[] =>
  stdout.split('\n').filter((line) => line.startsWith(`run ${runId}: `));

describe('status --watch', () => {
  it(
    'looks again every interval while the submitter runs the tasks on Ray, and exits 0 when the run completes',
    async () => {
      const { path, run } = writeRunFile(dir, {
        run_id: 'watched',
        dumps: [parts],
        output_prefix: `s3://${bucket}/runs/watched/`,
        max_docs_per_task: 100,
        tasks_per_job: 1,
        cpus_per_job: 1,
        max_jobs_in_flight: 1,
        backend: { kind: 'ray-jobs-api', dashboard_url: rayConnection().dashboardUrl },
      });
      const watching = startCli(['status', '--run', path, '--watch', '--interval', '1'], { env: s3Env() });
      await new Promise((resolve) => watching.child.stdout?.once('data', resolve));
      // One tick that keeps the slot full until the run is complete (the CronJob's tick, with a long budget).
      const tick = await cli(['submit', '--run', path, '--once', '--budget-seconds', '300', '--poll-seconds', '1'], {
        env: s3Env(),
      });
      expect(tick.code, tick.stderr.slice(-3000)).toBe(0);
      const watched = await watching.done;
      expect(watched.code, watched.stderr.slice(-3000)).toBe(0);
      const tables = looks(watched.stdout, 'watched');
      console.log(`[watch] ${tables.length} looks:\n${tables.join('\n')}`);
      // Before the first tick there is no manifest: the watch says so and keeps looking.
      expect(watched.stdout).toContain('no manifest yet (the submitter creates it on its first tick)');
      expect(tables.some((line) => line === 'run watched: running')).toBe(true);
      expect(tables.at(-1)).toBe('run watched: complete');
      expect(watched.stdout).toContain('docs 300/300 (100.0%)');
      expect(watched.stdout).toMatch(/^\d\d:\d\d:\d\d {2}the run is complete$/m);
      await expectExactlyOnce(run);
    },
    LONG,
  );

  it(
    'exits 1 at once when nothing is left but quarantined tasks; --watch with --json is a usage error',
    async () => {
      const { path, run } = writeRunFile(dir, {
        run_id: 'stuck',
        dumps: [localParts],
        output_prefix: join(dir, 'stuck'),
        max_docs_per_task: 100,
        backend: { kind: 'ray-jobs-api', dashboard_url: 'http://127.0.0.1:9' },
      });
      const manifest = await ensureManifest(run.dumps, run.manifest_uri, manifestOptionsOf(run), quietLogger);
      const state = await loadRunState(run.output_prefix);
      const failure = { failures: 3, last_error: 'bzip2: CRC mismatch', last_job: 'stuck-b00000-a1' };
      state.quarantine.tasks = Object.fromEntries(
        manifest.tasks.map((t) => [
          t.task_id,
          { ...failure, last_failed_at: new Date().toISOString(), quarantined_at: new Date().toISOString() },
        ]),
      );
      await saveRunState(run.output_prefix, state);

      const watched = await cli(['status', '--run', path, '--watch', '--interval', '1']);
      expect(watched.code).toBe(1);
      expect(looks(watched.stdout, 'stuck')).toEqual(['run stuck: running, needs attention (quarantined tasks)']);
      expect(watched.stdout).toContain('the run needs attention');
      expect(watched.stdout).toContain('ETA none: only quarantined tasks are left');

      const both = await cli(['status', '--run', path, '--watch', '--json']);
      expect(both.code).toBe(2);
      expect(both.stderr).toContain("option '--watch' cannot be used with option '--json'");
      await cliOk(['status', '--run', path]);
    },
    LONG,
  );
});
