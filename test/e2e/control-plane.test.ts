// The user's commands on a real (container) node, air-gapped, one cluster for the whole file: bootstrap-node
// --bundle, init-control-plane --cluster dev, then install-argocd from the user's clone of a git server inside
// the cluster network, and Argo CD syncing the tree. Needs a complete bundle (scripts/build-bundle.mts;
// TW_E2E_BUNDLE names another folder); without one the suite says why it did not run.
import { copyFileSync, readFileSync } from 'node:fs';
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
import { DEV_APPLICATIONS, DEV_RUNS, devRun, operator, type DevRun } from './operator.js';
import { chooseContainerdTmpfs, diskPressureReason, evictionPercent } from './resources.js';
import { shardDigests, type ShardDigest } from './shard-digests.js';
import { run as runCommand, waitFor } from '../harness/proc.js';

const log = (line: string): void => void process.stderr.write(`${line}\n`);
/** The fields of `tokenize-wiki status --json` the suite reads. */
interface RunStatus {
  tasks: { quarantined: number };
  failures: { task_id: string; failures: number; outages?: number; last_error: string }[];
}

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
    submitterJob,
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

  it.skipIf(gitopsSkip)("validate-cluster passes, as the user's check after the sync", async () => {
    const r = await timed(
      'validateClusterSeconds',
      'validate-cluster',
      ['--expect-nodes', '1', '--kubeconfig', '/etc/kubernetes/admin.conf'],
      NODE_CLONE,
    );
    log(`e2e: validate-cluster:\n${r.stdout.trim()}`);
    expect(r.code).toBe(0);
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
   * The user's change as one commit pushed to the served repository, then a refresh, as the UI's button does (Argo CD
   * otherwise polls every 3 minutes), and dev's automated sync of that commit. Returns the seconds from the refresh
   * to the sync.
   */
  async function commitAndSync(message: string, edit: Parameters<GitServer['commit']>[1]): Promise<number> {
    const commit = await git.commit(message, edit);
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
    return Math.round((Date.now() - t0) / 100) / 10;
  }

  /** The run files the submitter CronJob mounts now (the runs ConfigMap its template names), parsed. */
  async function mountedRunFiles(): Promise<Record<string, Record<string, unknown>>> {
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
    return Object.fromEntries(
      Object.entries(runsMap.data ?? {}).map(([file, text]) => [file, parse(text) as Record<string, unknown>]),
    );
  }

  /**
   * The user's change: a new run file in dev's runs/ (`derivedRun(suffix)`, `dumps` replaced and `paused: true` set
   * if given) and its line in the runs ConfigMap's generator, with `more` edits, committed and synced
   * (`commitAndSync`); the CronJob's runs ConfigMap then holds the file. Returns the run and the sync's seconds.
   */
  async function commitRunFile(
    suffix: string,
    message: string,
    options: { dumps?: string[]; paused?: boolean; more?: (dir: string) => void } = {},
  ): Promise<{ run: DevRun; syncSeconds: number }> {
    const { file, run } = derivedRun(suffix);
    const syncSeconds = await commitAndSync(message, (dir) => {
      const path = join(DEV_RUNS, file);
      copyFileSync(join(dir, DEV_RUNS, 'simplewiki-20261122.yaml'), join(dir, path));
      editYaml(join(dir, path), (doc) => {
        for (const key of ['run_id', 'output_prefix', 'manifest_uri'] as const) doc.set(key, run[key]);
        if (options.dumps) doc.set('dumps', options.dumps);
        if (options.paused) doc.set('paused', true);
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
    expect(Object.keys(await mountedRunFiles())).toContain(file);
    return { run, syncSeconds };
  }

  /** Ticks until `run`'s task job runs in the node; returns the number of the tick in flight. */
  const untilTaskJobRuns = async (label: string, run: DevRun): Promise<number> =>
    (await ticksUntilRunTasks(label, run, [node], 300_000)).tick;

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
   * After a fault during tick `tick`, at `faultAt`: ticks until verify passes (at most 20: a tick that fails while the
   * object store is down cannot release the run's lease, and the ticks after it, ~12 s each, find it held for its
   * 120 s; seen once when SeaweedFS took 2.5 min to serve S3 again), then the figures (ticks in
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
    const { ticks, verified } = await ticksUntilVerified(label, run, 20, tick);
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
    'a second run file, committed paused, submits nothing; resumed by a commit, it runs to the end although the Ray worker pod is lost mid-run',
    async () => {
      // Committed paused, as a user adds a run before its time: a tick submits nothing for it and says so.
      const { run: again, syncSeconds } = await commitRunFile(
        'again',
        'runs: simplewiki 2026-11-22 again, into its own prefix, paused',
        { paused: true },
      );
      timings.runFileSyncSeconds = syncSeconds;
      const { file } = derivedRun('again');
      expect((await mountedRunFiles())[file]).toMatchObject({ paused: true });
      const paused = await submitterJob('e2e-again-paused');
      expect(paused.ok, paused.logs).toBe(true);
      expect(paused.logs).toContain(`run ${again.run_id}: no manifest yet; submitted 0 manifest jobs; paused`);
      expect(await rayJobs(again.run_id)).toBe('');
      // Resumed: the same file without `paused: true`.
      timings.resumeSyncSeconds = await commitAndSync('runs: resume simplewiki 2026-11-22 again', (dir) => {
        editYaml(join(dir, DEV_RUNS, file), (doc) => void doc.delete('paused'));
        return [join(DEV_RUNS, file)];
      });
      expect((await mountedRunFiles())[file]).not.toHaveProperty('paused');
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
