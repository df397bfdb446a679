// Read-only facts about a host, shared by the scripts' checks and preflights.
import type { Host } from './host.js';
import { RefusalError } from './errors.js';
import type { PreflightCheck } from './run.js';

export interface OsRelease {
  id: string;
  versionId: string;
  codename: string;
  prettyName: string;
}

export function parseOsRelease(text: string): OsRelease {
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] && m[2] !== undefined) kv.set(m[1], m[2].replace(/^["']|["']$/g, ''));
  }
  return {
    id: kv.get('ID') ?? '',
    versionId: kv.get('VERSION_ID') ?? '',
    codename: kv.get('VERSION_CODENAME') ?? '',
    prettyName: kv.get('PRETTY_NAME') ?? kv.get('ID') ?? 'unknown',
  };
}

/** Oldest releases with cgroup v2 by default and the apt features the scripts use. */
const MIN_VERSION: Record<string, number> = { debian: 12, ubuntu: 22.04 };

/** Refuses unless the host runs a supported Debian or Ubuntu release; returns its os-release. */
export async function requireSupportedOs(host: Host): Promise<OsRelease> {
  const text = await host.readFile('/etc/os-release');
  if (text === undefined)
    throw new RefusalError('unsupported OS: /etc/os-release is missing; supported: Debian 12+, Ubuntu 22.04+');
  const os = parseOsRelease(text);
  const min = MIN_VERSION[os.id];
  if (min === undefined || !(Number.parseFloat(os.versionId) >= min) || os.codename === '') {
    throw new RefusalError(`unsupported OS: ${os.prettyName}; supported: Debian 12+, Ubuntu 22.04+`);
  }
  return os;
}

/** Real runs change the host and need root; a dry run changes nothing and does not. */
export function requireRoot(host: Host, script: string): void {
  if (!host.dryRun && host.uid() !== 0) {
    throw new RefusalError(
      `must run as root (try: sudo node --import tsx scripts/${script}.mts ...), or preview with --dry-run`,
    );
  }
}

/** Installed version of a Debian package, or undefined if it is not installed. */
export async function packageVersion(host: Host, pkg: string): Promise<string | undefined> {
  const r = await host.probe(['dpkg-query', '-W', '-f=${Status}\t${Version}', pkg]);
  const [status, version] = r.stdout.split('\t');
  return r.exitCode === 0 && status === 'install ok installed' && version ? version : undefined;
}

/** Where the air-gapped install (bootstrap-node --bundle) puts the node binaries. */
export const BUNDLE_BIN = '/usr/local/bin';

/**
 * Version (like 1.36.3) of kubelet or kubeadm on this host: the Debian package's, else that of the binary an
 * air-gapped install put in /usr/local/bin; undefined if neither is there.
 */
export async function kubeVersion(host: Host, tool: 'kubelet' | 'kubeadm'): Promise<string | undefined> {
  const pkg = await packageVersion(host, tool);
  if (pkg !== undefined) return pkg.split('-')[0];
  const bin = `${BUNDLE_BIN}/${tool}`;
  if (!(await host.exists(bin))) return undefined;
  const r = await host.probe(tool === 'kubelet' ? [bin, '--version'] : [bin, 'version', '-o', 'short']);
  return r.exitCode === 0 ? /v(\d+\.\d+\.\d+)/.exec(r.stdout)?.[1] : undefined;
}

export interface MachineIdentity {
  /** What the value is, for messages. */
  label: 'product_uuid' | 'machine-id';
  source: string;
  value: string;
}

/**
 * What tells this machine apart from its clones: the firmware's product_uuid (kubelet reports it as the node's
 * systemUUID). Machines without DMI firmware tables (Firecracker microVMs, system containers) have none; their
 * /etc/machine-id is then the identity.
 */
export async function machineIdentity(host: Host): Promise<MachineIdentity> {
  const uuidFile = '/sys/class/dmi/id/product_uuid';
  const uuid = ((await host.readFile(uuidFile)) ?? '').trim().toLowerCase();
  if (uuid || (await host.exists('/sys/class/dmi'))) return { label: 'product_uuid', source: uuidFile, value: uuid };
  return {
    label: 'machine-id',
    source: '/etc/machine-id',
    value: ((await host.readFile('/etc/machine-id')) ?? '').trim().toLowerCase(),
  };
}

/** Image names in containerd's k8s.io namespace (the one kubelet's CRI uses). */
export async function containerdImages(host: Host, filter?: string): Promise<Set<string>> {
  const r = await host.probe(['ctr', '-n', 'k8s.io', 'images', 'ls', '-q', ...(filter ? [filter] : [])]);
  return new Set(
    r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean),
  );
}

