import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { validateCluster } from '../../scripts/validate-cluster.mjs';
import { captureIO, FakeHost } from './fake-host.js';
import { repoRoot } from '../harness/paths.js';

const { ray } = parse(readFileSync(join(repoRoot, 'versions.yaml'), 'utf8')) as { ray: string };
const ready = [{ type: 'Ready', status: 'True' }];
const items = (...xs: unknown[]) => ({ stdout: JSON.stringify({ items: xs }) });
const pod = (name: string, phase = 'Running', isReady = true) => ({
  metadata: { name, namespace: 'x' },
  status: { phase, containerStatuses: [{ ready: isReady }] },
});
const CONTROL_PLANE = { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' };
const node = (name: string, cpu: string, memory: string, taints: unknown[] = []) => ({
  metadata: { name },
  spec: { taints },
  status: { conditions: ready, allocatable: { cpu, memory } },
});
const container = (cpu: string, memory: string) => ({
  resources: { requests: { cpu, memory }, limits: { cpu, memory } },
});
/** A RayCluster spec: the head tolerates the control plane (as overlays/prod), one worker group. */
const raySpec = (workerCpu: string, workerMemory: string) => ({
  headGroupSpec: {
    template: {
      spec: { containers: [container('2', '8Gi')], tolerations: [{ ...CONTROL_PLANE, operator: 'Exists' }] },
    },
  },
  workerGroupSpecs: [
    { groupName: 'workers', template: { spec: { containers: [container(workerCpu, workerMemory)] } } },
  ],
});
const crd = (name: string) => ({
  metadata: { name },
  status: { conditions: [{ type: 'Established', status: 'True' }] },
});

/** A healthy three-node prod cluster, as kubectl reports it. */
function healthyCluster(): FakeHost {
  const host = new FakeHost();
  host.kube = [
    {
      match: ['get', 'nodes'],
      result: items(
        node('cp-1', '8', '32Gi', [CONTROL_PLANE]),
        node('worker-1', '7800m', '31Gi'),
        node('worker-2', '7800m', '31Gi'),
      ),
    },
    { match: ['kube-system', 'pods'], result: items(pod('etcd-cp-1'), pod('kube-apiserver-cp-1'), pod('coredns-1')) },
    { match: ['kube-flannel', 'pods'], result: items(pod('kube-flannel-ds-a'), pod('kube-flannel-ds-b')) },
    {
      match: ['argocd', 'pods'],
      result: items(pod('argocd-server-1'), pod('argocd-redis-secret-init', 'Succeeded', false)),
    },
    {
      match: ['storageclasses'],
      result: items({
        metadata: { name: 'local-path', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
      }),
    },
    {
      match: ['crd', 'rayclusters.ray.io'],
      result: items(crd('rayclusters.ray.io'), crd('rayjobs.ray.io'), crd('rayservices.ray.io')),
    },
    {
      match: ['--field-selector=metadata.name=kuberay-operator'],
      result: items({
        metadata: { name: 'kuberay-operator', namespace: 'kuberay-system' },
        status: { availableReplicas: 1 },
      }),
    },
    {
      match: ['rayclusters.ray.io', '--all-namespaces'],
      result: items({
        metadata: { name: 'tokenizer', namespace: 'wiki-tokenizer' },
        spec: raySpec('6', '24Gi'),
        status: { state: 'ready', head: { serviceName: 'tokenizer-head-svc' } },
      }),
    },
    {
      match: ['--raw=/api/v1/namespaces/wiki-tokenizer/services/tokenizer-head-svc:dashboard/proxy/api/version'],
      result: { stdout: JSON.stringify({ version: '4', ray_version: ray }) },
    },
    {
      match: ['applications.argoproj.io'],
      result: items({
        metadata: { name: 'flannel' },
        status: { sync: { status: 'Synced' }, health: { status: 'Healthy' } },
      }),
    },
  ];
  return host;
}

async function run(host: FakeHost, ...argv: string[]) {
  const { io, captured } = captureIO(host);
  const code = await validateCluster(argv, io);
  return { code, ...captured };
}

describe('validate-cluster', () => {
  it('passes a healthy cluster, one line per check', async () => {
    const host = healthyCluster();
    const r = await run(host, '--expect-nodes', '3');
    expect(r.code).toBe(0);
    expect(r.out.map((l) => l.replace(/ \(\d+ms\)$/, ''))).toEqual([
      'PASS  nodes-ready       3/3 Ready',
      'PASS  node-sizes        2 Ray pod shape(s) fit the nodes',
      'PASS  system-pods       7 pods running and ready in kube-system, kube-flannel, argocd',
      'PASS  default-storage   default StorageClass local-path',
      'PASS  kuberay-crds      3 CRDs established',
      'PASS  kuberay-operator  kuberay-system/kuberay-operator available',
      'PASS  raycluster-ready  1 RayCluster(s) ready',
      `PASS  ray-dashboard     dashboard answers, Ray ${ray}`,
      'PASS  argocd-synced     1 Applications Synced and Healthy',
      'cluster valid: 9/9 checks passed',
    ]);
    expect(host.unknownProbes).toEqual([]);
    expect(host.actions).toEqual([]);
  });

  it('fails with the reason on each broken part', async () => {
    const host = healthyCluster();
    host.kube.unshift(
      {
        match: ['get', 'nodes'],
        result: items(node('cp-1', '8', '32Gi', [CONTROL_PLANE]), {
          ...node('worker-1', '7800m', '31Gi'),
          status: { conditions: [{ type: 'Ready', status: 'False' }], allocatable: { cpu: '7800m', memory: '31Gi' } },
        }),
      },
      { match: ['kube-flannel', 'pods'], result: items(pod('kube-flannel-ds-a', 'Running', false)) },
      { match: ['storageclasses'], result: items({ metadata: { name: 'local-path' } }) },
      {
        match: ['rayclusters.ray.io', '--all-namespaces'],
        result: items({ metadata: { name: 'tokenizer', namespace: 'wiki-tokenizer' }, status: { state: 'suspended' } }),
      },
      {
        match: ['--raw=/api/v1/namespaces/wiki-tokenizer/services/tokenizer-head-svc:dashboard/proxy/api/version'],
        result: { stdout: JSON.stringify({ ray_version: '2.0.0' }) },
      },
      {
        match: ['applications.argoproj.io'],
        result: items({
          metadata: { name: 'kuberay' },
          status: { sync: { status: 'OutOfSync' }, health: { status: 'Degraded' } },
        }),
      },
    );
    const r = await run(host, '--expect-nodes', '3');
    expect(r.code).toBe(1);
    const lines = r.out.map((l) => l.replace(/ \(\d+ms\)$/, ''));
    expect(lines).toContain('FAIL  nodes-ready       1/2 Ready (not Ready: worker-1), expected >= 3');
    expect(lines).toContain('FAIL  system-pods       kube-flannel/kube-flannel-ds-a Running not ready');
    expect(lines).toContain('FAIL  default-storage   no default StorageClass');
    expect(lines).toContain('FAIL  raycluster-ready  not ready: wiki-tokenizer/tokenizer (suspended)');
    expect(lines).toContain(`FAIL  ray-dashboard     wiki-tokenizer/tokenizer: Ray 2.0.0, versions.yaml pins ${ray}`);
    expect(lines).toContain('FAIL  argocd-synced     kuberay OutOfSync/Degraded');
    expect(lines.at(-1)).toBe(
      'cluster NOT valid: 6 of 9 checks failed (nodes-ready, system-pods, default-storage, raycluster-ready, ray-dashboard, argocd-synced)',
    );
  });

  it('says which Ray pod no node can hold, with the node it came closest on', async () => {
    const host = healthyCluster();
    // 4 vCPU / 16 GiB workers, kubelet reservations taken: the base's 6 CPU / 24 GiB workers never schedule.
    host.kube.unshift({
      match: ['get', 'nodes'],
      result: items(
        node('cp-1', '3800m', '14Gi', [CONTROL_PLANE]),
        node('worker-1', '3800m', '14848Mi'),
        node('worker-2', '3800m', '14848Mi'),
      ),
    });
    const r = await run(host, '--expect-nodes', '3');
    expect(r.code).toBe(1);
    const lines = r.out.map((l) => l.replace(/ \(\d+ms\)$/, ''));
    expect(lines).toContain(
      'FAIL  node-sizes        wiki-tokenizer/tokenizer workers asks 6 CPU / 24 GiB per pod, the largest node it may use (worker-1) offers 3.8 CPU / 14.5 GiB: use smaller Ray sizes (apps/wiki-tokenizer/components/nodes-4cpu-16gib for 4 vCPU / 16 GiB nodes) or larger nodes',
    );
  });

  it('--overlay checks the sizes an overlay asks for before Argo CD syncs it', async () => {
    const host = healthyCluster();
    host.kube.unshift({ match: ['get', 'nodes'], result: items(node('node-1', '3800m', '14848Mi')) });
    const rendered = [
      'apiVersion: ray.io/v1',
      'kind: RayCluster',
      'metadata: {name: tokenize-wiki, namespace: tokenize-wiki}',
      `spec: ${JSON.stringify(raySpec('6', '24Gi'))}`,
    ].join('\n');
    host.kube.unshift({ match: ['kustomize'], result: { stdout: rendered } });
    const r = await run(host, '--overlay', 'prod');
    const line = r.out.find((l) => l.startsWith('FAIL  node-sizes'));
    expect(line).toContain(
      'tokenize-wiki/tokenize-wiki workers asks 6 CPU / 24 GiB per pod, the largest node it may use (node-1) offers 3.8 CPU / 14.5 GiB',
    );
    expect(host.probes.some((p) => p.endsWith('kustomize ' + repoRoot + '/apps/wiki-tokenizer/overlays/prod'))).toBe(
      true,
    );
    const bad = await run(healthyCluster(), '--overlay', 'qa');
    expect(bad.code).toBe(2);
    expect(bad.err.at(-1)).toBe(
      'validate-cluster: usage error: --overlay qa: no apps/wiki-tokenizer/overlays/qa/kustomization.yaml (known: dev, dev-3, prod)',
    );
  });

  it('--dry-run also prints each read-only query', async () => {
    const r = await run(healthyCluster(), '--dry-run');
    expect(r.code).toBe(0);
    expect(r.out).toContain('kubectl --request-timeout=15s get nodes -o json');
  });

  it('exits 2 on a bad --expect-nodes', async () => {
    const r = await run(healthyCluster(), '--expect-nodes', 'three');
    expect(r.code).toBe(2);
    expect(r.err.at(-1)).toBe('validate-cluster: usage error: --expect-nodes must be a positive integer, got "three"');
  });
});
