// The checklist's validation step as one read-only report: nodes, system pods, storage, KubeRay,
// the RayCluster and its dashboard, and Argo CD's applications. Exit 0 only if every check passes.
import { parseAllDocuments } from 'yaml';
import { main, runScript, type ScriptSpec } from './lib/cli.js';
import { UsageError } from './lib/errors.js';
import type { Host } from './lib/host.js';
import { kubectlWith, kubeJson, readyNodes, type Condition, type Kubectl, type NodeList } from './lib/kubectl.js';
import type { ScriptIO } from './lib/run.js';
import { formatMs } from './lib/run.js';
import { fitProblems, quantity, rayPods, type NodeShape, type RayClusterLike, type Taint } from './lib/sizing.js';
import { requireCluster } from './lib/repo.js';
import { loadVersions } from './lib/versions.js';

const options = {
  kubeconfig: { type: 'string' },
  'expect-nodes': { type: 'string' },
  overlay: { type: 'string' },
} as const;

const spec = {
  name: 'validate-cluster',
  options,
  readOnly: true,
  usage: `
Usage: node --import tsx scripts/validate-cluster.mts [--expect-nodes N] [--overlay NAME] [--kubeconfig FILE] [--dry-run]

Read-only checks, one PASS/FAIL line each:
  nodes-ready        every node Ready (and at least N nodes with --expect-nodes)
  node-sizes         each Ray pod (head, one worker per group) fits on some node it may use,
                     by the node's allocatable CPU and memory: the RayClusters of the cluster, or
                     of apps/wiki-tokenizer/overlays/NAME with --overlay (before Argo CD syncs it)
  system-pods        pods in kube-system, kube-flannel and argocd running and ready
  default-storage    a default StorageClass exists
  kuberay-crds       rayclusters/rayjobs/rayservices.ray.io established
  kuberay-operator   the kuberay-operator deployment available
  raycluster-ready   every RayCluster ready (at least one exists)
  ray-dashboard      each RayCluster's dashboard answers through the API server, with the Ray
                     version pinned in versions.yaml
  argocd-synced      every Argo CD Application Synced and Healthy

  --expect-nodes N   fail unless at least N nodes exist (3 for prod, 1 for dev)
  --overlay NAME     check node sizes against this overlay's RayCluster instead of the live ones
  --kubeconfig FILE  kubeconfig to use (default: kubectl's)
  --dry-run          also print every kubectl query as it runs (they change nothing)
  -h, --help         this text

Exit codes: 0 all checks passed, 1 a check failed, 2 bad usage.`,
} satisfies ScriptSpec<typeof options>;

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

interface PodList {
  items: {
    metadata: { name: string; namespace: string };
    status?: { phase?: string; containerStatuses?: { ready: boolean }[] };
  }[];
}

interface RayCluster {
  metadata: { name: string; namespace: string };
  status?: { state?: string; conditions?: Condition[]; head?: { serviceName?: string } };
}

const SYSTEM_NAMESPACES = ['kube-system', 'kube-flannel', 'argocd'];
const RAY_CRDS = ['rayclusters.ray.io', 'rayjobs.ray.io', 'rayservices.ray.io'];

type Check = (host: Host, k: Kubectl) => Promise<Omit<CheckResult, 'name'>>;

interface SizedNodeList {
  items: {
    metadata: { name: string };
    spec?: { taints?: Taint[] };
    status?: { allocatable?: { cpu?: string; memory?: string } };
  }[];
}

const SIZING_HINT =
  'use smaller Ray sizes (apps/wiki-tokenizer/components/nodes-4cpu-16gib for 4 vCPU / 16 GiB nodes) or larger nodes';

/** The RayClusters of `kubectl kustomize <overlay>` (read-only), or undefined if it does not render. */
async function overlayRayClusters(host: Host, k: Kubectl, dir: string): Promise<RayClusterLike[] | undefined> {
  const r = await host.probe(k('kustomize', dir));
  if (r.exitCode !== 0) return undefined;
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as { kind?: string } | null)
    .filter((o): o is RayClusterLike & { kind: string } => o?.kind === 'RayCluster');
}

