// Prepares a fresh Debian/Ubuntu VM to become a Kubernetes node: swap off, kernel modules,
// sysctls, containerd (systemd cgroups) and kubeadm/kubelet/kubectl at the pinned version, held.
import { join, resolve } from 'node:path';
import { corruptFiles, readNodeBundle, type NodeBundle } from './lib/bundle/node-bundle.js';
import { main, runScript, type ScriptSpec } from './lib/cli.js';
import { ScriptError, UsageError } from './lib/errors.js';
import {
  BUNDLE_BIN,
  containerdImages,
  hostname,
  kubeVersion,
  machineIdentity,
  PINNED_LABEL,
  pinnedImages,
  packageVersion,
  portsFreeCheck,
  requireRoot,
  requireSupportedOs,
  serviceActive,
  serviceEnabled,
  type OsRelease,
} from './lib/facts.js';
import type { Host } from './lib/host.js';
import { runPreflight, runSteps, type PreflightCheck, type ScriptIO, type Step } from './lib/run.js';
import { kubernetesMinor, loadVersions } from './lib/versions.js';

export type Role = 'control-plane' | 'worker';

const options = {
  role: { type: 'string' },
  bundle: { type: 'string' },
  'allow-cgroup-v1': { type: 'boolean' },
} as const;

const spec = {
  name: 'bootstrap-node',
  options,
  usage: `
Usage: sudo node --import tsx scripts/bootstrap-node.mts --role control-plane|worker [--bundle DIR] [--allow-cgroup-v1] [--dry-run]

Prepares this Debian 12+/Ubuntu 22.04+ host to join the cluster: swap off (now and in /etc/fstab),
overlay + br_netfilter loaded and persisted, bridge/forwarding sysctls persisted, containerd with
SystemdCgroup = true, and kubelet/kubeadm/kubectl at the Kubernetes version pinned in versions.yaml
from pkgs.k8s.io, held with apt-mark. Every step checks the host first; re-running is safe.

  --role ROLE         control-plane or worker (sets the preflight thresholds and ports)
  --bundle DIR        air-gapped: install from a bundle built by scripts/build-bundle.mts (binaries of
                      bin/ to /usr/local/bin, debs/ with dpkg, images/ imported into containerd) instead
                      of apt repositories and registries; the host needs no internet access
  --allow-cgroup-v1   accept a cgroup v1 host (kubelet then needs failCgroupV1: false, which
                      init-control-plane.mts --allow-cgroup-v1 sets); cgroup v1 is deprecated: use only
                      where cgroup v2 is impossible (e.g. test nodes in containers on a cgroup v1 host)
  --dry-run           print the commands a real run would execute, change nothing (no root needed)
  -h, --help          this text

Exit codes: 0 done, 1 refused or a step failed, 2 bad usage.`,
} satisfies ScriptSpec<typeof options>;

/** kubeadm's documented requirements, per role. */
export const REQUIREMENTS: Record<Role, { cpus: number; memMiB: number; diskGiB: number; ports: number[] }> = {
  'control-plane': { cpus: 2, memMiB: 1700, diskGiB: 20, ports: [6443, 2379, 2380, 10250, 10257, 10259] },
  worker: { cpus: 2, memMiB: 1700, diskGiB: 20, ports: [10250, 10256] },
};

const MODULES = ['overlay', 'br_netfilter'];
const MODULES_FILE = '/etc/modules-load.d/kubernetes.conf';
const SYSCTLS: Record<string, string> = {
  'net.bridge.bridge-nf-call-iptables': '1',
  'net.bridge.bridge-nf-call-ip6tables': '1',
  'net.ipv4.ip_forward': '1',
};
const SYSCTL_FILE = '/etc/sysctl.d/99-kubernetes.conf';
const KEYRINGS = '/etc/apt/keyrings';
const CONTAINERD_CONFIG = '/etc/containerd/config.toml';
const KUBE_PACKAGES = ['kubelet', 'kubeadm', 'kubectl'];
const APT_ENV = { DEBIAN_FRONTEND: 'noninteractive' };

