// The in-cluster object store (infrastructure/object-store), its Application (clusters/components/object-store) and
// the buckets-ensure Job (apps/wiki-tokenizer/components/buckets-ensure): rendered, schema-checked, and held to the
// same policies test/gitops applies to the app's own workloads.
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  CreateBucketCommand,
  ListObjectsV2Command,
  PutBucketLifecycleConfigurationCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import * as path from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { APP_OVERLAYS, CLUSTERS, objectId, render, renderWithComponents, type K8sObject } from '../gitops/gitops.js';
import { repoRoot } from '../harness/paths.js';
import { loadValidator, type Validator } from '../gitops/schemas.js';
import { ensureWeed, s3Client, startS3Server } from '../harness/s3-server.js';

type Dict = Record<string, unknown>;
const dict = (v: unknown): Dict => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Dict) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const at = (v: unknown, ...keys: (string | number)[]): unknown =>
  keys.reduce<unknown>((cur, k) => (typeof k === 'number' ? list(cur)[k] : dict(cur)[k]), v);

const pins = dict(YAML.parse(readFileSync(path.join(repoRoot, 'versions.yaml'), 'utf8')));
const IMAGE = `docker.io/chrislusf/seaweedfs:${String(pins.seaweedfsImage)}`;
const STORE = 'infrastructure/object-store';
const JOB_COMPONENT = 'apps/wiki-tokenizer/components/buckets-ensure';

let validator: Validator;
beforeAll(async () => {
  validator = await loadValidator();
});

function podSpecOf(o: K8sObject): Dict | undefined {
  if (o.kind === 'StatefulSet' || o.kind === 'Job' || o.kind === 'Deployment')
    return dict(at(o, 'spec', 'template', 'spec'));
  if (o.kind === 'CronJob') return dict(at(o, 'spec', 'jobTemplate', 'spec', 'template', 'spec'));
  return undefined;
}

