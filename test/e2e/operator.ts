// What the user does on the control-plane node once it runs, shared by the one-node and the three-node suites:
// kubectl as root there, the object store's key made by hand before the first sync, waiting for Argo CD's
// Applications and the RayCluster, the submitter's ticks started on demand, and what a person looks at when a step
// hangs. The node and cluster are asked for at each call (the suites start them in beforeAll).
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../harness/paths.js';
import { waitFor } from '../harness/proc.js';
import { nodeScript, type Cluster, type ClusterNode, type ExecResult } from './cluster.js';

/** The fields of dev's run file the suites read (the file itself is validated by the submitter). */
export interface DevRun {
  run_id: string;
  output_prefix: string;
  manifest_uri: string;
  max_docs_per_task: number;
  text_field: string;
  encoding: string;
}
export const DEV_RUNS = 'apps/wiki-tokenizer/overlays/dev/runs';
export const devRun = parse(readFileSync(join(repoRoot, DEV_RUNS, 'simplewiki-20261122.yaml'), 'utf8')) as DevRun;

/** The Applications a dev-shaped cluster's root app makes (clusters/dev, clusters/dev-3). */
export const DEV_APPLICATIONS = [
  'root',
  'argocd',
  'flannel',
  'local-path',
  'kuberay',
  'object-store',
  'wiki-tokenizer',
];

const rounded = (ms: number): number => Math.round(ms / 100) / 10;