/** Comments out active swap lines of /etc/fstab (third field `swap`), keeping a .bak copy. */
export const FSTAB_SWAP_SED =
  's/^([[:space:]]*[^#[:space:]][^[:space:]]*[[:space:]]+[^[:space:]]+[[:space:]]+swap([[:space:]]|$))/# \\1/';

export function activeFstabSwap(fstab: string): string[] {
  return fstab.split('\n').filter((l) => {
    const fields = l.trim().split(/\s+/);
    return fields[0] !== undefined && fields[0] !== '' && !fields[0].startsWith('#') && fields[2] === 'swap';
  });
}

function preflight(role: Role, kubernetes: string, allowCgroupV1: boolean): PreflightCheck[] {
  const req = REQUIREMENTS[role];
  return [
    {
      // Moving kubelet under a running node is an upgrade, which has its own procedure.
      name: 'not-an-upgrade',
      async run(host) {
        const kubelet = await kubeVersion(host, 'kubelet');
        const member = await host.exists('/etc/kubernetes/kubelet.conf');
        return member && kubelet !== undefined && kubelet !== kubernetes
          ? {
              ok: false,
              detail: `this cluster node runs kubelet ${kubelet}, versions.yaml pins ${kubernetes}: upgrade with kubeadm upgrade (docs/bootstrap.md)`,
            }
          : { ok: true, detail: member ? `cluster node at ${kubernetes}` : 'not in a cluster yet' };
      },
    },
    {
      name: 'cpu',
      async run(host) {
        const n = Number((await host.probe(['nproc'])).stdout.trim());
        return { ok: n >= req.cpus, detail: `${n} CPUs, need >= ${req.cpus}` };
      },
    },
    {
      name: 'memory',
      async run(host) {
        const m = /MemTotal:\s+(\d+) kB/.exec((await host.readFile('/proc/meminfo')) ?? '');
        const mib = m?.[1] ? Math.floor(Number(m[1]) / 1024) : 0;
        return { ok: mib >= req.memMiB, detail: `${mib} MiB, need >= ${req.memMiB} MiB` };
      },
    },
    {
      name: 'disk',
      async run(host) {
        // Images and pod logs live under /var.
        const r = await host.probe(['df', '--output=avail', '-B1G', '/var']);
        const gib = Number(r.stdout.trim().split('\n').at(-1)?.trim().replace(/G$/, ''));
        return {
          ok: gib >= req.diskGiB,
          detail: `${Number.isFinite(gib) ? gib : '?'} GiB free on /var, need >= ${req.diskGiB} GiB`,
        };
      },
    },
    {
      name: 'identity',
      async run(host) {
        // Uniqueness across nodes is checked at join time (join-worker --ssh, and kubeadm itself);
        // here we catch what breaks it on one host: a generic hostname, no MAC, no product_uuid.
        const name = await hostname(host);
        const id = await machineIdentity(host);
        const mac = (await host.probe(['ip', '-brief', 'link'])).stdout
          .split('\n')
          .map((l) => l.trim().split(/\s+/))
          .find((f) => f[0] !== 'lo' && f[2] && /^[0-9a-f:]{17}$/.test(f[2]) && f[2] !== '00:00:00:00:00:00')?.[2];
        const problems: string[] = [];
        if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name) || name === 'localhost') {
          problems.push(`hostname "${name}" is not a unique lowercase DNS name`);
        }
        if (!mac) problems.push('no network interface with a MAC address');
        if (!id.value && !host.dryRun) problems.push(`${id.source} is unreadable`);
        return problems.length
          ? { ok: false, detail: problems.join('; ') }
          : { ok: true, detail: `hostname ${name}, MAC ${mac}, ${id.label} ${id.value || '(needs root to read)'}` };
      },
    },
    portsFreeCheck(req.ports),
    {
      name: 'cgroup-v2',
      async run(host) {
        const fs = (await host.probe(['stat', '-fc', '%T', '/sys/fs/cgroup'])).stdout.trim();
        if (fs !== 'cgroup2fs' && allowCgroupV1) {
          return { ok: true, detail: `/sys/fs/cgroup is ${fs || 'unknown'}: cgroup v1 accepted (--allow-cgroup-v1)` };
        }
        return {
          ok: fs === 'cgroup2fs',
          detail: `/sys/fs/cgroup is ${fs || 'unknown'}, need cgroup2fs (kubelet needs cgroup v2)`,
        };
      },
    },
  ];
}

