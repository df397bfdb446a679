// The user's commands on a real (container) node, air-gapped, one cluster for the whole file: bootstrap-node
// --bundle, init-control-plane --cluster dev, then install-argocd from the user's clone of a git server inside
// the cluster network, and Argo CD syncing the tree. Needs a complete bundle (scripts/build-bundle.mts;
// TW_E2E_BUNDLE names another folder); without one the suite says why it did not run.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { readNodeBundle } from '../../scripts/lib/bundle/node-bundle.js';
import { cacheRoot, repoRoot } from '../harness/paths.js';
import {
  NODE_BUNDLE,
  NODE_NODEJS,
  NODE_REPO,
  nodeScript,
  startCluster,
  type Cluster,
  type ClusterNode,
} from './cluster.js';
import {
  dumpFolder,
  editYaml,
  legacyDumpFile,
  NODE_CLONE,
  serveCheckout,
  serveDump,
  serveLegacyDump,
  type GitServer,
} from './gitops.js';
import { shardDigests, type ShardDigest } from './shard-digests.js';
import { run as runCommand, waitFor } from '../harness/proc.js';

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const kubernetes = (parse(readFileSync(join(repoRoot, 'versions.yaml'), 'utf8')) as { kubernetes: string }).kubernetes;
const bundleDir = process.env.TW_E2E_BUNDLE || join(cacheRoot(), 'bundle', kubernetes);
/** What a node's containerd holds once the bundle's images are imported and unpacked (measured: about 5 GB). */
const NODE_IMAGES_BYTES = 6 * 2 ** 30;
/** A node's containerd on a tmpfs: room for its images, and the RAM the host must have available for that. */
const CONTAINERD_TMPFS = { size: '12g', memoryNeeded: 16 * 2 ** 30 };

/**
 * A size (e.g. `10g`) puts the node's /var/lib/containerd on a tmpfs, so the kubelet measures its image filesystem
 * there: TW_E2E_CONTAINERD_TMPFS, or on its own when the host disk would fall below the kubelet's image-filesystem
 * threshold once the node's images are in (the node would then be tainted disk-pressure mid-suite) and RAM allows.
 */
function chooseContainerdTmpfs(imagefsThresholdPercent: number): string | undefined {
  if (process.env.TW_E2E_CONTAINERD_TMPFS) return process.env.TW_E2E_CONTAINERD_TMPFS;
  const fs = statfsSync(cacheRoot());
  const freeAfterImages = (100 * (fs.bavail * fs.bsize - NODE_IMAGES_BYTES)) / (fs.blocks * fs.bsize);
  if (freeAfterImages >= imagefsThresholdPercent + 1 || availableMemory() < CONTAINERD_TMPFS.memoryNeeded)
    return undefined;
  log(
    `e2e: the host disk would have ${freeAfterImages.toFixed(1)}% free with the node's images, near the kubelet's ${imagefsThresholdPercent}%: containerd on a ${CONTAINERD_TMPFS.size} tmpfs`,
  );
  return CONTAINERD_TMPFS.size;
}

/** MemAvailable: free memory plus the page cache the kernel gives back on demand. */
function availableMemory(): number {
  const kB = /^MemAvailable:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  return Number(kB ?? 0) * 1024;
}

/** The fields of dev's run file the suite reads (the file itself is validated by the submitter). */
interface DevRun {
  run_id: string;
  output_prefix: string;
  manifest_uri: string;
  max_docs_per_task: number;
  text_field: string;
  encoding: string;
}
/** The fields of `tokenize-wiki status --json` the suite reads. */
interface RunStatus {
  tasks: { quarantined: number };
  failures: { task_id: string; failures: number; outages?: number; last_error: string }[];
}
const DEV_RUNS = 'apps/wiki-tokenizer/overlays/dev/runs';
const devRun = parse(readFileSync(join(repoRoot, DEV_RUNS, 'simplewiki-20261122.yaml'), 'utf8')) as DevRun;

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
  // With containerd on a tmpfs, the image filesystem is not the host disk.
  const percents = ['nodefs.available', ...(containerdTmpfs ? [] : ['imagefs.available'])].map(evictionPercent);
  const fs = statfsSync(cacheRoot());
  const free = (100 * fs.bavail) / fs.blocks;
  const threshold = Math.max(...percents);
  return free < threshold
    ? `the host disk under ${cacheRoot()} has ${free.toFixed(1)}% free, below the kubelet eviction threshold ${threshold}% of clusters/dev`
    : undefined;
}

