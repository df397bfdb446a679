// The cluster network: one namespace per run holding a bridge, one namespace per node joined to it by a veth
// pair. Nothing is created in the host's namespace, and the cluster namespace has no uplink: the nodes' default
// route ends at the bridge, which forwards nowhere.
import { run } from '../harness/proc.js';

/** Every namespace, container and cgroup of the suite starts with this, so a cleanup can find leftovers. */
export const PREFIX = 'tw-e2e-';
/** Private range used only inside the cluster namespace: the bridge is .1, nodes from .11 on. */
export const SUBNET = { prefix: '172.31.213', bits: 24 } as const;
export const BRIDGE = 'br0';

export const clusterNetns = (runId: string): string => `${PREFIX}${runId}`;
export const nodeNetns = (runId: string, node: string): string => `${PREFIX}${runId}-${node}`;
export const bridgeAddress = (): string => `${SUBNET.prefix}.1`;
export const nodeAddress = (index: number): string => `${SUBNET.prefix}.${11 + index}`;

const ip = (...args: string[]): Promise<string> => run('ip', args);

/** The run's namespace with its bridge up; its address is the nodes' gateway (and nothing behind it). */
export async function createClusterNetwork(runId: string): Promise<void> {
  const ns = clusterNetns(runId);
  await ip('netns', 'add', ns);
  await ip('-n', ns, 'link', 'set', 'lo', 'up');
  await ip('-n', ns, 'link', 'add', BRIDGE, 'type', 'bridge');
  await ip('-n', ns, 'addr', 'add', `${bridgeAddress()}/${SUBNET.bits}`, 'dev', BRIDGE);
  await ip('-n', ns, 'link', 'set', BRIDGE, 'up');
}

/**
 * A node's namespace: eth0 (the peer of a veth on the bridge) with its address, and a default route to the
 * bridge (kubeadm picks the node address from the default route's interface).
 */
export async function createNodeNetwork(runId: string, node: string, index: number): Promise<string> {
  const cluster = clusterNetns(runId);
  const ns = nodeNetns(runId, node);
  const veth = `v-${node}`.slice(0, 15);
  await ip('netns', 'add', ns);
  await ip('-n', cluster, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
  await ip('-n', cluster, 'link', 'set', veth, 'master', BRIDGE, 'up');
  await ip('-n', ns, 'link', 'set', 'lo', 'up');
  await ip('-n', ns, 'addr', 'add', `${nodeAddress(index)}/${SUBNET.bits}`, 'dev', 'eth0');
  await ip('-n', ns, 'link', 'set', 'eth0', 'up');
  await ip('-n', ns, 'route', 'add', 'default', 'via', bridgeAddress());
  return `/run/netns/${ns}`;
}
