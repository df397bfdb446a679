// The user's commands on a real (container) node, air-gapped, one cluster for the whole file: bootstrap-node
// --bundle, init-control-plane --cluster dev, then install-argocd from the user's clone of a git server inside
// the cluster network, and Argo CD syncing the tree. Needs a complete bundle (scripts/build-bundle.mts;
// TW_E2E_BUNDLE names another folder); without one the suite says why it did not run.
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
import { DEV_APPLICATIONS, DEV_RUNS, devRun, operator, type DevRun } from './operator.js';
import { chooseContainerdTmpfs, diskPressureReason, evictionPercent } from './resources.js';
import { shardDigests, type ShardDigest } from './shard-digests.js';
import { run as runCommand, waitFor } from '../harness/proc.js';

const log = (line: string): void => void process.stderr.write(`${line}\n`);

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
  const {
    kubectl,
    timed: timedScript,
    clusterState,
    pulledImages,
    createS3Secrets,
    waitForApplications,
    rayClusterReady,
    ticksUntilRunTasks,
    ticksUntilVerified,
    rayJobs,
    docsPerSecond,
  } = operator(
    () => cluster,
    () => node,
    log,
  );
  const timed = (name: string, script: string, args: string[], cwd?: string) =>
    timedScript(timings, name, script, args, cwd);

  beforeAll(async () => {
    cluster = await startCluster({
      nodes: ['cp-1'],
      bundleDir,
      log,
      ...(containerdTmpfs ? { containerdTmpfs: { 'cp-1': containerdTmpfs } } : {}),
    });
    node = cluster.nodes[0]!;
  });

  afterAll(async () => {
    log(`e2e: timings ${JSON.stringify({ ...cluster?.timings, ...timings })}`);
    await cluster?.close();
  });

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
      s3 = await createS3Secrets();
      const t0 = Date.now();
      await waitForApplications(DEV_APPLICATIONS, 20 * 60_000);
      timings.syncSeconds = Math.round((Date.now() - t0) / 100) / 10;
      expect(await pulledImages()).toEqual([]);
    },
  );

  it.skipIf(gitopsSkip)('KubeRay runs our RayCluster on the tokenizer image: head and worker Ready', async () => {
    // Argo CD's RayCluster health check (argocd/install/health/raycluster.lua) already waited for the
    // cluster; this reads KubeRay's own view of it.
    expect(await rayClusterReady()).toBe(true);
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
      const rate = docsPerSecond(jobs, DUMP_DOCS);
      if (rate !== undefined) timings.runDocsPerSecond = rate;
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
      const { tick } = await ticksUntilRunTasks('again', again, [node], 300_000);
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