/** A hard eviction threshold of the dev kubelet configuration, in per cent of the filesystem. */
function evictionPercent(signal: string): number {
  const docs = parseAllDocuments(readFileSync(join(repoRoot, 'clusters/dev/kubeadm-config.yaml'), 'utf8')).map(
    (d) => d.toJS() as { kind?: string; evictionHard?: Record<string, string> },
  );
  const eviction = docs.find((d) => d.kind === 'KubeletConfiguration')?.evictionHard ?? {};
  return Number.parseFloat(eviction[signal] ?? '0');
}

const containerdTmpfs = missing ? undefined : chooseContainerdTmpfs(evictionPercent('imagefs.available'));
const diskPressure = missing ? undefined : diskPressureReason();
if (diskPressure) log(`e2e: CoreDNS test NOT RUN: ${diskPressure} (the node is tainted disk-pressure)`);

describe.skipIf(missing !== undefined)('a dev control plane on a node container, from the bundle', () => {
  let cluster: Cluster;
  let node: ClusterNode;
  let git: GitServer;
  /** The object store's key, made in the sync step as a user makes it. */
  let s3: { key: string; secret: string };
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    cluster = await startCluster({ nodes: ['cp-1'], bundleDir, log, ...(containerdTmpfs ? { containerdTmpfs } : {}) });
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

  /**
   * Compares, per task, the shards of `run` in the cluster's object store with those of a local `tokenize-wiki run`
   * of `dump` on the host (into `cluster.dir/<localDir>`): rows, tokens, ids digest and sha256. Returns the tasks
   * compared and the differences; the local run's seconds go into the timings under `<localDir>Seconds`.
   */
  async function compareWithLocalRun(
    dump: string,
    run: DevRun,
    localDir: string,
  ): Promise<{ ids: string[]; differing: string[] }> {
    const local = join(cluster.dir, localDir);
    const t0 = Date.now();
    await runCommand(process.execPath, [
      join(repoRoot, 'bin/tokenize-wiki.js'),
      'run',
      '--dump',
      dump,
      '--output-prefix',
      local,
      '--max-docs-per-task',
      String(run.max_docs_per_task),
      '--text-field',
      run.text_field,
      '--encoding',
      run.encoding,
      '--concurrency',
      '2',
    ]);
    timings[`${localDir}Seconds`] = Math.round((Date.now() - t0) / 100) / 10;
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
    const r = await node.exec([NODE_NODEJS, '--import', 'tsx', 'test/e2e/shard-digests.ts', run.output_prefix], {
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
      `e2e: ${run.run_id}: ${ids.length} tasks compared with a local run (${timings[`${localDir}Seconds`]} s): ${differing.length} differ`,
    );
    return { ids, differing };
  }

  it.skipIf(gitopsSkip)(
    "the cluster's shards hold exactly the rows of a local `tokenize-wiki run` of the same dump",
    async () => {
      const { ids, differing } = await compareWithLocalRun(dumpFolder(cluster), devRun, 'localRun');
      expect(ids.length).toBeGreaterThan(0);
      expect(differing).toEqual([]);
    },
  );

  /** dev's run file under another name: `simplewiki-20261122-<suffix>.yaml`, run id `<dev's>-<suffix>`, its own prefix. */
  function derivedRun(suffix: string): { file: string; run: DevRun } {
    const runId = `${devRun.run_id}-${suffix}`;
    return {
      file: `simplewiki-20261122-${suffix}.yaml`,
      run: {
        ...devRun,
        run_id: runId,
        output_prefix: devRun.output_prefix.replace(devRun.run_id, runId),
        manifest_uri: devRun.manifest_uri.replace(devRun.run_id, runId),
      },
    };
  }

  /**
   * The user's change: a new run file in dev's runs/ (`derivedRun(suffix)`, `dumps` replaced if given) and its line
   * in the runs ConfigMap's generator, with `more` edits, in one commit pushed to the served repository; then a
   * refresh, as the UI's button does (Argo CD otherwise polls every 3 minutes), dev's automated sync of that commit,
   * and the CronJob's runs ConfigMap holding the file. Returns the run and the seconds from the refresh to the sync.
   */
  async function commitRunFile(
    suffix: string,
    message: string,
    options: { dumps?: string[]; more?: (dir: string) => void } = {},
  ): Promise<{ run: DevRun; syncSeconds: number }> {
    const { file, run } = derivedRun(suffix);
    const commit = await git.commit(message, (dir) => {
      const path = join(DEV_RUNS, file);
      copyFileSync(join(dir, DEV_RUNS, 'simplewiki-20261122.yaml'), join(dir, path));
      editYaml(join(dir, path), (doc) => {
        for (const key of ['run_id', 'output_prefix', 'manifest_uri'] as const) doc.set(key, run[key]);
        if (options.dumps) doc.set('dumps', options.dumps);
      });
      editYaml(join(dir, DEV_RUNS, '../kustomization.yaml'), (doc) => {
        const generators = doc.get('configMapGenerator') as { items: { get(k: string): unknown }[] };
        const runs = generators.items.find((g) => g.get('name') === 'tokenize-wiki-runs') as {
          get(k: string): { add(v: string): void };
        };
        runs.get('files').add(`runs/${file}`);
      });
      options.more?.(dir);
      return [path];
    });
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
    const syncSeconds = Math.round((Date.now() - t0) / 100) / 10;
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
    expect(Object.keys(runsMap.data ?? {})).toContain(file);
    return { run, syncSeconds };
  }

  /**
   * Ticks until `run`'s task job runs on the Ray worker (its `run-tasks` process is up in the node; a tick that
   * submits the manifest job ends there, the next one submits the tasks); returns the number of the tick in flight.
   */
  async function untilTaskJobRuns(label: string, run: DevRun): Promise<number> {
    // Brackets keep the patterns from matching grep's own command line.
    const find = `grep -las '[r]un-tasks' /proc/[0-9]*/cmdline | xargs -r grep -las '[${run.run_id[0]}]${run.run_id.slice(1)}'`;
    let tick = 0;
    await waitFor(`run-tasks of ${run.run_id} running in the node`, 300_000, async () => {
      if ((await node.exec(['bash', '-c', find])).stdout.trim()) return true;
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
    });
    return tick;
  }

  /** The run's progress as `tokenize-wiki status --json` shows it (the fields the suite reads). */
  async function runStatus(label: string, file: string): Promise<RunStatus> {
    const r = await submitterJob(
      `e2e-${label}-status`,
      ['status', '--run', `/etc/tokenize-wiki/runs/${file}`, '--json'],
      -1,
    );
    expect(r.ok, r.logs).toBe(true);
    // Log lines (one JSON object each) may come before the status, which is indented JSON.
    const start = r.logs.search(/^\{$/m);
    return JSON.parse(r.logs.slice(start, r.logs.lastIndexOf('\n}') + 2)) as RunStatus;
  }

  /**
   * After a fault during tick `tick`, at `faultAt`: ticks until verify passes (at most 8), then the figures (ticks in
   * all, ticks from the one in flight at the fault, seconds from the fault) into the timings and the log, and the run
   * checked: verify OK (every page exactly once), nothing quarantined, no failure counted against a task. Returns the
   * run's RayJobs and its status.
   */
  async function healsAfterFault(
    label: string,
    suffix: string,
    run: DevRun,
    tick: number,
    faultAt: number,
  ): Promise<{ jobs: string; status: RunStatus }> {
    const { ticks, verified } = await ticksUntilVerified(label, run, 8, tick);
    const seconds = Math.round((Date.now() - faultAt) / 100) / 10;
    Object.assign(timings, {
      [`${label}Ticks`]: ticks,
      [`${label}TicksFromFault`]: ticks - tick + 1,
      [`${label}HealSeconds`]: seconds,
    });
    const jobs = await rayJobs(run.run_id);
    // What KubeRay says of each RayJob: how a lost one ended, in Ray's words.
    const said = await kubectl(
      '-n',
      'tokenize-wiki',
      'get',
      'rayjobs',
      '-l',
      `tokenize-wiki/run-id=${run.run_id}`,
      '-o',
      'jsonpath={range .items[*]}{.metadata.name} {.status.jobDeploymentStatus} {.status.reason}: {.status.message}{"\\n"}{end}',
    );
    log(`e2e: RayJobs of ${run.run_id}:\n${jobs}\n${said.stdout.slice(-4000)}\ne2e: verify:\n${verified.logs}`);
    if (!verified.ok) log(await clusterState(['tokenize-wiki', 'object-store']));
    expect(verified.ok).toBe(true);
    const status = await runStatus(label, derivedRun(suffix).file);
    log(
      `e2e: fault ${label}: healed ${ticks - tick + 1} ticks from the fault (${ticks} ticks in all), ${seconds} s from the fault to verify OK; attempts ${JSON.stringify(status.failures)}`,
    );
    expect(status.tasks.quarantined).toBe(0);
    expect(status.failures.filter((f) => f.failures > 0)).toEqual([]);
    return { jobs, status };
  }

  /** The Ray pods of one kind (head or worker): `kubectl get pods` arguments with the given jsonpath. */
  const rayPods = (kind: 'head' | 'worker', jsonpath = '{.items[*].metadata.name}'): string[] => [
    '-n',
    'tokenize-wiki',
    'get',
    'pods',
    '-l',
    `ray.io/cluster=tokenize-wiki,ray.io/node-type=${kind}`,
    '-o',
    `jsonpath=${jsonpath}`,
  ];

  /** The fault: `pod` deleted as a lost node would lose it (no grace), while `run`'s task job runs; returns when. */
  async function losePod(namespace: string, pod: string, what: string, run: DevRun): Promise<number> {
    const at = Date.now();
    expect((await kubectl('-n', namespace, 'delete', 'pod', pod, '--grace-period=1', '--wait=false')).code).toBe(0);
    log(`e2e: deleted the ${what} pod ${pod} while ${run.run_id}'s task job ran`);
    return at;
  }

  it.skipIf(gitopsSkip)(
    'a dump in the legacy layout, staged by `stage` in the cluster, runs to the shards of a local run of it',
    async () => {
      const url = await serveLegacyDump(cluster, DUMP_DOCS, log);
      const staged = 's3://tokenize-wiki/dumps/cirrussearch/20261122/simplewiki-20261122-cirrussearch-content.json.gz';
      // As a user mirrors a dump: `stage`, here in a Job of the submitter's image, which holds the S3 credentials.
      const stage = await submitterJob('e2e-legacy-stage', [
        'stage',
        '--from',
        url,
        '--to',
        staged,
        '--user-agent',
        'tokenize-wiki-e2e/1.0 (e2e@tokenize-wiki.invalid)',
      ]);
      expect(stage.ok, stage.logs).toBe(true);
      const { run } = await commitRunFile('legacy', 'runs: simplewiki 2026-11-22 from its legacy dump', {
        dumps: [staged],
      });
      const t0 = Date.now();
      const { ticks, verified } = await ticksUntilVerified('legacy', run, 8);
      Object.assign(timings, { legacyRunTicks: ticks, legacyRunSeconds: Math.round((Date.now() - t0) / 100) / 10 });
      log(`e2e: RayJobs of ${run.run_id}:\n${await rayJobs(run.run_id)}\ne2e: verify:\n${verified.logs}`);
      expect(verified.ok).toBe(true);
      const { ids, differing } = await compareWithLocalRun(legacyDumpFile(cluster), run, 'legacyLocalRun');
      expect(ids.length).toBeGreaterThan(0);
      expect(differing).toEqual([]);
    },
  );

  it.skipIf(gitopsSkip)(
    'a second run file, committed and synced, runs to the end although the Ray worker pod is lost mid-run',
    async () => {
      const { run: again, syncSeconds } = await commitRunFile(
        'again',
        'runs: simplewiki 2026-11-22 again, into its own prefix',
      );
      timings.runFileSyncSeconds = syncSeconds;
      // The fault: once the second run's task job runs on the Ray worker, the worker pod goes, as with a node lost;
      // the ticks go on.
      const tick = await untilTaskJobRuns('again', again);
      const lost = (await kubectl(...rayPods('worker'))).stdout.trim();
      const faultAt = await losePod('tokenize-wiki', lost, 'Ray worker', again);
      const { jobs } = await healsAfterFault('again', 'again', again, tick, faultAt);
      // The lost job did not succeed, and another worker pod took its place.
      expect(
        jobs
          .split('\n')
          .filter(Boolean)
          .some((l) => l.split(' ')[1] !== 'SUCCEEDED'),
        jobs,
      ).toBe(true);
      expect((await kubectl(...rayPods('worker'))).stdout.trim()).not.toBe(lost);
    },
  );

  it.skipIf(gitopsSkip)(
    'a run completes although the Ray head pod is lost while its task job runs (no GCS fault tolerance)',
    async () => {
      const { run } = await commitRunFile('head', 'runs: simplewiki 2026-11-22 once more, for the head fault');
      const tick = await untilTaskJobRuns('head', run);
      const lost = (await kubectl(...rayPods('head'))).stdout.trim();
      const faultAt = await losePod('tokenize-wiki', lost, 'Ray head', run);
      await healsAfterFault('head', 'head', run, tick, faultAt);
      expect((await kubectl(...rayPods('head'))).stdout.trim()).not.toBe(lost);
      // How the job came back: KubeRay's own word for submitting it again on the new head (HTTPMode).
      const operator = await kubectl('-n', 'kuberay-system', 'logs', 'deploy/kuberay-operator', '--tail=-1');
      const resubmitted = operator.stdout
        .split('\n')
        .filter((l) => l.includes('Submit a Ray job via an HTTP request') && l.includes(run.run_id)).length;
      log(`e2e: fault head: KubeRay submitted ${run.run_id}'s Ray job again ${resubmitted} times`);
    },
  );

  it.skipIf(gitopsSkip)(
    'a run rides out the object-store pod lost while its task job runs, and no task counts a failure',
    async () => {
      const { run } = await commitRunFile('store', 'runs: simplewiki 2026-11-22 once more, for the object-store fault');
      const tick = await untilTaskJobRuns('store', run);
      const faultAt = await losePod('object-store', 'seaweedfs-0', 'object-store', run);
      const { jobs, status } = await healsAfterFault('store', 'store', run, tick, faultAt);
      // The outage reached the run: run-tasks retried (its driver log, read through the Ray head), or a job ended
      // with an outage the submitter recorded without counting it.
      const head = (await kubectl(...rayPods('head'))).stdout.trim();
      let retries = 0;
      for (const id of jobs
        .split('\n')
        .map((l) => l.split(' ')[0])
        .filter(Boolean)) {
        const logs = await kubectl(
          '-n',
          'tokenize-wiki',
          'exec',
          head,
          '-c',
          'ray-head',
          '--',
          'ray',
          'job',
          'logs',
          id ?? '',
        );
        retries += logs.stdout.split('\n').filter((l) => l.includes('object store unavailable; retrying')).length;
      }
      const outages = status.failures.reduce((n, f) => n + (f.outages ?? 0), 0);
      log(
        `e2e: object-store fault: ${retries} task retries in the driver logs, ${outages} outages recorded by the submitter`,
      );
      expect(retries + outages).toBeGreaterThan(0);
    },
  );

  it.skipIf(gitopsSkip)(
    'a new tokenizer image tag, committed and synced, reaches the Ray head and worker, and a run completes on them',
    async () => {
      // The new tag, as a user's registry would serve it: in this air-gapped node, the bundle's image tagged anew in
      // containerd (where the kubelet finds it with IfNotPresent).
      const overlay = join(repoRoot, 'apps/wiki-tokenizer/overlays/dev/kustomization.yaml');
      const images = (
        parse(readFileSync(overlay, 'utf8')) as { images: { name: string; newName: string; newTag: string }[] }
      ).images;
      const image = images.find((i) => i.name === 'tokenize-wiki');
      if (!image) throw new Error(`${overlay}: no images entry for tokenize-wiki`);
      const tag = `${image.newTag}-e2e`;
      const tagged = await node.exec([
        'ctr',
        '-n',
        'k8s.io',
        'images',
        'tag',
        `${image.newName}:${image.newTag}`,
        `${image.newName}:${tag}`,
      ]);
      expect(tagged.code, tagged.stderr).toBe(0);
      const t0 = Date.now();
      const { run } = await commitRunFile('tag', `images: tokenize-wiki ${tag}; runs: simplewiki 2026-11-22 on it`, {
        more: (dir) =>
          editYaml(join(dir, 'apps/wiki-tokenizer/overlays/dev/kustomization.yaml'), (doc) => {
            const entries = doc.get('images') as {
              items: { get(k: string): unknown; set(k: string, v: string): void }[];
            };
            entries.items.find((i) => i.get('name') === 'tokenize-wiki')?.set('newTag', tag);
          }),
      });
      // KubeRay's Recreate upgrade strategy replaces every Ray pod; then the head and the worker run the new tag, Ready.
      const wanted = `${image.newName}:${tag}`;
      const jsonpath =
        '{range .items[*]}{.metadata.name} {.spec.containers[0].image} {.status.containerStatuses[*].ready}{"\\n"}{end}';
      let last = '';
      await waitFor(`the Ray head and worker on ${wanted}, Ready`, 600_000, async () => {
        const rows = await Promise.all(
          (['head', 'worker'] as const).map(async (k) => (await kubectl(...rayPods(k, jsonpath))).stdout.trim()),
        );
        last = rows.join('\n');
        return rows.every(
          (r) => r !== '' && r.split('\n').every((l) => l.split(' ')[1] === wanted && !l.includes('false')),
        )
          ? true
          : undefined;
      }).catch(async (err: Error) => {
        throw new Error(`${err.message}; last:\n${last}\n${await clusterState(['tokenize-wiki'])}`);
      });
      timings.imageRolloutSeconds = Math.round((Date.now() - t0) / 100) / 10;
      log(`e2e: the Ray pods run ${wanted} ${timings.imageRolloutSeconds} s after the commit:\n${last}`);
      const t1 = Date.now();
      const { ticks, verified } = await ticksUntilVerified('tag', run, 8);
      Object.assign(timings, { tagRunTicks: ticks, tagRunSeconds: Math.round((Date.now() - t1) / 100) / 10 });
      log(`e2e: RayJobs of ${run.run_id}:\n${await rayJobs(run.run_id)}\ne2e: verify:\n${verified.logs}`);
      expect(verified.ok).toBe(true);
      // No pod of the old tag came back meanwhile.
      const rows = (
        await Promise.all(
          (['head', 'worker'] as const).map(async (k) => (await kubectl(...rayPods(k, jsonpath))).stdout.trim()),
        )
      ).join('\n');
      expect(
        rows.split('\n').every((l) => l.split(' ')[1] === wanted),
        rows,
      ).toBe(true);
    },
  );
});