export function clusterChecks(opts: { expectNodes: number; ray: string; overlayDir?: string }): [string, Check][] {
  const q = (k: Kubectl, ...args: string[]) => k('--request-timeout=15s', ...args);
  return [
    [
      'nodes-ready',
      async (host, k) => {
        const list = await kubeJson<NodeList>(host, q(k, 'get', 'nodes', '-o', 'json'));
        if (!list) return { ok: false, detail: 'cannot list nodes' };
        const ready = readyNodes(list);
        const notReady = list.items.map((n) => n.metadata.name).filter((n) => !ready.includes(n));
        const ok = notReady.length === 0 && list.items.length >= opts.expectNodes;
        return {
          ok,
          detail: `${ready.length}/${list.items.length} Ready${notReady.length ? ` (not Ready: ${notReady.join(', ')})` : ''}${list.items.length < opts.expectNodes ? `, expected >= ${opts.expectNodes}` : ''}`,
        };
      },
    ],
    [
      'node-sizes',
      async (host, k) => {
        const nodes = await kubeJson<SizedNodeList>(host, q(k, 'get', 'nodes', '-o', 'json'));
        if (!nodes) return { ok: false, detail: 'cannot list nodes' };
        const clusters = opts.overlayDir
          ? await overlayRayClusters(host, k, opts.overlayDir)
          : (
              await kubeJson<{ items: RayClusterLike[] }>(
                host,
                q(k, 'get', 'rayclusters.ray.io', '--all-namespaces', '-o', 'json'),
              )
            )?.items;
        if (!clusters)
          return {
            ok: false,
            detail: opts.overlayDir
              ? `kubectl kustomize ${opts.overlayDir} failed`
              : 'cannot list RayClusters (CRD missing?)',
          };
        const shapes: NodeShape[] = nodes.items.map((n) => ({
          name: n.metadata.name,
          allocatable: { cpu: quantity(n.status?.allocatable?.cpu), memory: quantity(n.status?.allocatable?.memory) },
          taints: n.spec?.taints ?? [],
        }));
        const pods = clusters.flatMap(rayPods);
        const problems = fitProblems(pods, shapes, SIZING_HINT);
        if (problems.length > 0) return { ok: false, detail: problems.join('; ') };
        return {
          ok: true,
          detail: pods.length ? `${pods.length} Ray pod shape(s) fit the nodes` : 'no RayCluster to size',
        };
      },
    ],
    [
      'system-pods',
      async (host, k) => {
        const bad: string[] = [];
        let total = 0;
        for (const ns of SYSTEM_NAMESPACES) {
          const list = await kubeJson<PodList>(host, q(k, '-n', ns, 'get', 'pods', '-o', 'json'));
          if (!list) return { ok: false, detail: `cannot list pods in ${ns}` };
          if (list.items.length === 0 && ns !== 'argocd') bad.push(`${ns}: no pods`);
          for (const p of list.items) {
            total++;
            const phase = p.status?.phase ?? 'Unknown';
            const ready = (p.status?.containerStatuses ?? []).every((c) => c.ready);
            if (phase === 'Succeeded') continue;
            if (phase !== 'Running' || !ready)
              bad.push(`${ns}/${p.metadata.name} ${phase}${phase === 'Running' ? ' not ready' : ''}`);
          }
        }
        return {
          ok: bad.length === 0,
          detail: bad.length ? bad.join(', ') : `${total} pods running and ready in ${SYSTEM_NAMESPACES.join(', ')}`,
        };
      },
    ],
    [
      'default-storage',
      async (host, k) => {
        const list = await kubeJson<{ items: { metadata: { name: string; annotations?: Record<string, string> } }[] }>(
          host,
          q(k, 'get', 'storageclasses', '-o', 'json'),
        );
        if (!list) return { ok: false, detail: 'cannot list StorageClasses' };
        const defaults = list.items
          .filter((s) => s.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true')
          .map((s) => s.metadata.name);
        return defaults.length === 1
          ? { ok: true, detail: `default StorageClass ${defaults[0]}` }
          : {
              ok: false,
              detail: defaults.length
                ? `several default StorageClasses: ${defaults.join(', ')}`
                : 'no default StorageClass',
            };
      },
    ],
    [
      'kuberay-crds',
      async (host, k) => {
        const list = await kubeJson<{ items: { metadata: { name: string }; status?: { conditions?: Condition[] } }[] }>(
          host,
          q(k, 'get', 'crd', ...RAY_CRDS, '-o', 'json', '--ignore-not-found'),
        );
        if (!list) return { ok: false, detail: 'cannot list CRDs' };
        const established = list.items
          .filter((c) => c.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True'))
          .map((c) => c.metadata.name);
        const missing = RAY_CRDS.filter((c) => !established.includes(c));
        return {
          ok: missing.length === 0,
          detail: missing.length
            ? `missing or not established: ${missing.join(', ')}`
            : `${RAY_CRDS.length} CRDs established`,
        };
      },
    ],
    [
      'kuberay-operator',
      async (host, k) => {
        const list = await kubeJson<{
          items: { metadata: { name: string; namespace: string }; status?: { availableReplicas?: number } }[];
        }>(
          host,
          q(
            k,
            'get',
            'deployments',
            '--all-namespaces',
            '--field-selector=metadata.name=kuberay-operator',
            '-o',
            'json',
          ),
        );
        if (!list) return { ok: false, detail: 'cannot list deployments' };
        const op = list.items[0];
        if (!op) return { ok: false, detail: 'no kuberay-operator deployment' };
        const ok = (op.status?.availableReplicas ?? 0) >= 1;
        return { ok, detail: `${op.metadata.namespace}/kuberay-operator ${ok ? 'available' : 'not available'}` };
      },
    ],
    [
      'raycluster-ready',
      async (host, k) => {
        const list = await kubeJson<{ items: RayCluster[] }>(
          host,
          q(k, 'get', 'rayclusters.ray.io', '--all-namespaces', '-o', 'json'),
        );
        if (!list) return { ok: false, detail: 'cannot list RayClusters (CRD missing?)' };
        if (list.items.length === 0) return { ok: false, detail: 'no RayCluster' };
        const notReady = list.items
          .filter((c) => !rayClusterReady(c))
          .map((c) => `${c.metadata.namespace}/${c.metadata.name} (${c.status?.state ?? 'no status'})`);
        return {
          ok: notReady.length === 0,
          detail: notReady.length ? `not ready: ${notReady.join(', ')}` : `${list.items.length} RayCluster(s) ready`,
        };
      },
    ],
    [
      'ray-dashboard',
      async (host, k) => {
        const list = await kubeJson<{ items: RayCluster[] }>(
          host,
          q(k, 'get', 'rayclusters.ray.io', '--all-namespaces', '-o', 'json'),
        );
        if (!list?.items.length) return { ok: false, detail: 'no RayCluster' };
        const problems: string[] = [];
        for (const c of list.items) {
          const svc = c.status?.head?.serviceName ?? `${c.metadata.name}-head-svc`;
          // Through the API server's service proxy: no port-forward, no node ports needed.
          const path = `/api/v1/namespaces/${c.metadata.namespace}/services/${svc}:dashboard/proxy/api/version`;
          const version = await kubeJson<{ ray_version?: string }>(host, q(k, 'get', `--raw=${path}`));
          if (!version) problems.push(`${c.metadata.namespace}/${svc}: dashboard not reachable`);
          else if (version.ray_version !== opts.ray)
            problems.push(
              `${c.metadata.namespace}/${c.metadata.name}: Ray ${version.ray_version}, versions.yaml pins ${opts.ray}`,
            );
        }
        return {
          ok: problems.length === 0,
          detail: problems.length ? problems.join(', ') : `dashboard answers, Ray ${opts.ray}`,
        };
      },
    ],
    [
      'argocd-synced',
      async (host, k) => {
        const list = await kubeJson<{
          items: {
            metadata: { name: string };
            status?: { sync?: { status?: string }; health?: { status?: string } };
          }[];
        }>(host, q(k, '-n', 'argocd', 'get', 'applications.argoproj.io', '-o', 'json'));
        if (!list) return { ok: false, detail: 'cannot list Argo CD Applications (run install-argocd.mts)' };
        const bad = list.items
          .filter((a) => a.status?.sync?.status !== 'Synced' || a.status.health?.status !== 'Healthy')
          .map((a) => `${a.metadata.name} ${a.status?.sync?.status ?? '?'}/${a.status?.health?.status ?? '?'}`);
        return {
          ok: list.items.length > 0 && bad.length === 0,
          detail: bad.length ? bad.join(', ') : `${list.items.length} Applications Synced and Healthy`,
        };
      },
    ],
  ];
}

/** `state: ready` (all pods up); without a state, the provisioned and head-ready conditions. */
export function rayClusterReady(c: RayCluster): boolean {
  if (c.status?.state !== undefined) return c.status.state === 'ready';
  const conds = c.status?.conditions ?? [];
  return ['RayClusterProvisioned', 'HeadPodReady'].every((t) => conds.some((x) => x.type === t && x.status === 'True'));
}

export function validateCluster(argv: readonly string[], io: ScriptIO): Promise<number> {
  return runScript(spec, argv, io, async (flags, { host, out }) => {
    const expectRaw = flags['expect-nodes'] ?? '1';
    const expectNodes = Number(expectRaw);
    if (!Number.isInteger(expectNodes) || expectNodes < 1)
      throw new UsageError(`--expect-nodes must be a positive integer, got "${expectRaw}"`);
    const { ray } = loadVersions(io.repoRoot);
    const k = kubectlWith(flags.kubeconfig);
    const overlayDir =
      flags.overlay === undefined
        ? undefined
        : requireCluster(io.repoRoot, flags.overlay, 'apps/wiki-tokenizer/overlays', 'kustomization.yaml', '--overlay');
    const results: CheckResult[] = [];
    for (const [name, check] of clusterChecks({ expectNodes, ray, overlayDir })) {
      const t0 = io.now();
      const r = await check(host, k);
      results.push({ name, ...r });
      out(`${r.ok ? 'PASS' : 'FAIL'}  ${name.padEnd(17)} ${r.detail} (${formatMs(io.now() - t0)})`);
    }
    const failed = results.filter((r) => !r.ok);
    out(
      failed.length === 0
        ? `cluster valid: ${results.length}/${results.length} checks passed`
        : `cluster NOT valid: ${failed.length} of ${results.length} checks failed (${failed.map((f) => f.name).join(', ')})`,
    );
    return failed.length === 0 ? 0 : 1;
  });
}

await main(import.meta.url, validateCluster);