export function operator(cluster: () => Cluster, node: () => ClusterNode, log: (line: string) => void) {
  const kubectl = (...args: string[]): Promise<ExecResult> =>
    node().exec(['kubectl', '--kubeconfig=/etc/kubernetes/admin.conf', ...args]);

  /** Runs one of the scripts on the node, its time in `timings[name]`; logs its stderr when it fails. */
  async function timed(
    timings: Record<string, number>,
    name: string,
    script: string,
    args: string[],
    cwd?: string,
  ): Promise<ExecResult> {
    const t0 = Date.now();
    const r = await nodeScript(node(), script, args, 20 * 60_000, cwd);
    timings[name] = rounded(Date.now() - t0);
    if (r.code !== 0) log(`e2e: ${script} exited ${r.code}:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-6000)}`);
    return r;
  }

  /** What a person would look at when a step hangs: pods, the non-running ones described, kubelet's errors. */
  async function clusterState(namespaces: readonly string[]): Promise<string> {
    const parts = [(await kubectl('get', 'pods', '-A', '-o', 'wide')).stdout];
    for (const ns of namespaces) {
      const described = (await kubectl('-n', ns, 'describe', 'pods', '--field-selector=status.phase!=Running')).stdout;
      parts.push(`--- ${ns}: pods not running\n${described.slice(-3000)}`);
    }
    const kubelet = (
      await node().exec(['journalctl', '-u', 'kubelet', '--no-pager', '-o', 'cat', '-p', 'err', '-n', '20'])
    ).stdout;
    parts.push(`--- kubelet errors\n${kubelet}`);
    return parts.join('\n');
  }

  /** Images a node's containerd was asked to pull: none may be, the nodes have no route out. */
  async function pulledImages(on: ClusterNode = node()): Promise<string[]> {
    const journal = (await on.exec(['journalctl', '-u', 'containerd', '--no-pager', '-o', 'cat'])).stdout;
    return [...journal.matchAll(/PullImage \\?"([^"\\]+)/g)].map((m) => m[1] ?? '');
  }

  /**
   * The user's by-hand step before the first sync (docs/storage.md, setup 1, step 2): the object store's
   * identities and the same key for the app. Generated per run, never written to disk on the host.
   */
  async function createS3Secrets(): Promise<{ key: string; secret: string }> {
    const [key, secret] = [randomBytes(10).toString('hex'), randomBytes(24).toString('hex')];
    const identities = JSON.stringify({
      identities: [
        {
          name: 'tokenize-wiki',
          credentials: [{ accessKey: key, secretKey: secret }],
          actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'],
        },
      ],
    });
    for (const ns of ['object-store', 'tokenize-wiki']) await kubectl('create', 'namespace', ns);
    const store = await kubectl(
      '-n',
      'object-store',
      'create',
      'secret',
      'generic',
      'seaweedfs-s3-config',
      `--from-literal=config.json=${identities}`,
    );
    if (store.code !== 0) throw new Error(`the object store's Secret: ${store.stderr}`);
    const app = await kubectl(
      '-n',
      'tokenize-wiki',
      'create',
      'secret',
      'generic',
      'tokenize-wiki-s3',
      `--from-literal=AWS_ACCESS_KEY_ID=${key}`,
      `--from-literal=AWS_SECRET_ACCESS_KEY=${secret}`,
    );
    if (app.code !== 0) throw new Error(`the app's Secret: ${app.stderr}`);
    return { key, secret };
  }

  /** Waits until every wanted Argo CD Application is Synced and Healthy; on timeout the error shows why not. */
  async function waitForApplications(wanted: readonly string[], timeoutMs: number): Promise<void> {
    let last = '';
    try {
      await waitFor('every Argo CD Application Synced and Healthy', timeoutMs, async () => {
        const r = await kubectl(
          '-n',
          'argocd',
          'get',
          'applications.argoproj.io',
          '-o',
          'jsonpath={range .items[*]}{.metadata.name} {.status.sync.status} {.status.health.status}{"\\n"}{end}',
        );
        last = r.stdout.trim();
        const rows = last
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split(' '));
        const names = rows.map((row) => row[0]);
        return wanted.every((w) => names.includes(w)) &&
          rows.every((row) => row[1] === 'Synced' && row[2] === 'Healthy')
          ? true
          : undefined;
      });
    } catch (err) {
      const apps = (
        await kubectl(
          '-n',
          'argocd',
          'get',
          'applications.argoproj.io',
          '-o',
          'jsonpath={range .items[*]}{.metadata.name}: {.status.operationState.message} {.status.conditions}{"\\n"}{end}',
        )
      ).stdout;
      throw new Error(
        `${(err as Error).message}; last:\n${last}\n${apps}\n${await clusterState(['argocd', 'local-path-storage', 'kuberay-system', 'object-store', 'tokenize-wiki'])}`,
      );
    }
  }

  /** KubeRay's own view of the RayCluster: waits for state ready, and logs why not on a timeout. */
  async function rayClusterReady(): Promise<boolean> {
    const ready = await kubectl(
      '-n',
      'tokenize-wiki',
      'wait',
      '--for=jsonpath={.status.state}=ready',
      'raycluster/tokenize-wiki',
      '--timeout=600s',
    );
    if (ready.code !== 0)
      log(
        `e2e: RayCluster not ready:\n${(await kubectl('-n', 'tokenize-wiki', 'describe', 'raycluster', 'tokenize-wiki')).stdout.slice(-3000)}\n${await clusterState(['tokenize-wiki', 'kuberay-system'])}`,
      );
    return ready.code === 0;
  }

  /** Starts a Job from the submitter CronJob's template (`kubectl create job --from=cronjob/submitter`), args replaced if given. */
  async function startSubmitterJob(name: string, args?: string[]): Promise<void> {
    const r = args
      ? await createFromCronJob(name, args)
      : await kubectl('-n', 'tokenize-wiki', 'create', 'job', name, '--from=cronjob/submitter');
    if (r.code !== 0) throw new Error(`job ${name}: ${r.stderr}`);
  }

  async function createFromCronJob(name: string, args: string[]): Promise<ExecResult> {
    const cron = JSON.parse(
      (await kubectl('-n', 'tokenize-wiki', 'get', 'cronjob', 'submitter', '-o', 'json')).stdout,
    ) as {
      spec: { jobTemplate: { spec: { template: { spec: { containers: { args: string[] }[] } } } } };
    };
    const spec = cron.spec.jobTemplate.spec;
    spec.template.spec.containers[0]!.args = args;
    const job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name, namespace: 'tokenize-wiki' },
      spec: { ...spec, backoffLimit: 0 },
    };
    // The node's /root is on its overlay, which the host sees: the manifest goes there, kubectl reads it.
    writeFileSync(join(cluster().dir, 'nodes', node().name, 'rootfs', 'root', `${name}.json`), JSON.stringify(job));
    return kubectl('create', '-f', `/root/${name}.json`);
  }

  async function awaitSubmitterJob(name: string, tail = 40): Promise<{ ok: boolean; logs: string }> {
    const done = await kubectl(
      '-n',
      'tokenize-wiki',
      'wait',
      '--for=jsonpath={.status.conditions[0].status}=True',
      `job/${name}`,
      '--timeout=330s',
    );
    const status = (
      await kubectl('-n', 'tokenize-wiki', 'get', 'job', name, '-o', 'jsonpath={.status.succeeded}')
    ).stdout.trim();
    const logs = (await kubectl('-n', 'tokenize-wiki', 'logs', `job/${name}`, `--tail=${tail}`)).stdout;
    return { ok: done.code === 0 && status === '1', logs };
  }

  async function submitterJob(name: string, args?: string[], tail?: number): Promise<{ ok: boolean; logs: string }> {
    await startSubmitterJob(name, args);
    return awaitSubmitterJob(name, tail);
  }

  /**
   * Starts ticks (`e2e-<label>-tick-<n>`, each once the one before ended) until a task job's `run-tasks` of the run
   * runs in one of `nodes` (a tick that submits the manifest job ends there, the next one submits the tasks).
   * Returns that node and the tick in flight.
   */
  async function ticksUntilRunTasks(
    label: string,
    run: DevRun,
    nodes: readonly ClusterNode[],
    timeoutMs: number,
  ): Promise<{ node: ClusterNode; tick: number }> {
    // Brackets keep the patterns from matching grep's own command line.
    const find = `grep -las '[r]un-tasks' /proc/[0-9]*/cmdline | xargs -r grep -las '[${run.run_id[0]}]${run.run_id.slice(1)}'`;
    let tick = 0;
    const found = await waitFor(
      `run-tasks of ${run.run_id} running on ${nodes.map((n) => n.name).join(' or ')}`,
      timeoutMs,
      async () => {
        for (const n of nodes) if ((await n.exec(['bash', '-c', find])).stdout.trim()) return n;
        const ended =
          tick > 0 &&
          (
            await kubectl(
              '-n',
              'tokenize-wiki',
              'get',
              'job',
              `e2e-${label}-tick-${tick}`,
              '-o',
              'jsonpath={.status.conditions[0].status}',
            )
          ).stdout.trim() === 'True';
        if (tick === 0 || ended) await startSubmitterJob(`e2e-${label}-tick-${++tick}`);
        return undefined;
      },
    );
    return { node: found, tick };
  }

  /**
   * Ticks on demand, one at a time, instead of waiting for the CronJob's schedule: the same Job the CronJob makes,
   * each followed by `verify` of the run, until it passes or `maxTicks` ticks ran. `started` is the number of a
   * tick already started (`e2e-<label>-tick-<n>`), after which the count goes on.
   */
  async function ticksUntilVerified(
    label: string,
    run: DevRun,
    maxTicks: number,
    started = 0,
  ): Promise<{ ticks: number; verified: { ok: boolean; logs: string } }> {
    const verifyArgs = ['verify', '--manifest-uri', run.manifest_uri, '--output-prefix', run.output_prefix];
    let verified = { ok: false, logs: '' };
    let tick = started ? started - 1 : 0;
    while (tick < maxTicks && !verified.ok) {
      tick++;
      const name = `e2e-${label}-tick-${tick}`;
      const r = tick === started ? await awaitSubmitterJob(name) : await submitterJob(name);
      log(`e2e: ${label} tick ${tick} ${r.ok ? 'ok' : 'FAILED'}: ${r.logs.trim().split('\n').slice(-3).join(' | ')}`);
      verified = await submitterJob(`e2e-${label}-verify-${tick}`, verifyArgs);
    }
    return { ticks: tick, verified };
  }

  /** A run's RayJobs, one line each: name, Ray job status, start and end time. */
  async function rayJobs(runId: string): Promise<string> {
    const jsonpath =
      'jsonpath={range .items[*]}{.metadata.name} {.status.jobStatus} {.status.startTime} {.status.endTime}{"\\n"}{end}';
    return (
      await kubectl('-n', 'tokenize-wiki', 'get', 'rayjobs', '-l', `tokenize-wiki/run-id=${runId}`, '-o', jsonpath)
    ).stdout;
  }

  /** Docs per second over the span of a run's RayJobs (the manifest job included), if they have times. */
  function docsPerSecond(jobs: string, docs: number): number | undefined {
    const times = jobs
      .split('\n')
      .flatMap((l) => l.split(' ').slice(2))
      .map((t) => Date.parse(t))
      .filter((t) => Number.isFinite(t));
    return times.length >= 2 ? Math.round(docs / ((Math.max(...times) - Math.min(...times)) / 1000)) : undefined;
  }

  return {
    kubectl,
    timed,
    clusterState,
    pulledImages,
    createS3Secrets,
    waitForApplications,
    rayClusterReady,
    startSubmitterJob,
    awaitSubmitterJob,
    submitterJob,
    ticksUntilRunTasks,
    ticksUntilVerified,
    rayJobs,
    docsPerSecond,
  };
}

export type Operator = ReturnType<typeof operator>;