/** The bundle's kubeadm must be the pinned release: a bundle of another version would be an upgrade or a downgrade. */
function bundleVersionCheck(bundle: NodeBundle, kubernetes: string): PreflightCheck {
  return {
    name: 'bundle-version',
    async run(host) {
      const r = await host.probe([join(bundle.dir, 'bin', 'kubeadm'), 'version', '-o', 'short']);
      const v = r.stdout.trim();
      return {
        ok: v === `v${kubernetes}`,
        detail: `bundle kubeadm ${v || 'does not run'}, versions.yaml pins v${kubernetes}`,
      };
    },
  };
}

/** The files the node installs are the ones the bundle was built with (bundle.json's sha256). */
function bundleIntegrityCheck(bundle: NodeBundle): PreflightCheck {
  return {
    name: 'bundle-integrity',
    async run() {
      const bad = await corruptFiles(bundle);
      if (bad === undefined) return { ok: true, detail: 'no bundle.json in the bundle: files not verified' };
      return bad.length === 0
        ? {
            ok: true,
            detail: `${bundle.binaries.length + bundle.debs.length + bundle.images.length} files match bundle.json`,
          }
        : {
            ok: false,
            detail: `missing from bundle.json or sha256 differs: ${bad.join(', ')} (copy the bundle again)`,
          };
    },
  };
}

async function allPackagesAt(host: Host, pkgs: readonly string[], prefix?: string): Promise<boolean> {
  for (const pkg of pkgs) {
    const v = await packageVersion(host, pkg);
    if (v === undefined || (prefix !== undefined && !v.startsWith(prefix))) return false;
  }
  return true;
}

function fileIs(path: string, content: string) {
  return async (host: Host) => (await host.readFile(path)) === content;
}

function aptRepoSteps(
  name: string,
  label: string,
  keyUrl: string,
  keyFile: string,
  listFile: string,
  line: string,
): Step {
  return {
    name,
    goal: `${label} apt repository configured`,
    check: async (host) => (await host.exists(keyFile)) && (await fileIs(listFile, line)(host)),
    async apply(host) {
      await host.exec(['install', '-d', '-m', '0755', KEYRINGS]);
      await host.exec(['curl', '-fsSL', '-o', keyFile, keyUrl]);
      await host.writeFile(listFile, line);
      await host.exec(['apt-get', 'update'], { env: APT_ENV });
    },
  };
}

/**
 * A module is there when /sys/module lists it, or when what it provides is: built-in modules without
 * parameters have no /sys/module entry, and a kernel built with them may ship no modules folder for modprobe.
 */
async function moduleLoaded(host: Host, module: string): Promise<boolean> {
  if (await host.exists(`/sys/module/${module}`)) return true;
  if (module === 'overlay') return /\soverlay$/m.test((await host.readFile('/proc/filesystems')) ?? '');
  if (module === 'br_netfilter') return host.exists('/proc/sys/net/bridge/bridge-nf-call-iptables');
  return false;
}