/**
 * containerd's CRI plugin reports an image with this label as pinned, and kubelet's image garbage collector
 * never removes a pinned image (k8s.io/kubernetes pkg/kubelet/images/image_gc_manager.go, "Image is pinned,
 * skipping garbage collection"; containerd internal/cri/labels/labels.go, PinnedImageLabelKey).
 */
export const PINNED_LABEL = 'io.cri-containerd.pinned=pinned';

/** Images of containerd's k8s.io namespace that carry PINNED_LABEL. */
export const pinnedImages = (host: Host): Promise<Set<string>> =>
  containerdImages(host, 'labels."io.cri-containerd.pinned"==pinned');

export async function serviceActive(host: Host, unit: string): Promise<boolean> {
  return (await host.probe(['systemctl', 'is-active', '--quiet', unit])).exitCode === 0;
}

export async function serviceEnabled(host: Host, unit: string): Promise<boolean> {
  return (await host.probe(['systemctl', 'is-enabled', '--quiet', unit])).exitCode === 0;
}

export async function hostname(host: Host): Promise<string> {
  return ((await host.readFile('/proc/sys/kernel/hostname')) ?? '').trim();
}

/** TCP ports something listens on (from `ss`). */
export async function listeningPorts(host: Host): Promise<Set<number>> {
  const r = await host.probe(['ss', '-Htln']);
  const ports = new Set<number>();
  for (const line of r.stdout.split('\n')) {
    const local = line.trim().split(/\s+/)[3];
    const port = local ? Number(local.slice(local.lastIndexOf(':') + 1)) : NaN;
    if (Number.isInteger(port)) ports.add(port);
  }
  return ports;
}

/** Preflight: the kubeadm ports are free, unless this node is already in a cluster (then they are ours). */
export function portsFreeCheck(ports: readonly number[]): PreflightCheck {
  return {
    name: 'ports-free',
    async run(host) {
      if (await host.exists('/etc/kubernetes/kubelet.conf')) {
        return { ok: true, detail: 'node already in a cluster, ports belong to it' };
      }
      const used = await listeningPorts(host);
      const busy = ports.filter((p) => used.has(p));
      return busy.length === 0
        ? { ok: true, detail: `${ports.join(', ')} free` }
        : { ok: false, detail: `port(s) ${busy.join(', ')} already in use` };
    },
  };
}

/** Preflight for scripts that need bootstrap-node to have run: kubeadm at the pinned version, containerd up. */
export function nodeReadyCheck(kubernetes: string): PreflightCheck {
  return {
    name: 'node-bootstrapped',
    async run(host) {
      const kubeadm = await kubeVersion(host, 'kubeadm');
      if (kubeadm !== kubernetes) {
        return {
          ok: false,
          detail: `kubeadm ${kubeadm ?? 'not installed'}, want ${kubernetes}: run scripts/bootstrap-node.mts first`,
        };
      }
      if (!(await serviceActive(host, 'containerd'))) {
        return { ok: false, detail: 'containerd is not running: run scripts/bootstrap-node.mts first' };
      }
      return { ok: true, detail: `kubeadm ${kubeadm}, containerd running` };
    },
  };
}
