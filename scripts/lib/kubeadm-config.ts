// Reads clusters/<name>/kubeadm-config.yaml: the facts the scripts rely on, validated by key.
import { readFileSync } from 'node:fs';
import { Document, parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { UsageError } from './errors.js';

const ClusterConfiguration = z.object({
  kind: z.literal('ClusterConfiguration'),
  apiVersion: z.string(),
  clusterName: z.string().min(1),
  kubernetesVersion: z.string().regex(/^v\d+\.\d+\.\d+$/, 'expected vMAJOR.MINOR.PATCH'),
  networking: z.object({ podSubnet: z.string().min(1) }),
});

const InitConfiguration = z.object({
  kind: z.literal('InitConfiguration'),
  nodeRegistration: z.object({ name: z.string().optional(), taints: z.array(z.unknown()).nullish() }).optional(),
});

/** Written by kubeadm init; its presence means this node runs a control plane. */
export const ADMIN_CONF = '/etc/kubernetes/admin.conf';
/** Where init-control-plane.mts writes the worker join command (root only, mode 0600). */
export const DEFAULT_JOIN_FILE = '/etc/kubernetes/join-command';

export interface KubeadmConfig {
  file: string;
  apiVersion: string;
  clusterName: string;
  kubernetesVersion: string;
  podSubnet: string;
  /** nodeRegistration.name, when the config pins the node name. */
  nodeName: string | undefined;
  /** `taints: []` in InitConfiguration: the control plane also runs workloads (one-node cluster). */
  singleNode: boolean;
}

export function readKubeadmConfig(file: string): KubeadmConfig {
  let docs: unknown[];
  try {
    docs = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => {
      if (d.errors[0]) throw d.errors[0];
      return d.toJS() as unknown;
    });
  } catch (e) {
    throw new UsageError(`${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  const byKind = (kind: string) => docs.find((d) => (d as { kind?: unknown } | null)?.kind === kind);
  const cluster = ClusterConfiguration.safeParse(byKind('ClusterConfiguration'));
  if (!cluster.success) {
    const issue = cluster.error.issues[0];
    throw new UsageError(
      `${file}: ClusterConfiguration key ${issue?.path.join('.') || 'kind'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const init = InitConfiguration.safeParse(byKind('InitConfiguration') ?? { kind: 'InitConfiguration' });
  if (!init.success) {
    const issue = init.error.issues[0];
    throw new UsageError(`${file}: InitConfiguration key ${issue?.path.join('.')}: ${issue?.message ?? 'invalid'}`);
  }
  const taints = init.data.nodeRegistration?.taints;
  return {
    file,
    apiVersion: cluster.data.apiVersion,
    clusterName: cluster.data.clusterName,
    kubernetesVersion: cluster.data.kubernetesVersion,
    podSubnet: cluster.data.networking.podSubnet,
    nodeName: init.data.nodeRegistration?.name,
    singleNode: Array.isArray(taints) && taints.length === 0,
  };
}

/** Where init-control-plane --allow-cgroup-v1 writes the config it gives kubeadm (the one in git plus the override). */
export const CGROUP_V1_CONFIG = '/etc/kubernetes/kubeadm-config.yaml';

/**
 * The config with kubelet's `failCgroupV1: false` (kubelet >= 1.35 refuses cgroup v1 without it), added to its
 * KubeletConfiguration, or in a new one. Comments and every other key stay as they are.
 */
export function withCgroupV1Allowed(text: string): string {
  const parsed = parseAllDocuments(text);
  if (!Array.isArray(parsed)) throw new UsageError('kubeadm config: not a YAML stream');
  const docs: Document[] = [...parsed];
  const kubelet =
    docs.find((d) => d.get('kind') === 'KubeletConfiguration') ??
    new Document({ apiVersion: 'kubelet.config.k8s.io/v1beta1', kind: 'KubeletConfiguration' });
  if (!docs.includes(kubelet)) docs.push(kubelet);
  kubelet.set('failCgroupV1', false);
  // Documents read from the stream keep their own `---`; only a new one needs it.
  return docs.map((d, i) => (i === 0 || String(d).startsWith('---') ? String(d) : `---\n${String(d)}`)).join('');
}