/** Swap, kernel modules and sysctls: the same on every node, online or air-gapped. */
function hostPrepSteps(): Step[] {
  const modulesText = `${MODULES.join('\n')}\n`;
  const sysctlText = Object.entries(SYSCTLS)
    .map(([k, v]) => `${k} = ${v}\n`)
    .join('');
  return [
    {
      name: 'swap-off',
      goal: 'no active swap (kubelet refuses to run with swap by default)',
      check: async (host) => ((await host.readFile('/proc/swaps')) ?? '').trim().split('\n').length <= 1,
      apply: async (host) => void (await host.exec(['swapoff', '-a'])),
    },
    {
      name: 'swap-off-fstab',
      goal: 'no swap entry in /etc/fstab, so swap stays off after reboot',
      check: async (host) => activeFstabSwap((await host.readFile('/etc/fstab')) ?? '').length === 0,
      apply: async (host) => void (await host.exec(['sed', '-E', '-i.bak', FSTAB_SWAP_SED, '/etc/fstab'])),
    },
    {
      name: 'kernel-modules-persisted',
      goal: `${MODULES.join(', ')} load at boot (${MODULES_FILE})`,
      check: fileIs(MODULES_FILE, modulesText),
      apply: (host) => host.writeFile(MODULES_FILE, modulesText),
    },
    {
      name: 'kernel-modules-loaded',
      goal: `${MODULES.join(', ')} loaded now`,
      async check(host) {
        for (const m of MODULES) if (!(await moduleLoaded(host, m))) return false;
        return true;
      },
      async apply(host) {
        for (const m of MODULES) await host.exec(['modprobe', m]);
      },
    },
    {
      name: 'sysctl-persisted',
      goal: `bridge netfilter and IP forwarding set at boot (${SYSCTL_FILE})`,
      check: fileIs(SYSCTL_FILE, sysctlText),
      apply: (host) => host.writeFile(SYSCTL_FILE, sysctlText),
    },
    {
      name: 'sysctl-applied',
      goal: 'bridge netfilter and IP forwarding set now',
      async check(host) {
        for (const [k, v] of Object.entries(SYSCTLS)) {
          if ((await host.readFile(`/proc/sys/${k.replaceAll('.', '/')}`))?.trim() !== v) return false;
        }
        return true;
      },
      apply: async (host) => void (await host.exec(['sysctl', '--system'])),
    },
  ];
}

export interface ContainerdOptions {
  /** A bundle's pause image, which becomes the sandbox image. */
  sandboxImage?: string;
  /** The host cannot lower OOM scores (see canLowerOomScores): containerd must not try to. */
  restrictOomScoreAdj?: boolean;
}

/**
 * containerd's default config with systemd cgroups; a bundle also names its pause image as the sandbox image,
 * and a host without CAP_SYS_RESOURCE gets restrict_oom_score_adj (else runc fails every pod sandbox, whose
 * oom_score_adj of -998 only that capability may set).
 */
function containerdConfigStep(opts: ContainerdOptions = {}): Step {
  const { sandboxImage, restrictOomScoreAdj = false } = opts;
  const sandboxLine = `sandbox = '${sandboxImage ?? ''}'`;
  const extras = [
    sandboxImage ? `, sandbox image ${sandboxImage}` : '',
    restrictOomScoreAdj ? ', OOM score adjustments restricted' : '',
  ].join('');
  return {
    name: 'containerd-config',
    goal: `${CONTAINERD_CONFIG} has the CRI plugin on and SystemdCgroup = true${extras}`,
    async check(host) {
      const toml = (await host.readFile(CONTAINERD_CONFIG)) ?? '';
      const lines = toml.split('\n').map((l) => l.trim());
      // containerd.io ships a config that disables CRI; the default config enables it.
      return (
        /^\s*SystemdCgroup\s*=\s*true/m.test(toml) &&
        !/^\s*disabled_plugins\s*=.*"cri"/m.test(toml) &&
        (sandboxImage === undefined || lines.includes(sandboxLine)) &&
        (!restrictOomScoreAdj || lines.includes('restrict_oom_score_adj = true'))
      );
    },
    async apply(host) {
      await host.exec(['install', '-d', '-m', '0755', '/etc/containerd']);
      await host.exec(['containerd', 'config', 'default'], { stdoutFile: CONTAINERD_CONFIG });
      await host.exec(['sed', '-i', 's/SystemdCgroup = false/SystemdCgroup = true/', CONTAINERD_CONFIG]);
      // Air-gapped: the default names the upstream pause tag of containerd's release, which the bundle need not hold.
      if (sandboxImage)
        await host.exec(['sed', '-E', '-i', `s#^([[:space:]]*)sandbox = .*#\\1${sandboxLine}#`, CONTAINERD_CONFIG]);
      if (restrictOomScoreAdj) {
        await host.exec([
          'sed',
          '-i',
          's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/',
          CONTAINERD_CONFIG,
        ]);
      }
      await host.exec(['systemctl', 'restart', 'containerd']);
    },
  };
}

const CAP_SYS_RESOURCE = 24n;

/** False on hosts whose root lacks CAP_SYS_RESOURCE (system containers, some sandboxes). */
export async function canLowerOomScores(host: Host): Promise<boolean> {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec((await host.readFile('/proc/self/status')) ?? '')?.[1];
  return hex === undefined || ((BigInt(`0x${hex}`) >> CAP_SYS_RESOURCE) & 1n) === 1n;
}

