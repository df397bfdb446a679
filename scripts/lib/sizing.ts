// Does a Ray group's pod fit on some node? Plain data in, problems out (validate-cluster.mts asks the
// cluster for the data; test/gitops feeds it rendered overlays and kubeadm's reservations).
import { UsageError } from './errors.js';

export interface Resources {
  /** CPU cores. */
  cpu: number;
  /** Bytes. */
  memory: number;
}

const UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** A Kubernetes quantity (`1500m`, `2`, `512Mi`, `1.5Gi`) as a number of cores or bytes. */
export function quantity(q: string | number | undefined): number {
  if (q === undefined) return 0;
  const m = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(q));
  if (!m) throw new UsageError(`not a Kubernetes quantity: ${String(q)}`);
  const n = Number(m[1]);
  return m[2] === 'm' ? n / 1000 : n * (UNITS[m[2] ?? ''] ?? 1);
}

export const formatCpu = (cores: number): string => `${Math.round(cores * 100) / 100} CPU`;
export const formatMemory = (bytes: number): string => `${Math.round((bytes / 2 ** 30) * 10) / 10} GiB`;

export interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
}
export interface Taint {
  key: string;
  value?: string;
  effect: string;
}

export interface NodeShape {
  name: string;
  allocatable: Resources;
  taints: Taint[];
}

export interface PodShape {
  /** What the pod is, for messages: `tokenize-wiki/tokenize-wiki workers`. */
  name: string;
  requests: Resources;
  tolerations: Toleration[];
}

interface ContainerLike {
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
}

/** The requests the scheduler counts for a pod: the sum over containers (a missing request defaults to the limit). */
export function podRequests(containers: readonly ContainerLike[]): Resources {
  const one = (c: ContainerLike, r: 'cpu' | 'memory'): number =>
    quantity(c.resources?.requests?.[r] ?? c.resources?.limits?.[r]);
  return {
    cpu: containers.reduce((s, c) => s + one(c, 'cpu'), 0),
    memory: containers.reduce((s, c) => s + one(c, 'memory'), 0),
  };
}

function tolerates(tolerations: readonly Toleration[], taint: Taint): boolean {
  return tolerations.some(
    (t) =>
      (t.effect === undefined || t.effect === '' || t.effect === taint.effect) &&
      (t.operator === 'Exists'
        ? t.key === undefined || t.key === '' || t.key === taint.key
        : t.key === taint.key && (t.value ?? '') === (taint.value ?? '')),
  );
}

/** One line per pod that fits on no node it may be scheduled to, naming the largest such node. */
export function fitProblems(pods: readonly PodShape[], nodes: readonly NodeShape[], hint: string): string[] {
  const problems: string[] = [];
  for (const pod of pods) {
    const open = nodes.filter((n) =>
      n.taints.every((t) => t.effect === 'PreferNoSchedule' || tolerates(pod.tolerations, t)),
    );
    if (open.some((n) => n.allocatable.cpu >= pod.requests.cpu && n.allocatable.memory >= pod.requests.memory))
      continue;
    const largest = [...open].sort(
      (a, b) => b.allocatable.memory - a.allocatable.memory || b.allocatable.cpu - a.allocatable.cpu,
    )[0];
    const asks = `${formatCpu(pod.requests.cpu)} / ${formatMemory(pod.requests.memory)}`;
    problems.push(
      largest
        ? `${pod.name} asks ${asks} per pod, the largest node it may use (${largest.name}) offers ${formatCpu(largest.allocatable.cpu)} / ${formatMemory(largest.allocatable.memory)}: ${hint}`
        : `${pod.name} asks ${asks} per pod and no node accepts it (taints): ${hint}`,
    );
  }
  return problems;
}

interface PodTemplateLike {
  spec?: { containers?: ContainerLike[]; tolerations?: Toleration[] };
}
export interface RayClusterLike {
  metadata: { name: string; namespace?: string };
  spec?: {
    headGroupSpec?: { template?: PodTemplateLike };
    workerGroupSpecs?: { groupName?: string; template?: PodTemplateLike }[];
  };
}

/** The head pod and one pod of each worker group of a RayCluster. */
export function rayPods(rc: RayClusterLike): PodShape[] {
  const id = `${rc.metadata.namespace ?? 'default'}/${rc.metadata.name}`;
  const shape = (name: string, t: PodTemplateLike | undefined): PodShape => ({
    name,
    requests: podRequests(t?.spec?.containers ?? []),
    tolerations: t?.spec?.tolerations ?? [],
  });
  return [
    shape(`${id} head`, rc.spec?.headGroupSpec?.template),
    ...(rc.spec?.workerGroupSpecs ?? []).map((g, i) => shape(`${id} ${g.groupName ?? `workers[${i}]`}`, g.template)),
  ];
}
