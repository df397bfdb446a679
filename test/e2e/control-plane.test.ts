// The user's commands on a real (container) node, air-gapped, one cluster for the whole file: bootstrap-node
// --bundle, init-control-plane --cluster dev, then install-argocd from the user's clone of a git server inside
// the cluster network, and Argo CD syncing the tree. Needs a complete bundle (scripts/build-bundle.mts;
// TW_E2E_BUNDLE names another folder); without one the suite says why it did not run.
import { randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../harness/paths.js';
import { bundleDir, bundleProblem, imagesMissing, kubernetes } from './bundle.js';
import {
  NODE_BUNDLE,
  NODE_NODEJS,
  NODE_REPO,
  nodeScript,
  startCluster,
  type Cluster,
  type ClusterNode,
} from './cluster.js';
import { dumpFolder, editYaml, NODE_CLONE, serveCheckout, serveDump, type GitServer } from './gitops.js';
import { chooseContainerdTmpfs, diskPressureReason, evictionPercent } from './resources.js';
import { shardDigests, type ShardDigest } from './shard-digests.js';
import { run as runCommand, waitFor } from '../harness/proc.js';

const log = (line: string): void => void process.stderr.write(`${line}\n`);

/** The fields of dev's run file the suite reads (the file itself is validated by the submitter). */
interface DevRun {
  run_id: string;
  output_prefix: string;
  manifest_uri: string;
  max_docs_per_task: number;
  text_field: string;
  encoding: string;
}
const DEV_RUNS = 'apps/wiki-tokenizer/overlays/dev/runs';
const devRun = parse(readFileSync(join(repoRoot, DEV_RUNS, 'simplewiki-20261122.yaml'), 'utf8')) as DevRun;

const missing = bundleProblem();
if (missing) log(`e2e: control-plane suite NOT RUN: ${missing}`);
const missingImages = missing ? [] : imagesMissing('dev');
if (missingImages.length) log(`e2e: init-control-plane test NOT RUN: the bundle lacks ${missingImages.join(', ')}`);

const containerdTmpfs = missing
  ? undefined
  : chooseContainerdTmpfs(['cp-1'], evictionPercent('dev', 'imagefs.available'), log)['cp-1'];
// With containerd on a tmpfs, the image filesystem is not the host disk.
const diskPressure = missing ? undefined : diskPressureReason('dev', containerdTmpfs !== undefined);
if (diskPressure) log(`e2e: CoreDNS test NOT RUN: ${diskPressure} (the node is tainted disk-pressure)`);

describe.skipIf(missing !== undefined)('a dev control plane on a node container, from the bundle', () => {
  let cluster: Cluster;
  let node: ClusterNode;
  let git: GitServer;
  /** The object store's key, made in the sync step as a user makes it. */
  let s3: { key: string; secret: string };
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    cluster = await startCluster({
      nodes: ['cp-1'],
      bundleDir,
      log,
      ...(containerdTmpfs ? { containerdTmpfs: { 'cp-1': containerdTmpfs } } : {}),
    });
    node = cluster.nodes[0]!;
  });

  afterAll(() => {
    log(`e2e: timings ${JSON.stringify({ ...cluster?.timings, ...timings })}`);
    cluster?.stop();
  });

  async function timed(name: string, script: string, args: string[], cwd?: string) {
    const t0 = Date.now();
    const r = await nodeScript(node, script, args, 20 * 60_000, cwd);
    timings[name] = Math.round((Date.now() - t0) / 100) / 10;
    if (r.code !== 0) log(`e2e: ${script} exited ${r.code}:\n${r.stderr.slice(-6000)}`);
    return r;
  }

  const kubectl = (...args: string[]) => node.exec(['kubectl', '--kubeconfig=/etc/kubernetes/admin.conf', ...args]);

  /** What a person would look at when a step hangs: pods, the non-running ones described, kubelet's errors. */
  async function clusterState(namespaces: readonly string[]): Promise<string> {
    const parts = [(await kubectl('get', 'pods', '-A', '-o', 'wide')).stdout];
    for (const ns of namespaces) {
      const described = (await kubectl('-n', ns, 'describe', 'pods', '--field-selector=status.phase!=Running')).stdout;
      parts.push(`--- ${ns}: pods not running\n${described.slice(-3000)}`);
    }
    const kubelet = (
      await node.exec(['journalctl', '-u', 'kubelet', '--no-pager', '-o', 'cat', '-p', 'err', '-n', '20'])
    ).stdout;
    parts.push(`--- kubelet errors\n${kubelet}`);
    return parts.join('\n');
  }

  /** Images containerd was asked to pull: none may be, the node has no route out. */
  async function pulledImages(): Promise<string[]> {
    const journal = (await node.exec(['journalctl', '-u', 'containerd', '--no-pager', '-o', 'cat'])).stdout;
    return [...journal.matchAll(/PullImage \\?"([^"\\]+)/g)].map((m) => m[1] ?? '');
  }

  it('bootstrap-node --bundle installs containerd, kubelet and the images without any network', async () => {
    const r = await timed('bootstrapNodeSeconds', 'bootstrap-node', [
      '--role',
      'control-plane',
      '--bundle',
      NODE_BUNDLE,
      '--allow-cgroup-v1',
    ]);
    expect(r.code).toBe(0);
    expect((await node.exec(['systemctl', 'is-active', 'containerd'])).stdout.trim()).toBe('active');
    const images = (await node.exec(['ctr', '-n', 'k8s.io', 'images', 'ls', '-q'])).stdout;
    expect(images).toContain(`registry.k8s.io/kube-apiserver:v${kubernetes}`);
    // A second run finds every step done.
    const again = await nodeScript(node, 'bootstrap-node', [
      '--role',
      'control-plane',
      '--bundle',
      NODE_BUNDLE,
      '--allow-cgroup-v1',
    ]);
    expect(again.code).toBe(0);
    expect(again.stderr).not.toContain(': applying');
  });

  let initStarted = 0;

  it.skipIf(missingImages.length > 0)(
    'init-control-plane --cluster dev brings up the API server on the node',
    async () => {
      initStarted = Date.now();
      const r = await timed('initControlPlaneSeconds', 'init-control-plane', [
        '--cluster',
        'dev',
        '--allow-cgroup-v1',
        '--offline',
      ]);
      const readyz = await node.exec(['kubectl', '--kubeconfig=/etc/kubernetes/admin.conf', 'get', '--raw', '/readyz']);
      expect(readyz.stdout.trim()).toBe('ok');
      const nodes = await node.exec([
        'kubectl',
        '--kubeconfig=/etc/kubernetes/admin.conf',
        'get',
        'nodes',
        '-o',
        'name',
      ]);
      expect(nodes.stdout.trim()).toBe('node/cp-1');
      expect(r.code).toBe(0);
    },
  );

  it.skipIf(missingImages.length > 0)('Flannel from the bundle brings the node to Ready, with no network', async () => {
    // init-control-plane returns only after its node-ready step: initControlPlaneSeconds is start to node Ready.
    const ready = await kubectl(
      'get',
      'node',
      'cp-1',
      '-o',
      'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
    );
    expect(ready.stdout.trim()).toBe('True');
    const flannel = await kubectl('-n', 'kube-flannel', 'get', 'pods', '-o', 'jsonpath={.items[*].status.phase}');
    expect(flannel.stdout.trim().split(/\s+/)).toEqual(['Running']);
    expect(await pulledImages()).toEqual([]);
  });

  it.skipIf(missingImages.length > 0 || diskPressure !== undefined)(
    "CoreDNS runs from the bundle's image",
    async () => {
      const t0 = Date.now();
      const coredns = await kubectl(
        '-n',
        'kube-system',
        'wait',
        '--for=jsonpath={.status.phase}=Running',
        'pod',
        '-l',
        'k8s-app=kube-dns',
        '--timeout=300s',
      );
      timings.corednsRunningAfterInitSeconds = Math.round((Date.now() - t0) / 100) / 10;
      if (coredns.code !== 0)
        log(
          `e2e: CoreDNS pods:\n${(await kubectl('-n', 'kube-system', 'describe', 'pods', '-l', 'k8s-app=kube-dns')).stdout.slice(-4000)}`,
        );
      expect(coredns.code).toBe(0);
      expect(await pulledImages()).toEqual([]);
    },
  );

  const gitopsSkip = missingImages.length > 0 || diskPressure !== undefined;
  const DUMP_DOCS = 4000;

  it.skipIf(gitopsSkip)(
    "install-argocd --cluster dev, from the user's clone of a git server in the cluster network",
    async () => {
      git = await serveCheckout(cluster, node, await serveDump(cluster, DUMP_DOCS, log), log);
      const r = await timed('installArgocdSeconds', 'install-argocd', ['--cluster', 'dev'], NODE_CLONE);
      if (r.code !== 0) log(`e2e: Argo CD after install-argocd:\n${await clusterState(['argocd'])}`);
      expect(r.code).toBe(0);
      expect(await pulledImages()).toEqual([]);
    },
  );

  it.skipIf(gitopsSkip)(
    'Argo CD syncs the root app from that server: every Application Synced and Healthy, in waves',
    async () => {
      // The user's by-hand step before the first sync (docs/storage.md, setup 1, step 2): the object store's
      // identities and the same key for the app. Generated per run, never written to disk on the host.
      const [key, secret] = [randomBytes(10).toString('hex'), randomBytes(24).toString('hex')];
      s3 = { key, secret };
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
      expect(
        (
          await kubectl(
            '-n',
            'object-store',
            'create',
            'secret',
            'generic',
            'seaweedfs-s3-config',
            `--from-literal=config.json=${identities}`,
          )
        ).code,
      ).toBe(0);
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
      expect(app.code).toBe(0);
      const t0 = Date.now();
      let last = '';
      try {
        await waitFor('every Argo CD Application Synced and Healthy', 20 * 60_000, async () => {
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
          const wanted = ['root', 'argocd', 'flannel', 'local-path', 'kuberay', 'object-store', 'wiki-tokenizer'];
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
      timings.syncSeconds = Math.round((Date.now() - t0) / 100) / 10;
      expect(await pulledImages()).toEqual([]);
    },
  );

  it.skipIf(gitopsSkip)('KubeRay runs our RayCluster on the tokenizer image: head and worker Ready', async () => {
    // Argo CD's RayCluster health check (argocd/install/health/raycluster.lua) already waited for the
    // cluster; this reads KubeRay's own view of it.
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
    expect(ready.code).toBe(0);
    timings.rayClusterReadyAfterInitSeconds = Math.round((Date.now() - initStarted) / 100) / 10;
    const pods = await kubectl(
      '-n',
      'tokenize-wiki',
      'get',
      'pods',
      '-l',
      'ray.io/cluster=tokenize-wiki',
      '-o',
      'jsonpath={range .items[*]}{.metadata.labels.ray\\.io/node-type} {.status.containerStatuses[*].ready}{"\\n"}{end}',
    );
    const rows = pods.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(' '));
    expect(rows.map((r) => r[0]).sort()).toEqual(['head', 'worker']);
    for (const row of rows)
      expect(
        row.slice(1).every((r) => r === 'true'),
        row.join(' '),
      ).toBe(true);
  });

  /** Starts a Job from the submitter CronJob's template (`kubectl create job --from=cronjob/submitter`), args replaced if given. */
  async function startSubmitterJob(name: string, args?: string[]): Promise<void> {
    if (args) {
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
      writeFileSync(join(cluster.dir, 'nodes', node.name, 'rootfs', 'root', `${name}.json`), JSON.stringify(job));
      expect((await kubectl('create', '-f', `/root/${name}.json`)).code).toBe(0);
    } else {
      expect((await kubectl('-n', 'tokenize-wiki', 'create', 'job', name, '--from=cronjob/submitter')).code).toBe(0);
    }
  }

  async function awaitSubmitterJob(name: string): Promise<{ ok: boolean; logs: string }> {
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
    const logs = (await kubectl('-n', 'tokenize-wiki', 'logs', `job/${name}`, '--tail=40')).stdout;
    return { ok: done.code === 0 && status === '1', logs };
  }

  async function submitterJob(name: string, args?: string[]): Promise<{ ok: boolean; logs: string }> {
    await startSubmitterJob(name, args);
    return awaitSubmitterJob(name);
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

  it.skipIf(gitopsSkip)(
    "the submitter's ticks run the dev run on the cluster to the end, and verify passes",
    async () => {
      const t0 = Date.now();
      const { ticks, verified } = await ticksUntilVerified('dev', devRun, 12);
      timings.runSecondsFromFirstTick = Math.round((Date.now() - t0) / 100) / 10;
      timings.runTicks = ticks;
      const jobs = await rayJobs(devRun.run_id);
      log(`e2e: RayJobs:\n${jobs}\ne2e: verify:\n${verified.logs}`);
      // Throughput on the cluster: the dump's docs over the span of its RayJobs (the manifest job included).
      const times = jobs
        .split('\n')
        .flatMap((l) => l.split(' ').slice(2))
        .map((t) => Date.parse(t))
        .filter((t) => Number.isFinite(t));
      if (times.length >= 2)
        timings.runDocsPerSecond = Math.round(DUMP_DOCS / ((Math.max(...times) - Math.min(...times)) / 1000));
      if (!verified.ok) log(await clusterState(['tokenize-wiki']));
      expect(verified.ok).toBe(true);
    },
  );

  it.skipIf(gitopsSkip)(
    "the cluster's shards hold exactly the rows of a local `tokenize-wiki run` of the same dump",
    async () => {
      const local = join(cluster.dir, 'local-run');
      const t0 = Date.now();
      await runCommand(process.execPath, [
        join(repoRoot, 'bin/tokenize-wiki.js'),
        'run',
        '--dump',
        dumpFolder(cluster),
        '--output-prefix',
        local,
        '--max-docs-per-task',
        String(devRun.max_docs_per_task),
        '--text-field',
        devRun.text_field,
        '--encoding',
        devRun.encoding,
        '--concurrency',
        '2',
      ]);
      timings.localRunSeconds = Math.round((Date.now() - t0) / 100) / 10;
      const localDigests = await shardDigests(local);
      // Read inside the node, where the object store's Service answers: the app's endpoint, its ClusterIP for a name
      // (the node does not use the cluster's DNS).
      const env = Object.fromEntries(
        readFileSync(join(repoRoot, 'apps/wiki-tokenizer/base/s3-config.env'), 'utf8')
          .split('\n')
          .filter((l) => l.includes('='))
          .map((l) => l.split('=', 2) as [string, string]),
      );
      const endpoint = new URL(env.AWS_ENDPOINT_URL_S3 ?? '');
      const [service, namespace] = endpoint.hostname.split('.');
      endpoint.hostname = (
        await kubectl('-n', namespace ?? '', 'get', 'service', service ?? '', '-o', 'jsonpath={.spec.clusterIP}')
      ).stdout.trim();
      const r = await node.exec([NODE_NODEJS, '--import', 'tsx', 'test/e2e/shard-digests.ts', devRun.output_prefix], {
        cwd: NODE_REPO,
        timeoutMs: 180_000,
        env: {
          ...env,
          AWS_ENDPOINT_URL_S3: endpoint.origin,
          AWS_ACCESS_KEY_ID: s3.key,
          AWS_SECRET_ACCESS_KEY: s3.secret,
        },
      });
      expect(r.code, `shard-digests.ts in the node:\n${r.stderr.slice(-3000)}`).toBe(0);
      const clusterDigests = JSON.parse(r.stdout) as Record<string, ShardDigest>;
      const ids = [...new Set([...Object.keys(localDigests), ...Object.keys(clusterDigests)])].sort();
      const show = (d: ShardDigest | undefined): string => (d ? JSON.stringify(d) : 'no marker');
      const differing = ids
        .filter((id) => show(clusterDigests[id]) !== show(localDigests[id]))
        .map((id) => `task ${id}: cluster ${show(clusterDigests[id])}, local ${show(localDigests[id])}`);
      log(
        `e2e: ${ids.length} tasks compared with a local run (${timings.localRunSeconds} s): ${differing.length} differ`,
      );
      expect(ids.length).toBeGreaterThan(0);
      expect(differing).toEqual([]);
    },
  );

  it.skipIf(gitopsSkip)(
    'a second run file, committed and synced, runs to the end although the Ray worker pod is lost mid-run',
    async () => {
      const name = 'simplewiki-20261122-again';
      const again: DevRun = {
        ...devRun,
        run_id: `${devRun.run_id}-again`,
        output_prefix: devRun.output_prefix.replace(devRun.run_id, `${devRun.run_id}-again`),
        manifest_uri: devRun.manifest_uri.replace(devRun.run_id, `${devRun.run_id}-again`),
      };
      // The user's change: one new run file in dev's runs/ and its line in the runs ConfigMap's generator.
      const commit = await git.commit('runs: simplewiki 2026-11-22 again, into its own prefix', (dir) => {
        const file = join(DEV_RUNS, `${name}.yaml`);
        copyFileSync(join(dir, DEV_RUNS, 'simplewiki-20261122.yaml'), join(dir, file));
        editYaml(join(dir, file), (doc) => {
          for (const key of ['run_id', 'output_prefix', 'manifest_uri'] as const) doc.set(key, again[key]);
        });
        editYaml(join(dir, DEV_RUNS, '../kustomization.yaml'), (doc) => {
          const generators = doc.get('configMapGenerator') as { items: { get(k: string): unknown }[] };
          const runs = generators.items.find((g) => g.get('name') === 'tokenize-wiki-runs') as {
            get(k: string): { add(v: string): void };
          };
          runs.get('files').add(`runs/${name}.yaml`);
        });
        return [file];
      });
      // Argo CD polls its repositories every 3 minutes; a refresh, as the UI's button does, asks now. dev's
      // wiki-tokenizer syncs on its own once it sees the commit.
      const t0 = Date.now();
      expect(
        (
          await kubectl(
            '-n',
            'argocd',
            'annotate',
            '--overwrite',
            'applications.argoproj.io',
            'wiki-tokenizer',
            'argocd.argoproj.io/refresh=normal',
          )
        ).code,
      ).toBe(0);
      // A sync of that commit that succeeded; the app's sync status is not asked for, as the RayCluster turned
      // OutOfSync again right after such a sync here.
      let last = '';
      await waitFor(`a sync of wiki-tokenizer at ${commit.slice(0, 12)}`, 300_000, async () => {
        const app = await kubectl(
          '-n',
          'argocd',
          'get',
          'applications.argoproj.io',
          'wiki-tokenizer',
          '-o',
          'jsonpath={.status.operationState.phase} {.status.operationState.syncResult.revision}',
        );
        last = app.stdout.trim();
        return last === `Succeeded ${commit}` ? true : undefined;
      }).catch((err: Error) => {
        throw new Error(`${err.message}; last: ${last}`);
      });
      timings.runFileSyncSeconds = Math.round((Date.now() - t0) / 100) / 10;
      const volumes = (
        await kubectl(
          '-n',
          'tokenize-wiki',
          'get',
          'cronjob',
          'submitter',
          '-o',
          'jsonpath={.spec.jobTemplate.spec.template.spec.volumes[?(@.name=="runs")].configMap.name}',
        )
      ).stdout.trim();
      const runsMap = JSON.parse(
        (await kubectl('-n', 'tokenize-wiki', 'get', 'configmap', volumes, '-o', 'json')).stdout,
      ) as { data?: Record<string, string> };
      expect(Object.keys(runsMap.data ?? {})).toContain(`${name}.yaml`);

      // The fault: once the second run's task job runs on the Ray worker (its `run-tasks` process is up in the node;
      // a tick that submits the manifest job ends there, the next one submits the tasks), the worker pod goes, as
      // with a node lost; the ticks go on.
      const t1 = Date.now();
      // Brackets keep the patterns from matching grep's own command line.
      const find = `grep -las '[r]un-tasks' /proc/[0-9]*/cmdline | xargs -r grep -las '[${again.run_id[0]}]${again.run_id.slice(1)}'`;
      let tick = 0;
      await waitFor(`run-tasks of ${again.run_id} running in the node`, 300_000, async () => {
        if ((await node.exec(['bash', '-c', find])).stdout.trim()) return true;
        const ended =
          tick > 0 &&
          (
            await kubectl(
              '-n',
              'tokenize-wiki',
              'get',
              'job',
              `e2e-again-tick-${tick}`,
              '-o',
              'jsonpath={.status.conditions[0].status}',
            )
          ).stdout.trim() === 'True';
        if (tick === 0 || ended) await startSubmitterJob(`e2e-again-tick-${++tick}`);
        return undefined;
      });
      const workers = [
        '-n',
        'tokenize-wiki',
        'get',
        'pods',
        '-l',
        'ray.io/cluster=tokenize-wiki,ray.io/node-type=worker',
        '-o',
        'jsonpath={.items[*].metadata.name}',
      ];
      const lost = (await kubectl(...workers)).stdout.trim();
      expect(
        (await kubectl('-n', 'tokenize-wiki', 'delete', 'pod', lost, '--grace-period=1', '--wait=false')).code,
      ).toBe(0);
      log(`e2e: deleted the Ray worker pod ${lost} while ${again.run_id}'s task job ran`);
      const { ticks, verified } = await ticksUntilVerified('again', again, 8, tick);
      // Ticks of the second run in all, and from the one in flight when the worker went.
      timings.workerLostTicks = ticks;
      timings.workerLostTicksFromFault = ticks - tick + 1;
      timings.workerLostRunSeconds = Math.round((Date.now() - t1) / 100) / 10;
      const jobs = await rayJobs(again.run_id);
      log(`e2e: RayJobs of ${again.run_id}:\n${jobs}\ne2e: verify:\n${verified.logs}`);
      if (!verified.ok) log(await clusterState(['tokenize-wiki']));
      expect(verified.ok).toBe(true);
      // The lost job did not succeed, and another worker pod took its place.
      expect(
        jobs
          .split('\n')
          .filter(Boolean)
          .some((l) => l.split(' ')[1] !== 'SUCCEEDED'),
        jobs,
      ).toBe(true);
      expect((await kubectl(...workers)).stdout.trim()).not.toBe(lost);
    },
  );
});