const containerdRunningStep: Step = {
  name: 'containerd-running',
  goal: 'containerd enabled and active',
  check: async (host) => (await serviceEnabled(host, 'containerd')) && (await serviceActive(host, 'containerd')),
  apply: async (host) => void (await host.exec(['systemctl', 'enable', '--now', 'containerd'])),
};

const kubeletEnabledStep: Step = {
  name: 'kubelet-enabled',
  goal: 'kubelet enabled (it waits for kubeadm init/join to configure it)',
  check: (host) => serviceEnabled(host, 'kubelet'),
  apply: async (host) => void (await host.exec(['systemctl', 'enable', 'kubelet'])),
};

export function bootstrapSteps(os: OsRelease, kubernetes: string, containerd: ContainerdOptions = {}): Step[] {
  const minor = kubernetesMinor(kubernetes);
  const dockerKey = `${KEYRINGS}/docker.asc`;
  const kubeKey = `${KEYRINGS}/kubernetes-apt-keyring.asc`;
  return [
    ...hostPrepSteps(),
    {
      name: 'apt-prerequisites',
      goal: 'ca-certificates and curl installed',
      check: (host) => allPackagesAt(host, ['ca-certificates', 'curl']),
      async apply(host) {
        await host.exec(['apt-get', 'update'], { env: APT_ENV });
        await host.exec(['apt-get', 'install', '-y', 'ca-certificates', 'curl'], { env: APT_ENV });
      },
    },
    // Docker's repository carries containerd 2.x (containerd.io); Kubernetes after 1.35 needs 2.x
    // and the distributions' own containerd packages are older.
    aptRepoSteps(
      'containerd-apt-repo',
      'download.docker.com (containerd.io)',
      `https://download.docker.com/linux/${os.id}/gpg`,
      dockerKey,
      '/etc/apt/sources.list.d/docker.list',
      `deb [signed-by=${dockerKey}] https://download.docker.com/linux/${os.id} ${os.codename} stable\n`,
    ),
    {
      name: 'containerd-installed',
      goal: 'containerd.io installed',
      check: (host) => allPackagesAt(host, ['containerd.io']),
      apply: async (host) => void (await host.exec(['apt-get', 'install', '-y', 'containerd.io'], { env: APT_ENV })),
    },
    containerdConfigStep(containerd),
    containerdRunningStep,
    aptRepoSteps(
      'kubernetes-apt-repo',
      `pkgs.k8s.io ${minor}`,
      `https://pkgs.k8s.io/core:/stable:/${minor}/deb/Release.key`,
      kubeKey,
      '/etc/apt/sources.list.d/kubernetes.list',
      `deb [signed-by=${kubeKey}] https://pkgs.k8s.io/core:/stable:/${minor}/deb/ /\n`,
    ),
    {
      name: 'kubernetes-packages',
      goal: `${KUBE_PACKAGES.join(', ')} ${kubernetes} installed`,
      check: (host) => allPackagesAt(host, KUBE_PACKAGES, `${kubernetes}-`),
      apply: async (host) =>
        void (await host.exec(
          [
            'apt-get',
            'install',
            '-y',
            '--allow-change-held-packages',
            ...KUBE_PACKAGES.map((p) => `${p}=${kubernetes}-*`),
          ],
          { env: APT_ENV },
        )),
    },
    {
      name: 'kubernetes-packages-held',
      goal: `${KUBE_PACKAGES.join(', ')} held (apt upgrade must not move them)`,
      async check(host) {
        const held = new Set((await host.probe(['apt-mark', 'showhold'])).stdout.split('\n').map((l) => l.trim()));
        return KUBE_PACKAGES.every((p) => held.has(p));
      },
      apply: async (host) => void (await host.exec(['apt-mark', 'hold', ...KUBE_PACKAGES])),
    },
    kubeletEnabledStep,
  ];
}

/**
 * systemd units for the bundle's binaries (the Debian packages of the online path bring their own). Delegate:
 * containerd's shims and the containers they start live in cgroups of their own, not containerd's.
 */