/** The policies test/gitops/policy.test.ts holds the app's workloads to, for any set of objects. */
function workloadProblems(objects: readonly K8sObject[]): string[] {
  const problems: string[] = [];
  for (const o of objects) {
    const id = objectId(o);
    for (const key of [
      'tokenize-wiki/app',
      'app.kubernetes.io/name',
      'app.kubernetes.io/part-of',
      'app.kubernetes.io/component',
    ]) {
      if (!o.metadata.labels?.[key]) problems.push(`${id}: no label ${key}`);
    }
    const pod = podSpecOf(o);
    if (!pod) continue;
    const sc = dict(pod.securityContext);
    if (sc.runAsNonRoot !== true) problems.push(`${id}: runAsNonRoot is not true`);
    if (at(sc, 'seccompProfile', 'type') !== 'RuntimeDefault') problems.push(`${id}: seccomp is not RuntimeDefault`);
    if (pod.hostNetwork === true || pod.hostPID === true) problems.push(`${id}: host namespaces`);
    for (const c of [...list(pod.initContainers), ...list(pod.containers)].map(dict)) {
      const where = `${id} container ${String(c.name)}`;
      for (const [a, b] of [
        ['requests', 'cpu'],
        ['requests', 'memory'],
        ['limits', 'memory'],
      ] as const) {
        if (at(c, 'resources', a, b) === undefined) problems.push(`${where}: no resources.${a}.${b}`);
      }
      const csc = dict(c.securityContext);
      if (csc.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation is not false`);
      if (JSON.stringify(at(csc, 'capabilities', 'drop')) !== '["ALL"]')
        problems.push(`${where}: capabilities.drop is not [ALL]`);
      if (csc.readOnlyRootFilesystem !== true) problems.push(`${where}: root filesystem is writable`);
    }
  }
  return problems;
}

/** The data of the ConfigMap a container takes its environment from (the store's topology). */
function topologyOf(objects: readonly K8sObject[], container: Dict): Dict {
  const names = list(container.envFrom).map((f) => String(at(f, 'configMapRef', 'name')));
  const cm = objects.find(
    (o) =>
      o.kind === 'ConfigMap' && names.includes(o.metadata.name) && o.metadata.name.startsWith('seaweedfs-topology'),
  );
  if (!cm) throw new Error(`no seaweedfs-topology ConfigMap among ${names.join(', ')}`);
  return dict(cm.data);
}

describe('infrastructure/object-store', () => {
  it('renders schema-valid objects that pass the workload policies, all in namespace object-store', async () => {
    const objects = await render(STORE);
    expect(objects.flatMap((o) => validator.validate(o))).toEqual([]);
    expect(workloadProblems(objects)).toEqual([]);
    for (const o of objects.filter((x) => x.kind !== 'Namespace'))
      expect(o.metadata.namespace, objectId(o)).toBe('object-store');
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
    const ns = objects.find((o) => o.kind === 'Namespace');
    expect(ns?.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it("runs the pinned SeaweedFS image, the same release as the test suite's server", async () => {
    const images = (await render(STORE)).flatMap((o) =>
      list(podSpecOf(o)?.containers).map((c) => String(dict(c).image)),
    );
    expect(images.length).toBeGreaterThan(0);
    expect(new Set(images)).toEqual(new Set([IMAGE]));
    const weed = await ensureWeed();
    const { stdout } = await promisify(execFile)(weed, ['version']);
    expect(stdout.split(/\s+/)).toContain(String(pins.seaweedfsImage));
  });

  it('spreads three replicas over three nodes on local-path volumes, with a PDB and a cluster-internal S3 endpoint', async () => {
    const objects = await render(STORE);
    const sts = objects.find((o) => o.kind === 'StatefulSet');
    expect(at(sts, 'spec', 'replicas')).toBe(3);
    const podLabels = dict(at(sts, 'spec', 'template', 'metadata', 'labels'));
    const anti = list(
      at(
        sts,
        'spec',
        'template',
        'spec',
        'affinity',
        'podAntiAffinity',
        'requiredDuringSchedulingIgnoredDuringExecution',
      ),
    ).map(dict);
    expect(anti.map((a) => a.topologyKey)).toEqual(['kubernetes.io/hostname']);
    expect(
      Object.entries(dict(at(anti[0], 'labelSelector', 'matchLabels'))).every(([k, v]) => podLabels[k] === v),
    ).toBe(true);
    const claim = dict(list(at(sts, 'spec', 'volumeClaimTemplates'))[0]);
    expect(at(claim, 'spec', 'storageClassName')).toBe('local-path');
    // Every replica is a Raft peer, under the headless Service's DNS names; the container reads the
    // peers and the replication from the topology ConfigMap ($(VAR) in args).
    const container = dict(at(sts, 'spec', 'template', 'spec', 'containers', 0));
    const args = list(container.args).map(String);
    const env = topologyOf(objects, container);
    const peers = String(env.MASTER_PEERS).split(',');
    const headless = objects.find((o) => o.kind === 'Service' && at(o, 'spec', 'clusterIP') === 'None');
    expect(at(sts, 'spec', 'serviceName')).toBe(headless?.metadata.name);
    expect(args).toContain('-master.peers=$(MASTER_PEERS)');
    expect(args).toContain('-master.defaultReplication=$(DEFAULT_REPLICATION)');
    expect(peers).toEqual(
      [0, 1, 2].map((i) => `seaweedfs-${i}.${headless?.metadata.name ?? ''}.object-store.svc.cluster.local:9333`),
    );
    expect(env.DEFAULT_REPLICATION).toBe('001');
    expect(args).toContain('-s3.config=/etc/seaweedfs/s3/config.json');
    const secretVolume = list(at(sts, 'spec', 'template', 'spec', 'volumes'))
      .map(dict)
      .find((v) => v.secret !== undefined);
    expect(at(secretVolume, 'secret', 'secretName')).toBe('seaweedfs-s3-config');

    const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget');
    expect(at(pdb, 'spec', 'maxUnavailable')).toBe(1);
    expect(Object.entries(dict(at(pdb, 'spec', 'selector', 'matchLabels'))).every(([k, v]) => podLabels[k] === v)).toBe(
      true,
    );
    const s3 = objects.find((o) => o.kind === 'Service' && o.metadata.name === 'seaweedfs-s3');
    expect(at(s3, 'spec', 'type')).toBe('ClusterIP');
    expect(list(at(s3, 'spec', 'ports')).map((p) => dict(p).port)).toContain(8333);
    // The documented endpoint is this Service.
    expect(readFileSync(path.join(repoRoot, 'docs/storage.md'), 'utf8')).toContain(
      'http://seaweedfs-s3.object-store.svc:8333',
    );
  });

  it('lets only the tokenize-wiki namespace reach S3, and runs the lifecycle pass daily', async () => {
    const objects = await render(STORE);
    const np = objects.find((o) => o.kind === 'NetworkPolicy');
    const rules = list(at(np, 'spec', 'ingress')).map(dict);
    expect(rules).toHaveLength(2);
    expect(at(rules[0], 'from', 0)).toEqual({ podSelector: {} });
    expect(at(rules[1], 'from', 0, 'namespaceSelector', 'matchLabels', 'kubernetes.io/metadata.name')).toBe(
      'tokenize-wiki',
    );
    expect(list(rules[1]?.ports)).toEqual([{ protocol: 'TCP', port: 8333 }]);
    const cron = objects.find((o) => o.kind === 'CronJob');
    expect(at(cron, 'spec', 'concurrencyPolicy')).toBe('Forbid');
    // It asks the same masters the StatefulSet runs.
    const cronContainer = dict(at(cron, 'spec', 'jobTemplate', 'spec', 'template', 'spec', 'containers', 0));
    expect(String(list(cronContainer.args)[0])).toContain('-master=$(MASTER_PEERS)');
    const sts = objects.find((o) => o.kind === 'StatefulSet');
    expect(topologyOf(objects, cronContainer)).toEqual(
      topologyOf(objects, dict(at(sts, 'spec', 'template', 'spec', 'containers', 0))),
    );
    expect(String(at(cron, 'spec', 'jobTemplate', 'spec', 'template', 'spec', 'containers', 0, 'args', 0))).toContain(
      's3.lifecycle.run-shard -shards 0-15 -s3 seaweedfs-s3:18333',
    );
  });
});

describe('the lifecycle pass', () => {
  it("the CronJob's command, run by the test build, deletes what a rule expired and nothing else", async () => {
    const cron = (await render(STORE)).find((o) => o.kind === 'CronJob');
    const script = String(at(cron, 'spec', 'jobTemplate', 'spec', 'template', 'spec', 'containers', 0, 'args', 0));
    const command = /echo "([^"]+)"/.exec(script)?.[1] ?? '';
    expect(command).toMatch(/^s3\.lifecycle\.run-shard .*-s3 seaweedfs-s3:18333/);
    // A server of our own: the pass needs the master's and the S3 gateway's gRPC ports, which the shared one does not
    // publish. Its ports are read from its command line (the harness gives every listener an explicit port).
    const server = await startS3Server();
    const client = s3Client(server.connection);
    try {
      const args = readFileSync(`/proc/${server.pid}/cmdline`, 'utf8').split('\0');
      const port = (flag: string): string => args.find((a) => a.startsWith(`-${flag}=`))?.split('=')[1] ?? '';
      const Bucket = 'tw-lifecycle-pass';
      await client.send(new CreateBucketCommand({ Bucket }));
      for (const Key of ['runs/x/state/attempt-1.json', 'runs/x/shards/t1.jsonl.gz', 'runs/y/state/attempt-1.json'])
        await client.send(new PutObjectCommand({ Bucket, Key, Body: '{}' }));
      // Days cannot pass in a test; a date in the past makes the rule due now, through the same pass.
      const rule = {
        ID: 'tokenize-wiki:state:runs/x/',
        Status: 'Enabled' as const,
        Filter: { Prefix: 'runs/x/state/' },
        Expiration: { Date: new Date('2020-01-01T00:00:00Z') },
      };
      await client.send(
        new PutBucketLifecycleConfigurationCommand({ Bucket, LifecycleConfiguration: { Rules: [rule] } }),
      );
      const local = command.replace('seaweedfs-s3:18333', `127.0.0.1:${port('s3.port.grpc')}`);
      // host:port.grpcPort: the test server's gRPC port is not port+10000 as in the cluster.
      const r = spawnSync(
        await ensureWeed(),
        ['shell', `-master=127.0.0.1:${port('master.port')}.${port('master.port.grpc')}`],
        { input: `${local}\n`, encoding: 'utf8', timeout: 90_000 },
      );
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('loaded lifecycle for 1 bucket(s)');
      const left = (await client.send(new ListObjectsV2Command({ Bucket }))).Contents?.map((o) => o.Key);
      expect(left).toEqual(['runs/x/shards/t1.jsonl.gz', 'runs/y/state/attempt-1.json']);
    } finally {
      client.destroy();
      await server.stop();
    }
  });
});

describe('infrastructure/object-store-single-node', () => {
  it('one pod, one master, no second copy; otherwise the same store, and it passes the same policies', async () => {
    const objects = await render(`${STORE}-single-node`);
    expect(objects.flatMap((o) => validator.validate(o))).toEqual([]);
    expect(workloadProblems(objects)).toEqual([]);
    const sts = objects.find((o) => o.kind === 'StatefulSet');
    expect(at(sts, 'spec', 'replicas')).toBe(1);
    const env = topologyOf(objects, dict(at(sts, 'spec', 'template', 'spec', 'containers', 0)));
    expect(env).toEqual({
      MASTER_PEERS: 'seaweedfs-0.seaweedfs-peers.object-store.svc.cluster.local:9333',
      DEFAULT_REPLICATION: '000',
    });
    const three = await render(STORE);
    const kinds = (xs: readonly K8sObject[]) =>
      xs.map((o) => `${o.kind}/${o.metadata.name.replace(/-[a-z0-9]{10}$/, '')}`).sort();
    expect(kinds(objects)).toEqual(kinds(three));
  });
});

describe('clusters/components/object-store', () => {
  it('adds an automated, self-healing Application for the object store after local-path and before wiki-tokenizer, in every cluster', async () => {
    for (const cluster of CLUSTERS) {
      const objects = await render(`clusters/${cluster}`);
      expect(objects.flatMap((o) => validator.validate(o))).toEqual([]);
      const apps = objects.filter((o) => o.kind === 'Application');
      const wave = (name: string): number =>
        Number(apps.find((a) => a.metadata.name === name)?.metadata.annotations?.['argocd.argoproj.io/sync-wave']);
      const store = apps.find((a) => a.metadata.name === 'object-store');
      expect(at(store, 'spec', 'source', 'path')).toBe(cluster === 'dev' ? `${STORE}-single-node` : STORE);
      expect(at(store, 'spec', 'destination', 'namespace')).toBe('object-store');
      expect(at(store, 'spec', 'syncPolicy', 'automated', 'selfHeal')).toBe(true);
      expect(store?.metadata.labels?.['tokenize-wiki/app']).toBe('root');
      expect(wave('object-store')).toBeGreaterThan(wave('local-path'));
      expect(wave('object-store')).toBeLessThan(wave('wiki-tokenizer'));
      const root = apps.find((a) => a.metadata.name === 'wiki-tokenizer');
      expect(at(store, 'spec', 'source', 'repoURL')).toBe(at(root, 'spec', 'source', 'repoURL'));
    }
  });
});

describe('apps/wiki-tokenizer/components/buckets-ensure', () => {
  it.each(APP_OVERLAYS)(
    "%s: a PostSync Job checks every run file of the runs ConfigMap with the app's S3 settings",
    async (overlay) => {
      const objects = await renderWithComponents(overlay, [JOB_COMPONENT]);
      expect(objects.flatMap((o) => validator.validate(o))).toEqual([]);
      const job = objects.find((o) => o.kind === 'Job');
      expect(job).toBeDefined();
      if (!job) return;
      expect(workloadProblems([job])).toEqual([]);
      expect(job.metadata.namespace).toBe('tokenize-wiki');
      expect(job.metadata.annotations?.['argocd.argoproj.io/hook']).toBe('PostSync');
      const pod = dict(at(job, 'spec', 'template', 'spec'));
      const c = dict(list(pod.containers)[0]);
      expect(list(c.args)).toEqual(['buckets', 'ensure', '--run', '/etc/tokenize-wiki/runs']);
      const cron = objects.find((o) => o.kind === 'CronJob' && o.metadata.name === 'submitter');
      const cronPod = dict(at(cron, 'spec', 'jobTemplate', 'spec', 'template', 'spec'));
      const cronContainer = dict(list(cronPod.containers)[0]);
      // Same image, credentials, endpoint, service account and run files as the submitter.
      expect(c.image).toBe(cronContainer.image);
      expect(c.envFrom).toEqual(cronContainer.envFrom);
      expect(pod.serviceAccountName).toBe(cronPod.serviceAccountName);
      const runsVolume = (p: Dict): unknown =>
        at(
          list(p.volumes)
            .map(dict)
            .find((v) => v.name === 'runs'),
          'configMap',
          'name',
        );
      expect(runsVolume(pod)).toMatch(/^tokenize-wiki-runs-[a-z0-9]{10}$/);
      expect(runsVolume(pod)).toBe(runsVolume(cronPod));
    },
  );
});
