// The user's commands on a real (container) node, air-gapped, one cluster for the whole file: bootstrap-node
// --bundle, init-control-plane --cluster dev, then install-argocd from the user's clone of a git server inside
// the cluster network, and Argo CD syncing the tree. Needs a complete bundle (scripts/build-bundle.mts;
// TW_E2E_BUNDLE names another folder); without one the suite says why it did not run.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { readNodeBundle } from '../../scripts/lib/bundle/node-bundle.js';
import { cacheRoot, repoRoot } from '../harness/paths.js';
import { NODE_BUNDLE, nodeScript, startCluster, type Cluster, type ClusterNode } from './cluster.js';
import { NODE_CLONE, serveCheckout, serveDump } from './gitops.js';
import { waitFor } from '../harness/proc.js';

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const kubernetes = (parse(readFileSync(join(repoRoot, 'versions.yaml'), 'utf8')) as { kubernetes: string }).kubernetes;
const bundleDir = process.env.TW_E2E_BUNDLE || join(cacheRoot(), 'bundle', kubernetes);

function bundleProblem(): string | undefined {
  try {
    readNodeBundle(bundleDir);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Images kubeadm init needs (asked of the bundle's kubeadm) that the bundle does not hold. */
function imagesMissing(): string[] {
  const wanted = execFileSync(
    join(bundleDir, 'bin', 'kubeadm'),
    ['config', 'images', 'list', `--config=${join(repoRoot, 'clusters/dev/kubeadm-config.yaml')}`],
    {
      encoding: 'utf8',
    },
  )
    .split('\n')
    .filter(Boolean);
  const have = new Set(readNodeBundle(bundleDir).images.map((i) => i.name));
  return wanted.filter((w) => !have.has(w));
}

const missing = bundleProblem();
if (missing) log(`e2e: control-plane suite NOT RUN: ${missing}`);
const missingImages = missing ? [] : imagesMissing();
if (missingImages.length) log(`e2e: init-control-plane test NOT RUN: the bundle lacks ${missingImages.join(', ')}`);

/**
 * The nodes' disks are the host's: when its free space is below the kubelet's eviction threshold of the dev
 * config (imagefs.available, nodefs.available), the node is tainted disk-pressure and no new pod is scheduled.
 */
function diskPressureReason(): string | undefined {
  const docs = parseAllDocuments(readFileSync(join(repoRoot, 'clusters/dev/kubeadm-config.yaml'), 'utf8')).map(
    (d) => d.toJS() as { kind?: string; evictionHard?: Record<string, string> },
  );
  const eviction = docs.find((d) => d.kind === 'KubeletConfiguration')?.evictionHard ?? {};
  const percents = ['nodefs.available', 'imagefs.available'].map((k) => Number.parseFloat(eviction[k] ?? '0'));
  const fs = statfsSync(cacheRoot());
  const free = (100 * fs.bavail) / fs.blocks;
  const threshold = Math.max(...percents);
  return free < threshold
    ? `the host disk under ${cacheRoot()} has ${free.toFixed(1)}% free, below the kubelet eviction threshold ${threshold}% of clusters/dev`
    : undefined;
}

const diskPressure = missing ? undefined : diskPressureReason();
if (diskPressure) log(`e2e: CoreDNS test NOT RUN: ${diskPressure} (the node is tainted disk-pressure)`);

describe.skipIf(missing !== undefined)('a dev control plane on a node container, from the bundle', () => {
  let cluster: Cluster;
  let node: ClusterNode;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    cluster = await startCluster({ nodes: ['cp-1'], bundleDir, log });
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
      await serveCheckout(cluster, node, await serveDump(cluster, DUMP_DOCS, log), log);
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

  /** Runs a Job from the submitter CronJob's template (`kubectl create job --from=cronjob/submitter`), args replaced if given. */
  async function submitterJob(name: string, args?: string[]): Promise<{ ok: boolean; logs: string }> {
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

  it.skipIf(gitopsSkip)(
    "the submitter's ticks run the dev run on the cluster to the end, and verify passes",
    async () => {
      const run = parse(
        readFileSync(join(repoRoot, 'apps/wiki-tokenizer/overlays/dev/runs/simplewiki-20261122.yaml'), 'utf8'),
      ) as { manifest_uri: string; output_prefix: string };
      const verifyArgs = ['verify', '--manifest-uri', run.manifest_uri, '--output-prefix', run.output_prefix];
      const t0 = Date.now();
      // Ticks on demand, one at a time, instead of waiting for the schedule (*/5): the same Job the CronJob makes.
      let verified: { ok: boolean; logs: string } = { ok: false, logs: '' };
      for (let tick = 1; tick <= 12 && !verified.ok; tick++) {
        const r = await submitterJob(`e2e-tick-${tick}`);
        log(`e2e: tick ${tick} ${r.ok ? 'ok' : 'FAILED'}: ${r.logs.trim().split('\n').slice(-3).join(' | ')}`);
        verified = await submitterJob(`e2e-verify-${tick}`, verifyArgs);
      }
      timings.runSecondsFromFirstTick = Math.round((Date.now() - t0) / 100) / 10;
      const jobs = (
        await kubectl(
          '-n',
          'tokenize-wiki',
          'get',
          'rayjobs',
          '-o',
          'jsonpath={range .items[*]}{.metadata.name} {.status.jobStatus} {.status.startTime} {.status.endTime}{"\\n"}{end}',
        )
      ).stdout;
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
});