export const CONTAINERD_UNIT = `[Unit]
Description=containerd container runtime
After=network.target local-fs.target dbus.service

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=${BUNDLE_BIN}/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
`;

export const KUBELET_UNIT = `[Unit]
Description=kubelet: the Kubernetes node agent
Wants=network-online.target
After=network-online.target containerd.service

[Service]
ExecStart=${BUNDLE_BIN}/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
`;

/** kubeadm writes the kubelet's config and flags; this drop-in passes them (the kubeadm package ships the same). */
export const KUBEADM_DROPIN = `[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=${BUNDLE_BIN}/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
`;

const UNITS: Record<string, string> = {
  '/etc/systemd/system/containerd.service': CONTAINERD_UNIT,
  '/etc/systemd/system/kubelet.service': KUBELET_UNIT,
  '/etc/systemd/system/kubelet.service.d/10-kubeadm.conf': KUBEADM_DROPIN,
};

/** The reference plugins Flannel's CNI config delegates to, and containerd's loopback. */
export const CNI_PLUGINS = ['bridge', 'host-local', 'portmap', 'loopback'];
/** Where Debian's containernetworking-plugins puts them; containerd and Flannel use /opt/cni/bin. */
const DEBIAN_CNI_DIR = '/usr/lib/cni';
const CNI_BIN = '/opt/cni/bin';

/** Air-gapped: everything the apt repositories and registries give the online path, from a bundle. */
export function bundleSteps(bundle: NodeBundle, containerd: ContainerdOptions = {}): Step[] {
  const names = bundle.images.map((i) => i.name);
  const pause = names.find((n) => /\/pause:/.test(n));
  const debPath = (file: string) => join(bundle.dir, 'debs', file);
  const missingDebs = async (host: Host) => {
    const missing: string[] = [];
    for (const d of bundle.debs) if ((await packageVersion(host, d.package)) === undefined) missing.push(d.file);
    return missing;
  };
  return [
    ...hostPrepSteps(),
    {
      name: 'bundle-packages',
      goal: `${bundle.debs.length} Debian packages of the bundle installed (${bundle.debs.map((d) => d.package).join(', ')}), those already present kept`,
      check: async (host) => (await missingDebs(host)).length === 0,
      apply: async (host) =>
        void (await host.exec(['dpkg', '-i', ...(await missingDebs(host)).map(debPath)], { env: APT_ENV })),
    },
    {
      name: 'bundle-binaries',
      goal: `${bundle.binaries.join(', ')} from the bundle in ${BUNDLE_BIN}`,
      async check(host) {
        for (const b of bundle.binaries) {
          if ((await host.probe(['cmp', '-s', join(bundle.dir, 'bin', b), `${BUNDLE_BIN}/${b}`])).exitCode !== 0)
            return false;
        }
        return true;
      },
      apply: async (host) =>
        void (await host.exec([
          'install',
          '-m',
          '0755',
          '-t',
          BUNDLE_BIN,
          ...bundle.binaries.map((b) => join(bundle.dir, 'bin', b)),
        ])),
    },
    {
      name: 'cni-plugins',
      goal: `${CNI_PLUGINS.join(', ')} in ${CNI_BIN} (linked from ${DEBIAN_CNI_DIR})`,
      async check(host) {
        for (const p of CNI_PLUGINS) if (!(await host.exists(`${CNI_BIN}/${p}`))) return false;
        return true;
      },
      async apply(host) {
        await host.exec(['install', '-d', '-m', '0755', CNI_BIN]);
        await host.exec(['ln', '-sf', ...CNI_PLUGINS.map((p) => `${DEBIAN_CNI_DIR}/${p}`), `${CNI_BIN}/`]);
      },
    },
    {
      name: 'systemd-units',
      goal: `containerd and kubelet units (with kubeadm's drop-in) for ${BUNDLE_BIN}`,
      async check(host) {
        for (const [path, text] of Object.entries(UNITS)) if ((await host.readFile(path)) !== text) return false;
        return true;
      },
      async apply(host) {
        await host.exec(['install', '-d', '-m', '0755', '/etc/systemd/system/kubelet.service.d']);
        for (const [path, text] of Object.entries(UNITS)) await host.writeFile(path, text);
        await host.exec(['systemctl', 'daemon-reload']);
      },
    },
    containerdConfigStep({ ...containerd, sandboxImage: pause }),
    containerdRunningStep,
    {
      name: 'bundle-images',
      goal: `${names.length} images of the bundle in containerd's k8s.io namespace, pinned (${names.join(', ')})`,
      async check(host) {
        const pinned = await pinnedImages(host);
        return names.every((n) => pinned.has(n));
      },
      // Pinned, because kubelet's image garbage collection removes images no running pod uses once the image
      // disk is 85% full (imageGCHighThresholdPercent): an air-gapped node cannot pull them back, and its next
      // pods (Argo CD's, installed after the control plane) would wait for a pull forever. Found on a real node.
      async apply(host) {
        const [have, pinned] = [await containerdImages(host), await pinnedImages(host)];
        for (const image of bundle.images.filter((i) => !have.has(i.name))) {
          await host.exec([
            'ctr',
            '-n',
            'k8s.io',
            'images',
            'import',
            '--label',
            PINNED_LABEL,
            join(bundle.dir, 'images', image.file),
          ]);
        }
        // Imported by an earlier version of this step, without the label.
        for (const n of names.filter((x) => have.has(x) && !pinned.has(x)))
          await host.exec(['ctr', '-n', 'k8s.io', 'images', 'label', n, PINNED_LABEL]);
        if (host.dryRun) return;
        // ctr exits 0 after importing an archive whose name annotation it does not understand (the blobs go
        // in, no name does): a pod would then wait for a pull that can never happen. Name what is missing.
        const after = await pinnedImages(host);
        const missing = bundle.images.filter((i) => !after.has(i.name));
        if (missing.length) {
          throw new ScriptError(
            `bundle-images: after ctr import, containerd lacks ${missing.map((i) => `${i.name} (images/${i.file})`).join(', ')} (or holds it unpinned): check the archive's index.json annotation io.containerd.image.name`,
            1,
          );
        }
      },
    },
    kubeletEnabledStep,
  ];
}

export function parseRole(value: string | undefined): Role {
  if (value === 'control-plane' || value === 'worker') return value;
  throw new UsageError(`--role must be control-plane or worker${value === undefined ? '' : `, got "${value}"`}`);
}

export function bootstrapNode(argv: readonly string[], io: ScriptIO): Promise<number> {
  return runScript(spec, argv, io, async (flags, { host, log, out }) => {
    const role = parseRole(flags.role);
    const versions = loadVersions(io.repoRoot);
    const bundle = flags.bundle === undefined ? undefined : readNodeBundle(resolve(flags.bundle));
    requireRoot(host, spec.name);
    const os = await requireSupportedOs(host);
    const source = bundle ? `bundle ${bundle.dir}` : 'apt repositories';
    log.info(
      `${os.prettyName}, role ${role}, Kubernetes ${versions.kubernetes} from ${source}${host.dryRun ? ' (dry run)' : ''}`,
    );
    const checks = preflight(role, versions.kubernetes, flags['allow-cgroup-v1'] === true);
    if (bundle) checks.push(bundleVersionCheck(bundle, versions.kubernetes), bundleIntegrityCheck(bundle));
    const preflightOk = await runPreflight(checks, host, log, out);
    const containerd = { restrictOomScoreAdj: !(await canLowerOomScores(host)) };
    if (containerd.restrictOomScoreAdj)
      log.info('no CAP_SYS_RESOURCE here: containerd will not lower OOM scores (restrict_oom_score_adj)');
    await runSteps(
      bundle ? bundleSteps(bundle, containerd) : bootstrapSteps(os, versions.kubernetes, containerd),
      host,
      log,
      out,
    );
    if (!host.dryRun) {
      const next =
        role === 'control-plane'
          ? 'sudo node --import tsx scripts/init-control-plane.mts --cluster <name>'
          : 'sudo node --import tsx scripts/join-worker.mts --ssh <user>@<control-plane>';
      log.info(`node ready; next: ${next}`);
    }
    return preflightOk ? 0 : 1;
  });
}

await main(import.meta.url, bootstrapNode);
